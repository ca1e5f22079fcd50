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
# Extra decision fields (the point's custom review form) are form fields with this prefix.
EXTRA_PREFIX = "xf_"


def _choice_field(form: forms.BaseForm, name: str) -> forms.ChoiceField:
    """The form's own (deep-copied) choice field ``name``; ``form.fields`` is typed as plain ``Field``."""
    field = form.fields[name]
    if not isinstance(field, forms.ChoiceField):
        raise TypeError(f"{type(form).__name__}.{name} is not a choice field")
    return field


class ClaimForm(forms.Form):
    """Optional scope of "Claim next": one system, or one intervention point of it."""

    system = forms.SlugField(required=False, max_length=80)
    point = forms.SlugField(required=False, max_length=80)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what Form.clean returns (the stubs allow None)
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

    def __init__(
        self, *args: Any, labels: list[str], blind: bool, final: bool = False,
        extra_fields: list[dict[str, Any]] | None = None, **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.blind = blind
        self.final = final
        self.extra_specs = list(extra_fields or [])
        for spec in self.extra_specs:
            self.fields[EXTRA_PREFIX + spec["name"]] = _extra_field(spec)
        outcomes: list[tuple[str, str]]
        if blind:
            outcomes = [
                (BLIND_ANSWER, "Answer with a label"),
                (DecisionOutcome.ESCALATE, "Escalate to an adjudicator"),
            ]
            self.fields["outcome"].initial = BLIND_ANSWER
        else:
            outcomes = [
                (DecisionOutcome.APPROVE, "Approve the AI label"),
                (DecisionOutcome.OVERRIDE, "Override with another label"),
                (DecisionOutcome.ESCALATE, "Escalate to an adjudicator"),
            ]
        if final:
            # An adjudicator's decision is final: no further escalation is offered (the server refuses it too).
            outcomes = [choice for choice in outcomes if choice[0] != DecisionOutcome.ESCALATE]
        _choice_field(self, "outcome").choices = outcomes
        _choice_field(self, "label").choices = [("", "— choose a label —"), *[(label, label) for label in labels]]
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
        return {"outcome": outcome, "label": label, "rationale": self.cleaned_data.get("rationale") or "",
                "form_values": self.form_values()}

    def form_values(self) -> dict[str, Any]:
        """The answers to the extra decision fields (empty ones left out; the service checks the rest)."""
        values: dict[str, Any] = {}
        for spec in self.extra_specs:
            value = self.cleaned_data.get(EXTRA_PREFIX + spec["name"])
            if value in (None, "", []):
                continue
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            values[spec["name"]] = value
        return values

    def extra_bound_fields(self) -> list[tuple[dict[str, Any], forms.BoundField]]:
        return [(spec, self[EXTRA_PREFIX + spec["name"]]) for spec in self.extra_specs]

    def error_target(self, service_field: str) -> str | None:
        """The form field showing a service error (``form_values.<name>`` → its extra field)."""
        if service_field.startswith("form_values."):
            name = EXTRA_PREFIX + service_field.removeprefix("form_values.")
            return name if name in self.fields else None
        return service_field if service_field in self.fields else None


def _extra_field(spec: dict[str, Any]) -> forms.Field:
    """A form field for one extra decision field.

    Never ``required`` here: a required answer is needed for a verdict but not for an
    escalation, which only ``decision_record`` knows; it reports the missing field.
    """
    label = spec["label"]
    help_text = spec.get("help", "")
    kind = spec["type"]
    if kind == "single_choice":
        return forms.ChoiceField(label=label, help_text=help_text, required=False, widget=forms.RadioSelect,
                                 choices=[(c, c) for c in spec["choices"]])
    if kind == "multi_choice":
        return forms.MultipleChoiceField(label=label, help_text=help_text, required=False,
                                         widget=forms.CheckboxSelectMultiple,
                                         choices=[(c, c) for c in spec["choices"]])
    if kind == "number":
        attrs = {"step": "any"}
        if "min" in spec:
            attrs["min"] = spec["min"]
        if "max" in spec:
            attrs["max"] = spec["max"]
        return forms.FloatField(label=label, help_text=help_text, required=False,
                                widget=forms.NumberInput(attrs=attrs))
    return forms.CharField(label=label, help_text=help_text, required=False, strip=True,
                           max_length=spec.get("max_length"),
                           widget=forms.Textarea(attrs={"rows": 2, "maxlength": spec.get("max_length")}))


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
        _choice_field(self, "reviewer").choices = [("", "— choose a reviewer —"), *[(name, name) for name in reviewers]]


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
            _choice_field(self, "outcome").choices = [(DecisionOutcome.OVERRIDE, "Decide a label")]
            self.fields["outcome"].initial = DecisionOutcome.OVERRIDE
        _choice_field(self, "label").choices = [("", "— choose a label —"), *[(label, label) for label in labels]]
