"""Forms of the quality pages (input only: the services validate again and do the work)."""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.contrib.auth.models import User

from quality.models import GoldItem
from quality.selectors import PERIODS
from reviews.models import AISystem, InterventionPoint, ReviewerStatus


class ReviewerStatusForm(forms.Form):
    """Suspend or reinstate a reviewer (a compliance officer's act, with a reason)."""

    status = forms.ChoiceField(choices=ReviewerStatus.choices)
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class TrainingRecordForm(forms.Form):
    title = forms.CharField(max_length=200)
    kind = forms.CharField(max_length=40, initial="ai_literacy")
    completed_at = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    expires_at = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    system = forms.ModelChoiceField(queryset=AISystem.objects.order_by("slug"), required=False,
                                    to_field_name="slug", empty_label="(all systems)")
    evidence_url = forms.URLField(required=False, assume_scheme="https")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what BaseForm.clean returns (its stub says "or None")
        if data.get("expires_at") and data.get("completed_at") and data["expires_at"] < data["completed_at"]:
            self.add_error("expires_at", "Must not be before the completion date.")
        return data


def _point_choices() -> list[tuple[str, str]]:
    return [
        (f"{p.system.slug}/{p.slug}", f"{p.system.name} · {p.name}")
        for p in InterventionPoint.objects.select_related("system").order_by("system__slug", "slug")
    ]


class GoldItemForm(forms.Form):
    """One gold item typed in by an officer."""

    target = forms.ChoiceField(label="Intervention point", choices=())
    input = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), help_text="The case input as a JSON object.")
    prediction_label = forms.CharField(max_length=100, required=False,
                                       help_text="The AI's label (leave empty only at a labeling point).")
    prediction_confidence = forms.FloatField(required=False, min_value=0.0, max_value=1.0)
    model_version = forms.CharField(max_length=100, required=False)
    gold_label = forms.CharField(max_length=100)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                           help_text="Why this is the right answer (officers only).")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["target"]).choices = _point_choices()

    def clean_input(self) -> dict[str, Any]:
        try:
            value = json.loads(self.cleaned_data["input"])
        except ValueError as exc:
            raise forms.ValidationError("Must be valid JSON.") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("Must be a JSON object.")
        return value

    def point(self) -> InterventionPoint:
        system_slug, point_slug = self.cleaned_data["target"].split("/", 1)
        return InterventionPoint.objects.select_related("system").get(system__slug=system_slug, slug=point_slug)

    def prediction(self) -> dict[str, Any] | None:
        label = (self.cleaned_data.get("prediction_label") or "").strip()
        if not label:
            return None
        return {"label": label, "confidence": self.cleaned_data.get("prediction_confidence"),
                "model_version": self.cleaned_data.get("model_version") or ""}


class GoldImportForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="Header: system, intervention_point, input, gold_label, and "
                           "optionally prediction_label, prediction_confidence, model_version, external_id, note.")

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > 5_000_000:
            raise forms.ValidationError("At most 5 MB.")
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError("Must be UTF-8 text.") from exc


class GoldItemChoiceField(forms.ModelMultipleChoiceField):
    """Gold items labelled with their system, intervention point and gold label."""

    def label_from_instance(self, obj: GoldItem) -> str:
        return f"#{obj.pk} · {obj.case.system.slug}/{obj.case.intervention_point.slug} · gold: {obj.case.gold_label}"


class CalibrationForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    items = GoldItemChoiceField(
        queryset=GoldItem.objects.filter(active=True).select_related("case__system", "case__intervention_point"),
        widget=forms.CheckboxSelectMultiple,
    )
    reviewers = forms.ModelMultipleChoiceField(
        queryset=User.objects.filter(reviewer_profile__status=ReviewerStatus.ACTIVE, is_active=True).order_by(
            "username"),
        widget=forms.CheckboxSelectMultiple,
    )


class AgreementFilterForm(forms.Form):
    system = forms.ModelChoiceField(queryset=AISystem.objects.order_by("slug"), required=False, to_field_name="slug",
                                    empty_label="(all systems)")
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To (exclusive)", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    period = forms.ChoiceField(choices=[(p, p) for p in PERIODS], initial="week", required=False)


class ThresholdApplyForm(forms.Form):
    """The officer's confirmation that a threshold becomes the point's routing rule."""

    threshold = forms.DecimalField(min_value=0, max_value=1, decimal_places=2, max_digits=3)
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    confirm = forms.BooleanField(
        label="I confirm: cases at or above this confidence will be auto-accepted under the new rules.",
    )
