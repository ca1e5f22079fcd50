"""Input and response shapes of the review-queue endpoints (plain serializers: validation only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rest_framework import serializers

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


class ClaimedCaseSerializer(serializers.Serializer):
    """The claimed case as a reviewer sees it (no other decisions, no gold marker, no ground truth)."""

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


def claim_response(case: dict[str, Any], *, lease_expires_at: datetime | None) -> dict[str, Any]:
    """``ClaimResponseSerializer({"case": case, "lease_expires_at": ...}).data``, rendered directly.

    ``case`` is ``reviews.selectors.queue.claim_payload(case)``.
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


class DecisionResponseSerializer(serializers.Serializer):
    case = serializers.IntegerField()
    case_status = serializers.CharField()
    final_label = serializers.CharField(allow_null=True)


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
