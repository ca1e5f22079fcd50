"""Input validation and response shapes of the quality API (plain serializers; services do the work)."""

from __future__ import annotations

import math
from typing import Any

from rest_framework import serializers

from hitl_portal.api.dates import MomentField
from quality.selectors import PERIODS

GOLD_FIELDS = frozenset(("system", "intervention_point", "input", "prediction", "gold_label", "external_id", "note"))


class GoldItemCreateSerializer(serializers.Serializer):
    """A gold item: a case with a known answer (``prediction`` may be omitted only at a labeling point).

    ``external_id`` is optional (the master's own id, e.g. to refer to the source
    case; by default an unguessable UUID). The copies served to reviewers always get
    fresh UUIDs of their own.
    """

    system = serializers.SlugField(max_length=80)
    intervention_point = serializers.SlugField(max_length=80)
    input = serializers.DictField()
    prediction = serializers.DictField(required=False, allow_null=True,
                                       help_text="{label, confidence?, model_version?}")
    gold_label = serializers.CharField(max_length=100)
    external_id = serializers.CharField(max_length=255, required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000,
                                 help_text="Why this is the right answer (officers only).")

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        """Validate through the case submission rules (one definition), then the gold label."""
        from reviews.api.serializers.cases import CaseSubmissionValidator

        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        errors: dict[str, Any] = {key: ["Unknown field."] for key in sorted(map(str, data))
                                  if key not in GOLD_FIELDS}
        submission = {key: data[key] for key in ("system", "intervention_point", "input", "prediction")
                      if key in data}
        external_id = data.get("external_id")
        submission["external_id"] = external_id if external_id is not None else "generated"
        validated, field_errors = CaseSubmissionValidator(actor=self.context.get("actor")).validate(submission)
        errors.update(field_errors or {})
        gold_label = data.get("gold_label")
        if gold_label is None:
            errors["gold_label"] = ["This field is required."]
        elif not isinstance(gold_label, str):
            errors["gold_label"] = ["Must be a string."]
        note = data.get("note", "")
        if not isinstance(note, str):
            errors["note"] = ["Must be a string."]
        if errors or validated is None:
            raise serializers.ValidationError(errors)
        return {
            "point": validated["intervention_point"],
            "input": validated["input"],
            "prediction": validated["prediction"],
            "gold_label": gold_label,
            "external_id": external_id,
            "note": note,
        }


class GoldItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    case = serializers.IntegerField()
    system = serializers.CharField()
    intervention_point = serializers.CharField()
    external_id = serializers.CharField()
    input = serializers.DictField()
    prediction = serializers.DictField(allow_null=True)
    gold_label = serializers.CharField()
    routing = serializers.DictField()
    active = serializers.BooleanField()
    # A declared field (DRF pops it off the class), not the stub's Field.source attribute.
    source = serializers.CharField()  # type: ignore[assignment]
    note = serializers.CharField()
    created_at = serializers.DateTimeField()
    served = serializers.IntegerField(allow_null=True)


class GoldImportSerializer(serializers.Serializer):
    """A CSV file as text: header ``system,intervention_point,input,prediction_label,prediction_confidence,
    model_version,gold_label,external_id,note`` (input as JSON; the last five optional)."""

    csv = serializers.CharField(max_length=5_000_000, trim_whitespace=False)


