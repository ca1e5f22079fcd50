"""Forms of the reviewer workbench.

They check only the shape of what the browser sent (known choices, sane
lengths). The rules of a decision (a label for an override, a rationale for an
override or an escalation, the live claim) belong to
``reviews.services.decisions.decision_record``: the page shows that service's
errors next to the fields, so the API and the page can never disagree.
"""

from __future__ import annotations

from typing import Any

from django import forms

from reviews.models import DecisionOutcome

# Outcomes offered when the AI suggestion is hidden (blind review, labeling
# without a prediction): the reviewer answers with a label, or escalates.
BLIND_ANSWER = "label"


class ClaimForm(forms.Form):
    """Optional scope of "Claim next": one system, or one intervention point of it."""

    system = forms.SlugField(required=False, max_length=80)
    point = forms.SlugField(required=False, max_length=80)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("point") and not data.get("system"):
            self.add_error("system", "Name the system of the intervention point.")
        return data


class DecisionForm(forms.Form):
    """A reviewer's verdict on the case they hold.

    ``labels`` are the system's label space. With ``blind`` the reviewer answers
    with a label (the server derives approve or override) or escalates.
    """

    outcome = forms.ChoiceField(widget=forms.RadioSelect)
    label = forms.ChoiceField(required=False)
    rationale = forms.CharField(
        required=False,
        max_length=10_000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "Why? Required for an override or an escalation."}),
    )

    def __init__(self, *args: Any, labels: list[str], blind: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.blind = blind
        if blind:
            self.fields["outcome"].choices = [
                (BLIND_ANSWER, "Answer with a label"),
                (DecisionOutcome.ESCALATE, "Escalate to an adjudicator"),
            ]
            self.fields["outcome"].initial = BLIND_ANSWER
        else:
            self.fields["outcome"].choices = [
                (DecisionOutcome.APPROVE, "Approve the AI label"),
                (DecisionOutcome.OVERRIDE, "Override with another label"),
                (DecisionOutcome.ESCALATE, "Escalate to an adjudicator"),
            ]
        self.fields["label"].choices = [("", "— choose a label —"), *[(label, label) for label in labels]]
        if blind:
            self.fields["rationale"].widget.attrs["placeholder"] = "Why? Required to escalate."

    def service_arguments(self) -> dict[str, Any]:
        """The cleaned form as ``decision_record``'s ``outcome``, ``label`` and ``rationale``."""
        outcome: str | None = self.cleaned_data["outcome"]
        label: str | None = self.cleaned_data.get("label") or None
        if outcome == BLIND_ANSWER:
            # Blind answer: the server compares the label with the hidden AI label.
            outcome = None
        elif outcome in (DecisionOutcome.APPROVE, DecisionOutcome.ESCALATE):
            # A label picked before switching to approve/escalate is not part of the verdict.
            label = None
        return {"outcome": outcome, "label": label, "rationale": self.cleaned_data.get("rationale") or ""}
