"""Input and response shapes of the review-queue endpoints (plain serializers: validation only)."""

from __future__ import annotations

from rest_framework import serializers

from reviews.models import DecisionOutcome


class ClaimRequestSerializer(serializers.Serializer):
    """``{system?, intervention_point?}``: narrow the claim to one system or intervention point."""

    system = serializers.SlugField(required=False, allow_null=True, max_length=80)
    intervention_point = serializers.SlugField(required=False, allow_null=True, max_length=80)


class PredictionSerializer(serializers.Serializer):
    label = serializers.CharField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    model_version = serializers.CharField(allow_blank=True)


class RoutingSerializer(serializers.Serializer):
    routed = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())
    rules_version = serializers.IntegerField()


class ClaimedCaseSerializer(serializers.Serializer):
    """The claimed case as a reviewer sees it (no other decisions, no gold marker, no ground truth)."""

    id = serializers.IntegerField()
    external_id = serializers.CharField()
    system = serializers.CharField()
    intervention_point = serializers.CharField()
    stage = serializers.CharField()
    input = serializers.JSONField()
    prediction = PredictionSerializer(allow_null=True, help_text="null when the case is served blind")
    routing = RoutingSerializer()
    labels = serializers.ListField(child=serializers.CharField())
    guidelines = serializers.CharField(allow_blank=True)
    received_at = serializers.DateTimeField()
    sla_deadline = serializers.DateTimeField(allow_null=True)


class ClaimResponseSerializer(serializers.Serializer):
    case = ClaimedCaseSerializer()
    lease_expires_at = serializers.DateTimeField()


class DecisionRequestSerializer(serializers.Serializer):
    """``{outcome, label?, rationale?}``; a blind case is answered with ``{label, rationale?}``."""

    outcome = serializers.ChoiceField(choices=DecisionOutcome.choices, required=False, allow_null=True)
    label = serializers.CharField(required=False, allow_null=True, max_length=100)
    rationale = serializers.CharField(required=False, allow_blank=True, default="", max_length=20000)


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


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