class PeriodQuerySerializer(serializers.Serializer):
    """``from`` (inclusive) and ``to`` (exclusive); defaults: the last ``HITL_QUALITY_PERIOD_DAYS`` days."""

    def get_fields(self) -> dict[str, serializers.Field]:
        # ``from`` is a Python keyword: declared here rather than as a class attribute.
        return {
            "from": MomentField(required=False),
            "to": MomentField(required=False),
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("from") and attrs.get("to") and attrs["from"] >= attrs["to"]:
            raise serializers.ValidationError({"to": ["Must be after from."]})
        return attrs


class AgreementQuerySerializer(PeriodQuerySerializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            **super().get_fields(),
            "system": serializers.SlugField(max_length=80, required=False),
            "intervention_point": serializers.SlugField(max_length=80, required=False),
            "period": serializers.ChoiceField(choices=PERIODS, required=False, default="week"),
        }


class QualityAgreementFiguresSerializer(serializers.Serializer):
    units = serializers.IntegerField()
    ratings = serializers.IntegerField()
    raters = serializers.IntegerField()
    percent = serializers.FloatField(allow_null=True)
    kappa = serializers.FloatField(allow_null=True)
    kappa_band = serializers.CharField()
    fleiss_kappa = serializers.FloatField(allow_null=True)
    fleiss_units = serializers.IntegerField()
    alpha = serializers.FloatField(allow_null=True)
    alpha_band = serializers.CharField()
    cohen_pairs = serializers.ListField(child=serializers.DictField(), required=False)


class QualityAgreementPointSerializer(serializers.Serializer):
    system = serializers.CharField()
    intervention_point = serializers.CharField()
    name = serializers.CharField()
    summary = QualityAgreementFiguresSerializer()
    periods = serializers.ListField(child=serializers.DictField())


class LiveAgreementSerializer(serializers.Serializer):
    period = serializers.CharField()
    overall = QualityAgreementFiguresSerializer()
    points = QualityAgreementPointSerializer(many=True)

    def to_representation(self, instance: Any) -> Any:
        data = super().to_representation(instance)
        data["from"] = serializers.DateTimeField().to_representation(instance["from"])
        data["to"] = serializers.DateTimeField().to_representation(instance["to"])
        return data


class ReviewerQualitySerializer(serializers.Serializer):
    """The contract's ``{gold_accuracy, gold_answered, agreement, status, qualifications}`` and more."""

    username = serializers.CharField()
    gold_accuracy = serializers.FloatField(allow_null=True)
    gold_answered = serializers.IntegerField()
    gold_correct = serializers.IntegerField()
    gold_window = serializers.IntegerField()
    gold_as_of = serializers.CharField(allow_null=True, help_text="Day of the snapshot (the reviewer's own view).")
    agreement = serializers.FloatField(allow_null=True)
    agreement_pairs = serializers.IntegerField()
    status = serializers.CharField(help_text="active or suspended")
    status_reason = serializers.CharField(allow_blank=True)
    qualifications = serializers.ListField(child=serializers.CharField())
    adjudicator = serializers.BooleanField()
    automation_bias = serializers.DictField()
    training = serializers.DictField()


class TrainingRecordCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    kind = serializers.CharField(max_length=40, required=False, default="ai_literacy")
    completed_at = serializers.DateField()
    expires_at = serializers.DateField(required=False, allow_null=True)
    system = serializers.SlugField(max_length=80, required=False, allow_null=True)
    evidence_url = serializers.URLField(required=False, allow_blank=True)


class TrainingRecordSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    kind = serializers.CharField()
    system = serializers.CharField(allow_null=True)
    completed_at = serializers.DateField()
    expires_at = serializers.DateField(allow_null=True)
    evidence_url = serializers.CharField(allow_blank=True)
    valid = serializers.BooleanField()


class CalibrationCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    items = serializers.ListField(child=serializers.IntegerField(min_value=1), max_length=500,
                                  help_text="Gold item ids.")
    reviewers = serializers.ListField(child=serializers.CharField(max_length=150), max_length=100,
                                      help_text="Reviewer usernames.")


class CalibrationListSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    n_items = serializers.IntegerField()
    n_reviewers = serializers.IntegerField()


class CalibrationResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    items = serializers.IntegerField()
    complete = serializers.BooleanField()
    reviewers = serializers.ListField(child=serializers.DictField())
    agreement = QualityAgreementFiguresSerializer()
    most_disagreement = serializers.ListField(child=serializers.DictField())
    per_item = serializers.ListField(child=serializers.DictField())


class ThresholdQuerySerializer(serializers.Serializer):
    target = serializers.FloatField(
        required=False, min_value=0.0, max_value=1.0,
        help_text="Error target of auto-accepted cases (default HITL_THRESHOLD_TARGET_ERROR).",
    )

    def validate_target(self, value: float) -> float:
        if not math.isfinite(value):
            raise serializers.ValidationError("Must be a finite number.")
        return value


class ThresholdApplySerializer(serializers.Serializer):
    threshold = serializers.FloatField(min_value=0.0, max_value=1.0)
    reason = serializers.CharField(max_length=2000)
    confirm = serializers.BooleanField(help_text="Must be true: the officer confirms the change of routing rules.")
    target = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)

    def validate_confirm(self, value: bool) -> bool:
        if value is not True:
            raise serializers.ValidationError("Confirm the change of the routing rules (true).")
        return value


class ThresholdCurveSerializer(serializers.Serializer):
    system = serializers.CharField()
    intervention_point = serializers.CharField()
    ground_truth_cases = serializers.IntegerField()
    min_ground_truth = serializers.IntegerField()
    enough_ground_truth = serializers.BooleanField()
    target_error = serializers.FloatField()
    current_threshold = serializers.FloatField(allow_null=True)
    recommended_threshold = serializers.FloatField(allow_null=True)
    recommended = serializers.DictField(allow_null=True)
    current = serializers.DictField(allow_null=True)
    curve = serializers.ListField(child=serializers.DictField())
