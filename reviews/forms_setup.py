"""Forms of the review setup page: an intervention point's display configuration and decision fields.

Rows of plain fields (formsets) so an officer needs no JSON; the rules themselves
live in ``reviews.content`` and are applied by ``intervention_point_update``.
"""

from __future__ import annotations

from typing import Any

from django import forms

from reviews.content import FIELD_TYPES, RENDERERS


class DisplayEntryForm(forms.Form):
    field = forms.CharField(max_length=200, required=False, label="Input field (dotted path)",
                            widget=forms.TextInput(attrs={"placeholder": "e.g. documents.scan"}))
    # Not ``renderer``: a form's ``renderer`` attribute is its template renderer.
    shown_as = forms.ChoiceField(choices=[("", "—"), *RENDERERS.items()], required=False, label="Shown as")
    label = forms.CharField(max_length=200, required=False, label="Heading")
    highlights = forms.CharField(max_length=200, required=False, label="Highlights (text only)",
                                 widget=forms.TextInput(attrs={"placeholder": "e.g. spans"}))

    def entry(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if not data or data.get("DELETE") or not (data.get("field") or data.get("shown_as")):
            return None
        entry = {"field": data.get("field", ""), "renderer": data.get("shown_as", "")}
        for key in ("label", "highlights"):
            if data.get(key):
                entry[key] = data[key]
        return entry


class DecisionFieldForm(forms.Form):
    name = forms.CharField(max_length=50, required=False, label="Name (key)",
                           widget=forms.TextInput(attrs={"placeholder": "e.g. severity"}))
    label = forms.CharField(max_length=200, required=False, label="Question")
    type = forms.ChoiceField(choices=[("", "—"), *FIELD_TYPES.items()], required=False, label="Type")
    required = forms.BooleanField(required=False, label="Required")
    choices = forms.CharField(required=False, label="Options (one per line)", max_length=6000,
                              widget=forms.Textarea(attrs={"rows": 2}))
    min = forms.FloatField(required=False, label="Min")
    max = forms.FloatField(required=False, label="Max")
    max_length = forms.IntegerField(required=False, label="Max length", min_value=1)
    help = forms.CharField(max_length=500, required=False, label="Help text")

    def entry(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if not data or data.get("DELETE") or not (data.get("name") or data.get("label") or data.get("type")):
            return None
        entry: dict[str, Any] = {"name": data.get("name", ""), "label": data.get("label", ""),
                                 "type": data.get("type", ""), "required": bool(data.get("required"))}
        if data.get("choices"):
            entry["choices"] = [line.strip() for line in data["choices"].splitlines() if line.strip()]
        for key in ("min", "max"):
            if data.get(key) is not None:
                value = data[key]
                entry[key] = int(value) if float(value).is_integer() else value
        if data.get("max_length") is not None:
            entry["max_length"] = data["max_length"]
        if data.get("help"):
            entry["help"] = data["help"]
        return entry


DisplayFormSet = forms.formset_factory(DisplayEntryForm, extra=3, can_delete=True, max_num=50)
DecisionFieldFormSet = forms.formset_factory(DecisionFieldForm, extra=2, can_delete=True, max_num=20)


def display_initial(display: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**entry, "shown_as": entry["renderer"]} for entry in display]


def fields_initial(fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for spec in fields:
        row = dict(spec)
        if "choices" in row:
            row["choices"] = "\n".join(row["choices"])
        rows.append(row)
    return rows


class SetupReasonForm(forms.Form):
    reason = forms.CharField(max_length=2000, required=False, label="Why the change (kept in the audit trail)")
