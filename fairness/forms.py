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
        grouped: list[tuple[str, list[tuple[str, str]]]] = []
        for system in systems:
            attributes = [a for a in (system.protected_attributes or []) if isinstance(a, str)]
            if attributes:
                grouped.append((system.name, [(a, a) for a in dict.fromkeys(attributes)]))
        cast(forms.ChoiceField, self.fields["attribute"]).choices = [("", "Choose the attribute"), *grouped]
