"""Forms of the bias-audit pages."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from reviews.models import AISystem


class DayOrMomentField(forms.DateTimeField):
    """A date (midnight UTC) or a date-time; times are UTC as everywhere in the portal."""

    input_formats = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]


class BiasAuditRequestForm(forms.Form):
    """Request an audit; the attribute list is grouped by system (the service checks the pair)."""

    system = forms.ModelChoiceField(queryset=AISystem.objects.none(), to_field_name="slug",
                                    empty_label="Choose the AI system")
    attribute = forms.ChoiceField(
        help_text="A protected attribute declared on the system (a key of the cases' subject)."
    )
    period_from = DayOrMomentField(label="From (UTC)", required=False,
                                   widget=forms.DateInput(attrs={"type": "date"}),
                                   help_text="Default: 30 days before the end.")
    period_to = DayOrMomentField(label="To (UTC, exclusive)", required=False,
                                 widget=forms.DateInput(attrs={"type": "date"}), help_text="Default: now.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        systems = list(AISystem.objects.order_by("name"))
        cast(forms.ModelChoiceField, self.fields["system"]).queryset = AISystem.objects.order_by("name")
        # Opened for one system (?system=), only its attributes, once each; otherwise one group
        # per system (static/js/fairness-form.js then shows only the chosen system's group). A
        # posted form keeps every group, so a wrong pair gets the service's message on the field.
        chosen = None if self.is_bound else getattr(self.initial.get("system"), "slug", None)
        by_slug = {system.slug: system for system in systems}
        if chosen in by_slug:
            attributes = _attributes(by_slug[chosen])
            cast(forms.ChoiceField, self.fields["attribute"]).choices = [
                ("", "Choose the attribute"), *((a, a) for a in attributes)]
            return
        grouped = [(system.name, [(a, a) for a in _attributes(system)]) for system in systems if _attributes(system)]
        cast(forms.ChoiceField, self.fields["attribute"]).choices = [("", "Choose the attribute"), *grouped]


def _attributes(system: AISystem) -> list[str]:
    """The system's protected attributes, each once, in declared order."""
    return list(dict.fromkeys(a for a in (system.protected_attributes or []) if isinstance(a, str)))
