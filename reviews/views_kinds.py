"""The workbench for generation and action cases (issue 14).

``CaseView`` hands these cases here: the page shows the conversation, the
prompt and retrieved sources, then the text with an editor and a live diff
(generation) or the tool call with a JSON view of its arguments and an editor
for modified arguments (action). The verdict goes through the same service as
the API (``reviews.services.decisions.decision_record``), whose errors are shown
next to the fields.
"""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from reviews.models import Case, CaseKind, DecisionOutcome, RejectionCategory

OUTCOME_TEXT: dict[str, dict[str, str]] = {
    CaseKind.GENERATION: {
        DecisionOutcome.APPROVE: "Approve the text as written",
        DecisionOutcome.EDIT: "Edit the text (your version goes out)",
        DecisionOutcome.REJECT: "Reject the text",
        DecisionOutcome.ESCALATE: "Escalate to an adjudicator",
    },
    CaseKind.ACTION: {
        DecisionOutcome.APPROVE: "Approve the tool call",
        DecisionOutcome.MODIFY: "Approve with modified arguments",
        DecisionOutcome.DENY: "Deny the tool call",
        DecisionOutcome.ESCALATE: "Escalate to an adjudicator",
    },
}
# Keyboard shortcut per outcome (static/js/kinds.js binds the same keys).
OUTCOME_KEYS = {DecisionOutcome.APPROVE: "a", DecisionOutcome.EDIT: "t", DecisionOutcome.MODIFY: "m",
                DecisionOutcome.REJECT: "x", DecisionOutcome.DENY: "x", DecisionOutcome.ESCALATE: "e"}


class KindDecisionForm(forms.Form):
    """A verdict on a generation or action case (shape only; the service holds the rules)."""

    outcome = forms.ChoiceField(widget=forms.RadioSelect)
    text = forms.CharField(required=False, strip=False, max_length=200_000,
                           widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "true"}))
    arguments = forms.CharField(required=False, max_length=200_000,
                                widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false",
                                                             "class": "wb-code"}))
    category = forms.ChoiceField(required=False)
    rationale = forms.CharField(required=False, max_length=10_000, strip=True,
                                widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, case: Case, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = case.intervention_point.kind
        payload = case.payload or {}
        cast(forms.ChoiceField, self.fields["outcome"]).choices = list(OUTCOME_TEXT[self.kind].items())
        cast(forms.ChoiceField, self.fields["category"]).choices = [("", "— no category —"),
                                                                   *RejectionCategory.choices]
        if self.kind == CaseKind.GENERATION:
            del self.fields["arguments"]
            self.fields["text"].initial = payload.get("text", "")
            self.fields["rationale"].widget.attrs["placeholder"] = "Why? Required to reject or escalate."
        else:
            del self.fields["text"]
            del self.fields["category"]
            self.fields["arguments"].initial = json.dumps(payload.get("arguments", {}), indent=2, ensure_ascii=False)
            self.fields["rationale"].widget.attrs["placeholder"] = (
                "Why? Required to deny (the agent receives it) or escalate."
            )

    def clean_text(self) -> str:
        # Browsers send a textarea's line breaks as CRLF; the AI's text has LF.
        return (self.cleaned_data.get("text") or "").replace("\r\n", "\n")

    def clean_arguments(self) -> Any:
        raw = self.cleaned_data.get("arguments") or ""
        if self.data.get("outcome") != DecisionOutcome.MODIFY:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from None

    def error_target(self, service_field: str) -> str | None:
        """The form field showing a service error (as ``DecisionForm.error_target``; no extra fields here)."""
        return service_field if service_field in self.fields else None

    def service_arguments(self) -> dict[str, Any]:
        """The cleaned form as ``decision_record``'s keyword arguments (only what the outcome uses)."""
        outcome = self.cleaned_data["outcome"]
        arguments: dict[str, Any] = {"outcome": outcome, "label": None,
                                     "rationale": self.cleaned_data.get("rationale") or ""}
        if outcome == DecisionOutcome.EDIT:
            arguments["text"] = self.cleaned_data.get("text") or ""
        if outcome == DecisionOutcome.MODIFY:
            arguments["arguments"] = self.cleaned_data.get("arguments")
        if outcome == DecisionOutcome.REJECT:
            arguments["category"] = self.cleaned_data.get("category") or ""
        return arguments


def _schema_json(case: Case) -> str:
    schema = (case.intervention_point.tool_schemas or {}).get((case.payload or {}).get("tool"))
    return json.dumps(schema, indent=2, ensure_ascii=False) if schema else ""


def render_kind_case(request: HttpRequest, case: Case, form: KindDecisionForm, *, reasons: list[dict[str, str]],
                     status: int = 200) -> HttpResponse:
    payload = case.payload or {}
    kind = case.intervention_point.kind
    outcomes = [{"radio": radio, "key": OUTCOME_KEYS.get(radio.data["value"], "")} for radio in form["outcome"]]
    context = {
        "case": case,
        "kind": kind,
        "payload": payload,
        "conversation": payload.get("conversation") or [],
        "sources": payload.get("sources") or [],
        "arguments_json": json.dumps(payload.get("arguments", {}), indent=2, ensure_ascii=False),
        "original": {"text": payload.get("text", ""), "arguments": payload.get("arguments", {})},
        "schema_json": _schema_json(case),
        "reasons": reasons,
        "guidelines": case.intervention_point.guidelines,
        "form": form,
        "outcomes": outcomes,
        "now": timezone.now(),
    }
    return render(request, "reviews/case_kind.html", context, status=status)
