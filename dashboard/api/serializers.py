"""Input validation of the KPI endpoints (query parameters) and the documented response shapes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from dashboard.selectors import KpiScope
from hitl_portal.api.dates import MomentField
from reviews.models import AISystem

DEFAULT_PERIOD = dt.timedelta(days=30)
MAX_PERIOD = dt.timedelta(days=3660)
class KpiQuerySerializer(serializers.Serializer):
    """``?system=&from=&to=``: one system (slug, all when absent) over ``[from, to)``.

    ``to`` defaults to now and ``from`` to 30 days before ``to``.
    """

    def get_fields(self) -> dict[str, serializers.Field]:
        # "from" is a Python keyword: declared here rather than as a class attribute.
        return {
            "system": serializers.CharField(required=False, allow_blank=True, max_length=80),
            "from": MomentField(required=False),
            "to": MomentField(required=False),
        }

    def validate_system(self, value: str) -> AISystem | None:
        if not value:
            return None
        if "\x00" in value:
            raise serializers.ValidationError("Unknown system.")
        system = AISystem.objects.filter(slug=value).first()
        if system is None:
            raise serializers.ValidationError(f"Unknown system: {value!r}.")
        return system

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        end = attrs.get("to") or timezone.now()
        start = attrs.get("from") or end - DEFAULT_PERIOD
        if start >= end:
            raise serializers.ValidationError({"to": ["Must be later than from."]})
        if end - start > MAX_PERIOD:
            raise serializers.ValidationError({"from": [f"The period may span at most {MAX_PERIOD.days} days."]})
        attrs["scope"] = KpiScope(start=start, end=end, system=attrs.get("system"))
        return attrs


def scope_from_query(query: Any) -> KpiScope:
    """Validate the query parameters (400 naming the field) and return the KPI scope."""
    serializer = KpiQuerySerializer(data={key: query.get(key) for key in ("system", "from", "to") if key in query})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["scope"]


# --- Response shapes (documentation only) -----------------------------------------------------------


class AgreementSerializer(serializers.Serializer):
    percent = serializers.FloatField(allow_null=True, help_text="Share of agreeing reviewer pairs (fraction).")
    kappa = serializers.FloatField(
        allow_null=True,
        help_text="Chance-corrected agreement: Cohen's κ when exactly two reviewers rated every case together, "
        "else Fleiss' κ (pairwise form for a varying number of reviewers).",
    )
    alpha = serializers.FloatField(allow_null=True, help_text="Krippendorff's α (nominal, missing data allowed).")
    statistic = serializers.ChoiceField(choices=["cohen", "fleiss"], allow_null=True, help_text="Which κ.")
    units = serializers.IntegerField(help_text="Case rounds decided by two or more reviewers.")
    pairs = serializers.IntegerField(help_text="Reviewer pairs compared.")


class PercentilesSerializer(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)


class KindKpiRowSerializer(serializers.Serializer):
    """One generation or action intervention point (rates are fractions of the human-decided cases)."""

    system = serializers.CharField()
    intervention_point = serializers.CharField()
    kind = serializers.ChoiceField(choices=["generation", "action"])
    cases = serializers.IntegerField()
    auto_accepted = serializers.IntegerField()
    open = serializers.IntegerField()
    expired = serializers.IntegerField(help_text="Resolved by the breach rule (actions: denied by default).")
    human_decided = serializers.IntegerField()
    time_to_decision_s = PercentilesSerializer()
    approved = serializers.IntegerField(required=False, help_text="Generation.")
    edited = serializers.IntegerField(required=False, help_text="Generation.")
    rejected = serializers.IntegerField(required=False, help_text="Generation.")
    edit_rate = serializers.FloatField(required=False, allow_null=True, help_text="Generation.")
    rejection_rate = serializers.FloatField(required=False, allow_null=True, help_text="Generation.")
    mean_edit_distance = serializers.FloatField(
        required=False, allow_null=True, help_text="Generation: mean normalised Levenshtein distance of the edits."
    )
    rejection_categories = serializers.DictField(child=serializers.IntegerField(), required=False)
    approvals = serializers.IntegerField(required=False, help_text="Action.")
    modifications = serializers.IntegerField(required=False, help_text="Action.")
    denials = serializers.IntegerField(required=False, help_text="Action.")
    modification_rate = serializers.FloatField(required=False, allow_null=True, help_text="Action.")
    denial_rate = serializers.FloatField(required=False, allow_null=True, help_text="Action.")
    approval_rate = serializers.FloatField(allow_null=True)


class KpiResponseSerializer(serializers.Serializer):
    """``GET /api/v1/kpis/``: every rate is a fraction; ``null`` where undefined."""

    cases_total = serializers.IntegerField(help_text="Non-gold cases received in [from, to).")
    auto_accepted = serializers.IntegerField(help_text="Cases not routed to a person.")
    reviewed = serializers.IntegerField(help_text="Routed cases with a final decision.")
    automation_rate = serializers.FloatField(allow_null=True)
    override_rate = serializers.FloatField(
        allow_null=True, help_text="Reviewed cases (with an AI label) whose final label differs from it."
    )
    accuracy_ai = serializers.FloatField(allow_null=True, help_text="On closed cases with ground truth.")
    accuracy_final = serializers.FloatField(allow_null=True)
    accuracy_lift = serializers.FloatField(allow_null=True, help_text="accuracy_final − accuracy_ai.")
    error_reduction_rate = serializers.FloatField(allow_null=True, help_text="(AI errors − final errors) / AI errors.")
    agreement = AgreementSerializer()
    time_to_resolution_s = PercentilesSerializer(
        help_text="Routed cases, received → final decision, nearest-rank percentiles (within 1.1 %)."
    )
    sla_breaches = serializers.IntegerField()
    queue_depth = serializers.IntegerField(help_text="Open non-gold cases now (live).")
    bias_incidents_open = serializers.IntegerField(help_text="Bias incidents not closed (live).")
    system = serializers.CharField(allow_null=True)
    to = serializers.DateTimeField()
    routed = serializers.IntegerField()
    review_rate = serializers.FloatField(allow_null=True)
    overridden = serializers.IntegerField()
    evaluated = serializers.IntegerField(help_text="Closed cases with ground truth and an AI label.")
    sla_breach_rate = serializers.FloatField(allow_null=True, help_text="SLA breaches / routed cases.")
    oldest_waiting_received_at = serializers.DateTimeField(allow_null=True)
    oldest_waiting_age_s = serializers.FloatField(allow_null=True)
    by_kind = KindKpiRowSerializer(many=True, help_text="Generation and action intervention points.")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField()
        return fields


class SeriesDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    cases_total = serializers.IntegerField()
    auto_accepted = serializers.IntegerField()
    routed = serializers.IntegerField()
    reviewed = serializers.IntegerField()
    automation_rate = serializers.FloatField(allow_null=True)
    override_rate = serializers.FloatField(allow_null=True)
    evaluated = serializers.IntegerField()
    accuracy_ai = serializers.FloatField(allow_null=True)
    accuracy_final = serializers.FloatField(allow_null=True)
    time_to_resolution_p50_s = serializers.FloatField(allow_null=True)
    time_to_resolution_p90_s = serializers.FloatField(allow_null=True)
    agreement_percent = serializers.FloatField(allow_null=True)
    agreement_pairs = serializers.IntegerField()
    sla_breaches = serializers.IntegerField()
    queue_depth = serializers.IntegerField(help_text="Routed cases open at the end of the day (reconstructed).")


class SeriesResponseSerializer(serializers.Serializer):
    system = serializers.CharField(allow_null=True)
    days = SeriesDaySerializer(many=True)


class ReviewerRowSerializer(serializers.Serializer):
    reviewer = serializers.CharField()
    decisions = serializers.IntegerField()
    approvals = serializers.IntegerField()
    overrides = serializers.IntegerField()
    escalations = serializers.IntegerField()
    adjudications = serializers.IntegerField()
    override_rate = serializers.FloatField(allow_null=True)
    median_time_s = serializers.FloatField(
        allow_null=True, help_text="Claim → decision, nearest-rank median (within 4.4 %)."
    )
    gold_answered = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True)
    agreement_pairs = serializers.IntegerField()
    agreement = serializers.FloatField(allow_null=True, help_text="Agreement with co-reviewers on the same cases.")
    agreement_kappa = serializers.FloatField(allow_null=True, help_text="Cohen's κ: the reviewer vs co-reviewers.")
    ai_agreement_shown = serializers.FloatField(allow_null=True)
    ai_agreement_hidden = serializers.FloatField(allow_null=True)
    automation_bias_gap = serializers.FloatField(
        allow_null=True, help_text="Agreement with the AI when shown − when hidden (blind review)."
    )


class ReviewersResponseSerializer(serializers.Serializer):
    system = serializers.CharField(allow_null=True)
    reviewers = ReviewerRowSerializer(many=True)
