"""Input and response shapes of the review-queue endpoints (plain serializers: validation only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rest_framework import serializers

from reviews.api.serializers.cases import ActionSerializer, GenerationSerializer
from reviews.models import DecisionOutcome, RejectionCategory


class ClaimRequestSerializer(serializers.Serializer):
    """``{system?, intervention_point?}``: narrow the claim to one system or intervention point."""

    system = serializers.SlugField(required=False, allow_null=True, max_length=80)
    intervention_point = serializers.SlugField(required=False, allow_null=True, max_length=80)


class PredictionSerializer(serializers.Serializer):
    # The API field is named "label"; the stubs know only Field.label (the display label).
    label = serializers.CharField(allow_null=True)  # type: ignore[assignment]
    confidence = serializers.FloatField(allow_null=True)
    model_version = serializers.CharField(allow_blank=True)
    explanation = serializers.JSONField(
        required=False, help_text="{reason_codes: [str], attributions: [{feature, value?, weight}]}, when sent"
    )


class RoutingSerializer(serializers.Serializer):
    routed = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())
    rules_version = serializers.IntegerField()


class EarlierDecisionSerializer(serializers.Serializer):
    """A verdict of an earlier reviewer, shown only to the adjudicator of an escalated case."""

    round = serializers.IntegerField()
    reviewer = serializers.CharField()
    outcome = serializers.CharField(help_text='approve, override, escalate, ...; "answer" on a blind case')
    label = serializers.CharField(allow_null=True)  # type: ignore[assignment]  # API field, not Field.label
    rationale = serializers.CharField(allow_blank=True)
    decided_at = serializers.DateTimeField()
    is_adjudication = serializers.BooleanField()
    output = serializers.JSONField(
        required=False,
        help_text="Generation edit: {text, diff (unified)}; "
                  "action modify: {arguments, diff [{path, op, before?, after?}]}.",
    )
    category = serializers.ChoiceField(choices=RejectionCategory.choices, required=False,
                                       help_text="A rejected generation's category.")


class EscalationReasonSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    who = serializers.CharField()
    text = serializers.CharField()
    why = serializers.CharField(allow_blank=True)


class AdjudicationSerializer(serializers.Serializer):
    decisions = EarlierDecisionSerializer(many=True, help_text="Every earlier verdict, all rounds, oldest first.")
    reasons = EscalationReasonSerializer(many=True, help_text="Why the case stands escalated.")


class ClaimedCaseSerializer(serializers.Serializer):
    """The claimed case as a reviewer sees it (no other decisions, no gold marker, no ground truth).

    Generation and action cases add ``kind``, the payload (``generation`` or
    ``action``), ``tool_schema`` and ``expires_at``; an adjudication round adds
    ``adjudication``. A first-round classification case has none of them.
    """

    id = serializers.IntegerField()
    system = serializers.CharField()
    intervention_point = serializers.CharField()
    stage = serializers.CharField()
    input = serializers.JSONField()
    prediction = PredictionSerializer(allow_null=True, help_text="null when the case is served blind")
    routing = RoutingSerializer()
    labels = serializers.ListField(child=serializers.CharField())
    guidelines = serializers.CharField(allow_blank=True)
    display = serializers.ListField(child=serializers.JSONField(),
                                    help_text="The point's display configuration [{field, renderer, label?}]")
    decision_fields = serializers.ListField(
        child=serializers.JSONField(), help_text="Extra decision fields to answer in form_values"
    )
    sla_deadline = serializers.DateTimeField(allow_null=True)
    # A CharField, not a ChoiceField: a second enum named "kind" would collide in the schema's naming.
    kind = serializers.CharField(required=False, help_text='"generation" or "action" (absent: classification).')
    generation = GenerationSerializer(required=False, help_text="Generation cases: the text under review.")
    action = ActionSerializer(required=False, help_text="Action cases: the proposed tool call.")
    # Absent rather than null when there is none: an absent optional field is how this
    # response stays byte-identical for classification cases (the serializer skips it).
    tool_schema = serializers.JSONField(
        required=False,
        help_text="Action cases, when the point declares one: the tool's JSON Schema (modified arguments must fit it).",
    )
    expires_at = serializers.DateTimeField(
        required=False, help_text="Generation/action cases with an SLA: when the breach rule applies."
    )
    adjudication = AdjudicationSerializer(required=False,
                                          help_text="Only when the claim is an adjudication (the case is escalated).")


class ClaimResponseSerializer(serializers.Serializer):
    case = ClaimedCaseSerializer()
    lease_expires_at = serializers.DateTimeField()


# --- Rendering the claim response -------------------------------------------------------
#
# ``ClaimResponseSerializer(body).data`` deep-copies four serializers' fields on every
# claim, which cost more CPU than the claim's own queries. ``claim_response`` renders
# the same JSON with the same field conversions (each field's ``to_representation``,
# ``None`` kept as null) without building serializers; a test holds the two equal.

_DATETIME = serializers.DateTimeField()
_BOOLEAN = serializers.BooleanField()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _when(value: datetime | None) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


def _prediction(prediction: dict[str, Any]) -> dict[str, Any]:
    body = {
        "label": _text(prediction.get("label")),
        "confidence": None if prediction.get("confidence") is None else float(prediction["confidence"]),
        "model_version": _text(prediction.get("model_version")),
    }
    if prediction.get("explanation"):
        body["explanation"] = prediction["explanation"]
    return body


def _adjudication(adjudication: dict[str, Any]) -> dict[str, Any]:
    decisions = []
    for row in adjudication["decisions"]:
        view = {**row, "decided_at": _when(row["decided_at"])}
        decisions.append(view)
    reasons = [{**row, "at": _when(row["at"])} for row in adjudication["reasons"]]
    return {"decisions": decisions, "reasons": reasons}


def _extras(case: dict[str, Any]) -> dict[str, Any]:
    """The optional fields of ``reviews.selectors.claims.claim_extras``, present only when given."""
    body: dict[str, Any] = {}
    if "kind" in case:
        body["kind"] = case["kind"]
        for name in ("generation", "action", "tool_schema"):
            if name in case:
                body[name] = case[name]
        if case.get("expires_at") is not None:
            body["expires_at"] = _when(case["expires_at"])
    if "adjudication" in case:
        body["adjudication"] = _adjudication(case["adjudication"])
    return body


def claim_response(case: dict[str, Any], *, lease_expires_at: datetime | None) -> dict[str, Any]:
    """``ClaimResponseSerializer({"case": case, "lease_expires_at": ...}).data``, rendered directly.

    ``case`` is ``reviews.selectors.queue.claim_payload(case)``, updated with
    ``reviews.selectors.claims.claim_extras(case)`` for the optional fields.
    """
    prediction = case.get("prediction")
    routing = case.get("routing")
    labels = case.get("labels")
    return {
        "case": {
            "id": None if case.get("id") is None else int(case["id"]),
            "system": _text(case.get("system")),
            "intervention_point": _text(case.get("intervention_point")),
            "stage": _text(case.get("stage")),
            "input": case.get("input"),
            "prediction": None if prediction is None else _prediction(prediction),
            "routing": None if routing is None else {
                "routed": None if routing.get("routed") is None else _BOOLEAN.to_representation(routing["routed"]),
                "reasons": None if routing.get("reasons") is None else [_text(r) for r in routing["reasons"]],
                "rules_version": None if routing.get("rules_version") is None else int(routing["rules_version"]),
            },
            "labels": None if labels is None else [_text(label) for label in labels],
            "guidelines": _text(case.get("guidelines")),
            "display": list(case.get("display") or []),
            "decision_fields": list(case.get("decision_fields") or []),
            "sla_deadline": _when(case.get("sla_deadline")),
            **_extras(case),
        },
        "lease_expires_at": _when(lease_expires_at),
    }


class DecisionRequestSerializer(serializers.Serializer):
    """``{outcome, label?, rationale?, form_values?}``; a blind case is answered with ``{label, rationale?}``.

    ``form_values`` answers the intervention point's extra decision fields
    (``{name: value}``); the service checks them and names a bad one as
    ``form_values.<name>``.
    """

    outcome = serializers.ChoiceField(choices=DecisionOutcome.choices, required=False, allow_null=True)
    label = serializers.CharField(required=False, allow_null=True, max_length=100)  # type: ignore[assignment]  # API field, not Field.label
    rationale = serializers.CharField(required=False, allow_blank=True, default="", max_length=20000)
    form_values = serializers.DictField(required=False, allow_null=True, allow_empty=True,
                                        help_text="Answers to the extra decision fields, {name: value}.")
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=200_000,
                                 help_text="Generation, outcome edit: the corrected text.")
    arguments = serializers.JSONField(required=False, help_text="Action, outcome modify: the modified arguments.")
    category = serializers.ChoiceField(choices=RejectionCategory.choices, required=False,
                                       help_text="Generation, outcome reject: factuality, safety, policy, other.")
    claim_next = ClaimRequestSerializer(
        required=False, allow_null=True,
        help_text="Extension: after the decision is saved, claim the next case in this scope ({} for any) and "
                  "return it under `next`, as POST /queue/claim/ would: one round trip per case.",
    )


class NextRefusedSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class DecisionResponseSerializer(serializers.Serializer):
    case = serializers.IntegerField()
    case_status = serializers.CharField()
    final_label = serializers.CharField(allow_null=True)
    next = ClaimResponseSerializer(
        required=False, allow_null=True,
        help_text="Only with `claim_next`: the claimed next case, or null when nothing is claimable.",
    )
    next_refused = NextRefusedSerializer(
        required=False,
        help_text="Only with `claim_next`, when the reviewer may no longer claim (e.g. suspended by the gold item "
                  "just decided): the code and detail POST /queue/claim/ would answer with 403. The decision stands.",
    )


class LeaseResponseSerializer(serializers.Serializer):
    case = serializers.IntegerField()
    lease_expires_at = serializers.DateTimeField()


class ReleaseResponseSerializer(serializers.Serializer):
    case = serializers.IntegerField()
    case_status = serializers.CharField()


class ReopenRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=5000)


class ReopenResponseSerializer(serializers.Serializer):
    case = serializers.IntegerField()
    case_status = serializers.CharField()
    review_round = serializers.IntegerField()


class AssignRequestSerializer(serializers.Serializer):
    """``{reviewer, reason}``: hand an open case to a named reviewer (username)."""

    reviewer = serializers.CharField(max_length=150)
    reason = serializers.CharField(max_length=5000)


class AssignResponseSerializer(serializers.Serializer):
    case = serializers.IntegerField()
    case_status = serializers.CharField()
    claimed_by = serializers.CharField()
    lease_expires_at = serializers.DateTimeField()


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
