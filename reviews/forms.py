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

    def __init__(self, *args: Any, labels: list[str], blind: bool, final: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.blind = blind
        self.final = final
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
        if final:
            # An adjudicator's decision is final: no further escalation is offered (the server refuses it too).
            self.fields["outcome"].choices = [
                choice for choice in self.fields["outcome"].choices if choice[0] != DecisionOutcome.ESCALATE
            ]
        self.fields["label"].choices = [("", "— choose a label —"), *[(label, label) for label in labels]]
        if blind:
            self.fields["rationale"].widget.attrs["placeholder"] = "Why? Required to escalate."
        if final:
            self.fields["rationale"].widget.attrs["placeholder"] = (
                "Why? (optional)" if blind else "Why? Required for an override."
            )

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


class SkipForm(forms.Form):
    """Skip the held case: the reason is required (the service says so next to the field)."""

    reason = forms.CharField(required=False, max_length=2_000, strip=True,
                             widget=forms.TextInput(attrs={"placeholder": "Why skip? e.g. conflict of interest"}))


class CommentForm(forms.Form):
    body = forms.CharField(required=False, max_length=5_000, strip=True, label="Comment",
                           widget=forms.Textarea(attrs={"rows": 3}))


class AssignForm(forms.Form):
    """An officer hands a case to a named reviewer, with a reason."""

    reviewer = forms.ChoiceField(label="Reviewer")
    reason = forms.CharField(required=False, max_length=2_000, strip=True, label="Reason")

    def __init__(self, *args: Any, reviewers: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reviewer"].choices = [("", "— choose a reviewer —"), *[(name, name) for name in reviewers]]


class OfficerDecisionForm(forms.Form):
    """A compliance officer's final decision on a case routed to the officers."""

    outcome = forms.ChoiceField(widget=forms.RadioSelect, choices=[
        (DecisionOutcome.APPROVE, "Approve the AI label"),
        (DecisionOutcome.OVERRIDE, "Decide another label"),
    ])
    label = forms.ChoiceField(required=False, label="Label (to decide another label)")
    rationale = forms.CharField(required=False, max_length=10_000, strip=True, label="Rationale",
                                widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, labels: list[str], has_ai_label: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not has_ai_label:
            self.fields["outcome"].choices = [(DecisionOutcome.OVERRIDE, "Decide a label")]
            self.fields["outcome"].initial = DecisionOutcome.OVERRIDE
        self.fields["label"].choices = [("", "— choose a label —"), *[(label, label) for label in labels]]
