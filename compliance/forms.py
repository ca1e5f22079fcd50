"""Forms of the compliance workspace pages.

They check shapes (choices, lengths, dates). The rules belong to the services
(``reviews.services.systems``, ``compliance.services.*``); the pages show those
services' errors next to the fields, so a page and the API never disagree.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms

from compliance.classification import (
    ANNEX_III_AREAS,
    ANNEX_III_POINTS,
    ART50_DUTIES,
    EXCEPTION_6_3,
    PROHIBITED_PRACTICES,
    SCOPE_EXCLUSIONS,
)
from compliance.models import ObligationStatus
from compliance.services.fria import FRIA_FIELDS
from reviews.models import MIN_RETENTION_DAYS, OperatorRole, RiskTier

LIST_SEPARATOR_HELP = "Comma-separated."


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _annex_label(point: str) -> str:
    letter = f"({point[1:]})" if len(point) > 1 else ""
    return f"{point[0]}{letter} {ANNEX_III_POINTS[point]}"


class SystemForm(forms.Form):
    """Registration of an AI system (create and edit); lists are typed comma-separated."""

    slug = forms.SlugField(max_length=80, help_text="Identifies the system to integrations; cannot change later.")
    name = forms.CharField(max_length=200)
    purpose = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=20000, required=False,
                              help_text="The intended purpose (Annex IV 1).")
    provider = forms.CharField(max_length=200, required=False)
    role = forms.ChoiceField(choices=OperatorRole.choices, help_text="Our role under the AI Act.")
    sector = forms.CharField(max_length=100, required=False)
    declared_tier = forms.ChoiceField(choices=[("", "Not declared"), *RiskTier.choices], required=False,
                                      help_text="The classification wizard's tier wins over this one.")
    annex_iii_area = forms.ChoiceField(
        choices=[("", "None"), *[(p, _annex_label(p)) for p in ANNEX_III_POINTS]], required=False,
        label="Annex III point",
    )
    is_public_body = forms.BooleanField(required=False, label="Deployed by a public body or for a public service")
    labels = forms.CharField(max_length=20000, help_text=f"The label space. {LIST_SEPARATOR_HELP}")
    positive_label = forms.CharField(max_length=100, required=False)
    protected_attributes = forms.CharField(max_length=5000, required=False,
                                           help_text=f"Subject attributes to audit for bias. {LIST_SEPARATOR_HELP}")
    retention_days = forms.IntegerField(min_value=MIN_RETENTION_DAYS, initial=MIN_RETENTION_DAYS,
                                        help_text="At least six months (Art. 19, Art. 26(6)).")
    reason = forms.CharField(max_length=2000, required=False, label="Reason for the change",
                             widget=forms.TextInput())

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = editing
        if editing:
            self.fields["slug"].disabled = True
        else:
            del self.fields["reason"]

    def service_fields(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data.pop("reason", None)
        data["labels"] = _split(data["labels"])
        data["protected_attributes"] = _split(data.get("protected_attributes") or "")
        if self.editing:
            data.pop("slug", None)
        return data

    @staticmethod
    def initial_for(system: Any) -> dict[str, Any]:
        return {
            "slug": system.slug, "name": system.name, "purpose": system.purpose, "provider": system.provider,
            "role": system.role, "sector": system.sector, "declared_tier": system.declared_tier,
            "annex_iii_area": system.annex_iii_area, "is_public_body": system.is_public_body,
            "labels": ", ".join(system.labels), "positive_label": system.positive_label,
            "protected_attributes": ", ".join(system.protected_attributes or []),
            "retention_days": system.retention_days,
        }


# --- Classification wizard: one form per step ------------------------------------------------------


class _Checkboxes(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, choices: dict[str, Any], label_of: Any, **kwargs: Any) -> None:
        super().__init__(choices=[(key, label_of(key, value)) for key, value in choices.items()], required=False,
                         **kwargs)


class ScopeStepForm(forms.Form):
    scope_exclusions = _Checkboxes(SCOPE_EXCLUSIONS, lambda k, v: f"{v[1]} ({v[0]})",
                                   label="Which of these hold for the system?")


class ProhibitedStepForm(forms.Form):
    prohibited_practices = _Checkboxes(PROHIBITED_PRACTICES, lambda k, v: f"{v[1]} ({v[0]})",
                                       label="Does the system do any of these?")


class HighRiskStepForm(forms.Form):
    annex_i_product = forms.BooleanField(
        required=False, label="It is a safety component of a product (or itself a product) covered by Annex I "
                              "Union harmonisation law that needs a third-party conformity assessment (Art. 6(1)).")
    annex_iii = _Checkboxes(ANNEX_III_POINTS, lambda k, v: _annex_label(k),
                            label="Is it used in any of these Annex III use cases (Art. 6(2))?")

    @staticmethod
    def grouped() -> list[tuple[str, str, list[str]]]:
        """Annex III points by area, for the template."""
        return [(area, title, [p for p in ANNEX_III_POINTS if p[0] == area]) for area, title in ANNEX_III_AREAS.items()]


class ExceptionStepForm(forms.Form):
    exception_6_3 = _Checkboxes(EXCEPTION_6_3, lambda k, v: f"({k}) {v}",
                                label="Does the system pose no significant risk because it only does one of these "
                                      "(Art. 6(3))?")
    profiling = forms.BooleanField(required=False, label="It profiles natural persons (evaluates personal aspects "
                                                         "such as economic situation, behaviour or reliability).")


class TransparencyStepForm(forms.Form):
    art50 = _Checkboxes(ART50_DUTIES, lambda k, v: f"Art. {k[:2]}({k[3:]}), {v[0]}: {v[1]}",
                        label="Which of these apply (Art. 50)?")


class ClassificationConfirmForm(forms.Form):
    reason = forms.CharField(max_length=2000, required=False, label="Note for the audit trail",
                             widget=forms.Textarea(attrs={"rows": 2}))


# --- Obligations, FRIA, suspension ------------------------------------------------------------------


class ObligationForm(forms.Form):
    status = forms.ChoiceField(choices=ObligationStatus.choices)
    owner = forms.ChoiceField(required=False)
    due = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    note = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 3}))
    evidence_url = forms.URLField(required=False, max_length=2000, label="Evidence link", assume_scheme="https")
    evidence_title = forms.CharField(required=False, max_length=200, label="Evidence title")
    evidence_file = forms.FileField(required=False, label="Evidence file")
    capture_portal_evidence = forms.BooleanField(required=False, label="Attach the portal's own evidence now")
    reason = forms.CharField(required=False, max_length=2000, label="Reason for the change",
                             widget=forms.TextInput())

    def __init__(self, *args: Any, owners: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["owner"]).choices = [("", "Nobody"), *[(name, name) for name in owners]]


class FriaForm(forms.Form):
    processes = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=20_000,
                                label="(a) Processes in which the system is used, in line with its intended purpose")
    period_and_frequency = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=20_000,
                                           label="(b) Period of time and frequency of use")
    affected_persons = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=20_000,
                                       label="(c) Categories of natural persons and groups likely to be affected")
    risks_of_harm = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=20_000,
                                    label="(d) Specific risks of harm to those persons or groups")
    human_oversight = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=20_000,
                                      label="(e) How human oversight is implemented (per the instructions for use)")
    mitigation = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=20_000,
                                 label="(f) Measures if the risks materialise, incl. internal governance and "
                                       "complaint mechanisms")
    first_use_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                                   label="First use (the FRIA is done before it)")
    authority_notified_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                                            label="Market surveillance authority notified on")
    change_summary = forms.CharField(required=False, max_length=500, label="What changed in this version")

    def contents(self) -> dict[str, str]:
        return {name: self.cleaned_data[name] for name in FRIA_FIELDS}


class SuspendForm(forms.Form):
    incident = forms.IntegerField(min_value=1)
    reason = forms.CharField(max_length=2000, required=False)
