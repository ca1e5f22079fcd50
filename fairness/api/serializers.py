"""Input validation of the bias-audit endpoints, and the documented response shapes."""

from __future__ import annotations

from rest_framework import serializers

from fairness.models import AuditStatus
from hitl_portal.api.dates import MOMENT_HELP, MomentField
from reviews.models import AISystem


class BiasAuditRequestSerializer(serializers.Serializer):
    """``{system, attribute, from?, to?}``: the period ``[from, to)`` defaults to the 30 days before now."""

    def get_fields(self) -> dict[str, serializers.Field]:
        # "from" is a Python keyword: declared here rather than as a class attribute.
        return {
            "system": serializers.CharField(max_length=80, help_text="The AI system's slug."),
            "attribute": serializers.CharField(
                max_length=100, help_text="One of the system's protected_attributes (a key of the cases' subject)."
            ),
            "from": MomentField(required=False, help_text=f"Start of the period (inclusive): {MOMENT_HELP}."),
            "to": MomentField(required=False, help_text=f"End of the period (exclusive; default now): {MOMENT_HELP}."),
        }

    def validate_system(self, value: str) -> AISystem:
        system = AISystem.objects.filter(slug=value).first()
        if system is None:
            raise serializers.ValidationError(f"Unknown system: {value!r}.")
        return system


class BiasAuditListQuerySerializer(serializers.Serializer):
    system = serializers.CharField(required=False, allow_blank=True, max_length=80)


# --- Response shapes (documentation only) -----------------------------------------------------------


class ProgressSerializer(serializers.Serializer):
    chunks_done = serializers.IntegerField()
    chunks_total = serializers.IntegerField(help_text="0 until the audit is planned.")
    fraction = serializers.FloatField()


class GroupSerializer(serializers.Serializer):
    value = serializers.CharField(allow_null=True, help_text="The attribute's value (null: cases without it).")
    n = serializers.IntegerField(help_text="Cases of the group in the period (gold items excluded).")
    selection_rate_ai = serializers.FloatField(allow_null=True, help_text="Share of AI labels that are positive.")
    selection_rate_final = serializers.FloatField(allow_null=True, help_text="Share of final labels that are positive.")
    tpr = serializers.FloatField(allow_null=True, help_text="AI true positive rate (null without positives).")
    fpr = serializers.FloatField(allow_null=True, help_text="AI false positive rate (null without negatives).")
    tpr_ai = serializers.FloatField(allow_null=True)
    fpr_ai = serializers.FloatField(allow_null=True)
    tpr_final = serializers.FloatField(allow_null=True, help_text="True positive rate of the final labels.")
    fpr_final = serializers.FloatField(allow_null=True, help_text="False positive rate of the final labels.")
    override_rate = serializers.FloatField(allow_null=True, help_text="Reviewed cases whose final label ≠ AI label.")
    reviewed = serializers.IntegerField(help_text="Reviewed cases with an AI label (the override rate's base).")
    ground_truth = serializers.IntegerField(help_text="Cases with a reported true label.")
    insufficient_n = serializers.BooleanField(help_text="Smaller than the minimum group size: not in the metrics.")
    included = serializers.BooleanField(help_text="Compared in the metrics.")
    excluded_reason = serializers.ChoiceField(choices=["insufficient_n", "missing_attribute"], allow_null=True)


class MetricBlockSerializer(serializers.Serializer):
    disparate_impact_ratio = serializers.FloatField(allow_null=True, help_text="min / max selection rate.")
    demographic_parity_difference = serializers.FloatField(allow_null=True, help_text="max − min selection rate.")
    equalized_odds_difference = serializers.FloatField(allow_null=True, help_text="max(TPR spread, FPR spread).")
    tpr_difference = serializers.FloatField(allow_null=True)
    fpr_difference = serializers.FloatField(allow_null=True)
    selection_rate_min = serializers.FloatField(allow_null=True)
    selection_rate_max = serializers.FloatField(allow_null=True)
    min_group = serializers.CharField(allow_null=True)
    max_group = serializers.CharField(allow_null=True)
    groups_compared = serializers.IntegerField()
    four_fifths_rule = serializers.ChoiceField(choices=["pass", "fail"], allow_null=True,
                                               help_text="Disparate impact ratio ≥ 0.8 (29 CFR 1607.4(D)).")


class MetricsSerializer(serializers.Serializer):
    ai = MetricBlockSerializer(allow_null=True, help_text="On the AI's labels (null until done).")
    final = MetricBlockSerializer(allow_null=True, help_text="On the final, human-validated labels.")


class BreachSerializer(serializers.Serializer):
    labels = serializers.ChoiceField(choices=["ai", "final"])
    metric = serializers.CharField()
    value = serializers.FloatField()
    threshold = serializers.FloatField()
    direction = serializers.ChoiceField(choices=["below", "above"])


class BiasAuditSerializer(serializers.Serializer):
    """An audit; every rate and difference is a fraction, null where undefined."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "id": serializers.IntegerField(),
            "system": serializers.CharField(),
            "attribute": serializers.CharField(),
            "from": serializers.DateTimeField(),
            "to": serializers.DateTimeField(),
            "status": serializers.ChoiceField(choices=AuditStatus.choices),
            "progress": ProgressSerializer(),
            "requested_by": serializers.CharField(allow_null=True),
            "requested_at": serializers.DateTimeField(),
            "started_at": serializers.DateTimeField(allow_null=True),
            "finished_at": serializers.DateTimeField(allow_null=True),
            "positive_label": serializers.CharField(),
            "thresholds": serializers.DictField(child=serializers.FloatField()),
            "min_group_size": serializers.IntegerField(),
            "cases": serializers.IntegerField(allow_null=True),
            "groups": GroupSerializer(many=True),
            "metrics": MetricsSerializer(),
            "breaches": BreachSerializer(many=True),
            "flagged": serializers.BooleanField(),
            "incident": serializers.IntegerField(allow_null=True, help_text="The bias incident filed on a breach."),
            "error": serializers.CharField(allow_null=True),
        }


class BiasAuditAcceptedSerializer(BiasAuditSerializer):
    """202: the audit as requested (``{id, status, ...}``); the work runs on Celery."""
