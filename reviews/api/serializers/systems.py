"""Input validation and representation of AI systems and intervention points.

Serializers here validate and render; the views hand validated data to
``reviews.services.systems``. One serializer per resource serves both directions,
so the OpenAPI schema has one component (and one set of enums) per resource.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from reviews.content import FIELD_TYPES, RENDERERS, validate_decision_fields, validate_display
from reviews.models import (
    MIN_RETENTION_DAYS,
    AISystem,
    CaseKind,
    OperatorRole,
    RiskTier,
    SlaBreachAction,
    Stage,
    SystemStatus,
)
from reviews.routing import FIELD_PATH_RE, HIGH_STAKES_OPS, MAX_HIGH_STAKES, condition_errors
from reviews.rules import BIAS_THRESHOLD_KEYS
from reviews.services.systems import ANNEX_III_POINTS

# PostgreSQL ``integer`` columns hold at most this; larger numbers would fail at the database.
MAX_DB_INT = 2_147_483_647
MAX_LABELS = 1000
LABEL_MAX_LENGTH = 100
# A dotted path into a case's input, e.g. ``applicant.income``.


# --- Strict fields -------------------------------------------------------------------
# DRF's stock fields coerce: ``"1"`` becomes 1, ``1`` becomes ``"1"``, ``"yes"`` becomes
# True, and a FloatField lets NaN or an overflowed 1e999 through. A contract that
# promises "wrong types → 400" refuses all of that.


class StrictCharField(serializers.CharField):
    """A string, and only a string."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSlugField(serializers.SlugField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """``true`` or ``false``, nothing that merely looks like one."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictFloatField(serializers.FloatField):
    """A finite JSON number (integers welcome), never a string or a boolean."""

    default_error_messages = {"finite": "Must be a finite number."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if not math.isfinite(data):
            self.fail("finite")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer (``2.0`` is accepted as 2), never a string or a boolean."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not (math.isfinite(data) and data.is_integer()):
            self.fail("invalid")
        return super().to_internal_value(int(data))


class StrictChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


_ENUM_FIELD_CLASSES: dict[str, type[StrictChoiceField]] = {}


def enum_field(component_name: str, choices: list[tuple[str, str]], **kwargs: Any) -> StrictChoiceField:
    """A strict choice field documented as one named enum component in the OpenAPI schema.

    drf-spectacular otherwise names enums after the property, and the API has many
    different ``status`` and ``role`` properties: every collision is a warning and a
    made-up name. A named component is stable, whatever other endpoints add.
    """
    field_class = _ENUM_FIELD_CLASSES.get(component_name)
    if field_class is None:
        schema = {
            "type": "string",
            "enum": [value for value, _ in choices],
            "description": "\n".join(f"* `{value}` - {label}" for value, label in choices),
        }
        # A class per enum (DRF re-instantiates fields from their class when it copies them).
        field_class = extend_schema_field(schema, component_name=component_name)(
            type(f"{component_name}Field", (StrictChoiceField,), {"__module__": __name__})
        )
        _ENUM_FIELD_CLASSES[component_name] = field_class
    return field_class(choices=choices, **kwargs)


def fraction_field(**kwargs: Any) -> StrictFloatField:
    """Rates are fractions in [0, 1] everywhere in the API."""
    return StrictFloatField(min_value=0.0, max_value=1.0, **kwargs)


def string_list_field(*, max_items: int, max_length: int, **kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=StrictCharField(max_length=max_length, trim_whitespace=False),
        max_length=max_items,
        **kwargs,
    )


def unique_non_empty(values: list[str], *, allow_empty: bool) -> list[str]:
    """A list of unique, non-empty strings (order kept)."""
    if not values and not allow_empty:
        raise serializers.ValidationError("Must hold at least one value.")
    if any(not value.strip() for value in values):
        raise serializers.ValidationError("Values must not be empty.")
    duplicates = sorted({value for value in values if values.count(value) > 1})
    if duplicates:
        raise serializers.ValidationError(f"Duplicate values: {', '.join(duplicates)}.")
    return values


class RejectUnknownFieldsMixin:
    """Refuse keys the serializer does not know, naming them (a typo must not pass silently)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            known = {name for name, field in self.fields.items() if not field.read_only}  # type: ignore[attr-defined]
            read_only = {name for name, field in self.fields.items() if field.read_only}  # type: ignore[attr-defined]
            errors: dict[str, list[str]] = {}
            for key in data:
                if key in read_only:
                    errors[str(key)] = ["This field is read-only."]
                elif key not in known:
                    errors[str(key)] = ["Unknown field."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)  # type: ignore[misc]


class SystemReasonSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """Why a system is halted or resumed (kept in the audit trail)."""

    reason = StrictCharField(max_length=2000)


# --- AI systems ----------------------------------------------------------------------


class AISystemSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """An AI system under oversight.

    Written: the registration (``risk_tier`` is the *declared* tier). Read: the
    registration plus ``risk_tier`` as the effective tier (the classified tier wins
    over the declared one), both tiers, the classification and the status.
    """

    id = serializers.IntegerField(read_only=True)
    slug = StrictSlugField(max_length=80)
    name = StrictCharField(max_length=200)
    purpose = StrictCharField(max_length=20000)
    provider = StrictCharField(max_length=200)
    role = enum_field("OperatorRoleEnum", OperatorRole.choices, help_text="Our role under the AI Act.")
    sector = StrictCharField(max_length=100)
    risk_tier = enum_field(
        "RiskTierEnum", RiskTier.choices, required=False, allow_null=True,
        help_text="Written: the declared tier. Read: the effective tier (the classified tier wins).",
    )
    declared_tier = enum_field("RiskTierEnum", RiskTier.choices, read_only=True, allow_null=True)
    classified_tier = enum_field("RiskTierEnum", RiskTier.choices, read_only=True, allow_null=True)
    classification_rationale = serializers.JSONField(read_only=True)
    classified_at = serializers.DateTimeField(read_only=True, allow_null=True)
    annex_iii_area = StrictCharField(
        max_length=4, required=False, allow_null=True, allow_blank=True,
        help_text='Annex III point, e.g. "5b" or "1a"; null when none applies.',
    )
    is_public_body = StrictBooleanField(required=False)
    labels = string_list_field(max_items=MAX_LABELS, max_length=LABEL_MAX_LENGTH,
                               help_text="The label space: unique, non-empty strings.")
    positive_label = StrictCharField(max_length=LABEL_MAX_LENGTH, required=False, allow_null=True, allow_blank=True)
    non_match_label = StrictCharField(
        max_length=LABEL_MAX_LENGTH, required=False, allow_null=True, allow_blank=True,
        help_text="Annex III 1(a): the label that means no identification; every other result is verified by two "
                  "people whatever its confidence (Art. 14(5)). Empty: every result is.",
    )
    protected_attributes = string_list_field(max_items=100, max_length=100, required=False)
    required_trainings = string_list_field(
        max_items=20, max_length=40, required=False,
        help_text="Training kinds a reviewer must hold, valid, to claim this system's cases (default: ai_literacy, "
                  "Art. 4); a reviewer without them gets 403 training_required.",
    )
    retention_days = StrictIntegerField(min_value=MIN_RETENTION_DAYS, max_value=MAX_DB_INT, required=False)
    bias_thresholds = serializers.DictField(
        child=StrictFloatField(allow_null=True), required=False,
        help_text="Per-system bias audit thresholds; unknown keys are refused. Keys: "
        + "; ".join(f"{key}: {meaning}" for key, meaning in BIAS_THRESHOLD_KEYS.items())
        + '. Example: {"disparate_impact_min": 0.8, "min_group_size": 20}.',
    )
    kpi_targets = serializers.DictField(
        child=StrictFloatField(allow_null=True), required=False,
        help_text="Per-system KPI targets, e.g. {\"agreement_percent\": 0.85}.",
    )
    share_cases_between_integrations = StrictBooleanField(
        required=False,
        help_text="false (default): each integration reads and reports outcomes only for the cases it submitted. "
        "true: every integration linked to the system reads all of its cases. Changes are audited.",
    )
    status = enum_field("SystemStatusEnum", SystemStatus.choices, read_only=True)
    status_reason = serializers.CharField(read_only=True)
    status_changed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    reason = StrictCharField(max_length=2000, required=False, write_only=True,
                             help_text="Why the registration changed (audit trail).")

    def validate_kind(self, value: str) -> str:
        if self.instance is not None and value != self.instance.kind:
            raise serializers.ValidationError("The kind of an intervention point cannot change.")
        return value

    def validate_slug(self, value: str) -> str:
        if self.instance is not None and value != self.instance.slug:
            raise serializers.ValidationError("The slug identifies the system to integrations and cannot change.")
        return value

    def validate_annex_iii_area(self, value: str | None) -> str:
        value = (value or "").strip().lower()
        if value and value not in ANNEX_III_POINTS:
            raise serializers.ValidationError(
                'Must be an Annex III point such as "1a" or "5b" (areas 1-8; area 2 has no letter).'
            )
        return value

    def validate_labels(self, value: list[str]) -> list[str]:
        return unique_non_empty(value, allow_empty=False)

    def validate_protected_attributes(self, value: list[str]) -> list[str]:
        return unique_non_empty(value, allow_empty=True)

    def validate_required_trainings(self, value: list[str]) -> list[str]:
        return unique_non_empty(value, allow_empty=True)

    def validate_positive_label(self, value: str | None) -> str:
        return value or ""

    def validate_non_match_label(self, value: str | None) -> str:
        return value or ""

    def validate_bias_thresholds(self, value: dict[str, float | None]) -> dict[str, float | None]:
        return _small_mapping(value)

    def validate_kpi_targets(self, value: dict[str, float | None]) -> dict[str, float | None]:
        return _small_mapping(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        labels = attrs.get("labels", self.instance.labels if self.instance is not None else [])
        positive = attrs.get("positive_label", self.instance.positive_label if self.instance is not None else "")
        if positive and positive not in labels:
            raise serializers.ValidationError({"positive_label": ["Must be one of the labels."]})
        return attrs

    def service_fields(self) -> dict[str, Any]:
        """Validated data as model fields: the request's ``risk_tier`` is the declared tier."""
        data = dict(self.validated_data)
        data.pop("reason", None)
        if self.instance is not None:
            data.pop("slug", None)  # validated unchanged above
            data.pop("kind", None)
        if "risk_tier" in data:
            data["declared_tier"] = data.pop("risk_tier") or ""
        return data

    def to_representation(self, instance: AISystem) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["risk_tier"] = instance.risk_tier or None
        for name in ("declared_tier", "classified_tier", "annex_iii_area", "positive_label", "non_match_label"):
            data[name] = getattr(instance, name) or None
        return data


def _small_mapping(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > 50:
        raise serializers.ValidationError("At most 50 entries.")
    if any(not key.strip() or len(key) > 100 for key in value):
        raise serializers.ValidationError("Keys must be non-empty names of at most 100 characters.")
    return value


# --- Intervention points ------------------------------------------------------------------


class HighStakesConditionSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """One high-stakes condition on a case's input, e.g. ``amount gt 10000``."""

    field = StrictCharField(max_length=200, help_text='A dotted path into the case input, e.g. "applicant.income".')
    op = enum_field("HighStakesOpEnum", [(op, op) for op in HIGH_STAKES_OPS])
    value = serializers.JSONField(
        allow_null=True,
        help_text="A number for gt/gte/lt/lte; a non-empty list for in; a string, number, boolean or null for eq/ne."
    )

    def validate_field(self, value: str) -> str:
        if not FIELD_PATH_RE.match(value):
            raise serializers.ValidationError(
                'Must be a dotted path of letters, digits, "_" or "-", e.g. "applicant.income".'
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The one rule (reviews.routing), also applied by the services and the admin.
        errors = condition_errors(attrs)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def _content(validate: Any, name: str, value: Any) -> list[dict[str, Any]]:
    """Run a ``reviews.content`` validator, turning its error into this field's DRF error."""
    try:
        return validate(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.message_dict.get(name) or exc.messages) from exc


class InterventionPointSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """Where humans step in for one system, with the routing rules that send cases to them.

    Any change of a rule bumps ``version``; each case records the version that routed it.
    """

    id = serializers.IntegerField(read_only=True)
    system = serializers.CharField(source="system.slug", read_only=True, help_text="The system's slug.")
    slug = StrictSlugField(max_length=80)
    name = StrictCharField(max_length=200)
    stage = enum_field("StageEnum", Stage.choices)
    confidence_below = fraction_field(
        required=False, allow_null=True, help_text="Route when the AI confidence is below this."
    )
    always_review_labels = string_list_field(max_items=MAX_LABELS, max_length=LABEL_MAX_LENGTH, required=False)
    high_stakes = serializers.ListField(
        child=HighStakesConditionSerializer(), max_length=MAX_HIGH_STAKES, required=False
    )
    random_sample_rate = fraction_field(required=False, default=0.0)
    reviewers_required = StrictIntegerField(min_value=1, max_value=10, required=False,
                                            help_text="Independent reviewers per case (2 = four eyes).")
    sla_seconds = StrictIntegerField(min_value=1, max_value=MAX_DB_INT, required=False, allow_null=True)
    on_sla_breach = enum_field("SlaBreachActionEnum", SlaBreachAction.choices, required=False,
                               help_text="Default escalate; fail_closed (deny) at action points.")
    blind_review_rate = fraction_field(required=False, default=0.0)
    gold_rate = fraction_field(required=False, default=0.0)
    guidelines = StrictCharField(max_length=20000, required=False, allow_blank=True, trim_whitespace=False)
    display = serializers.JSONField(
        required=False,
        help_text="Display configuration: [{field, renderer, label?, highlights?}] maps dotted input paths to the "
        "workbench's renderers (" + ", ".join(RENDERERS) + "); highlights (text only) is the path of a list of "
        "{start, end, label?} character offsets. Empty: the generic view of the whole input.",
    )
    decision_fields = serializers.JSONField(
        required=False,
        help_text="Extra decision fields (custom review form): [{name, label, type: "
        + "|".join(FIELD_TYPES) + ", required?, choices? (choice types), min?/max? (number), "
        "max_length? (text), help?}]. Reviewers answer them in the decision's form_values.",
    )
    kind = enum_field("PointKindEnum", CaseKind.choices, required=False,
                      help_text="classification (default), generation or action; fixed at creation.")
    tool_rules = serializers.JSONField(
        required=False, help_text='Action points: {"always": [tools or "*"], "never": [tools]}.'
    )
    text_rules = serializers.JSONField(
        required=False, help_text='Generation points: {"max_length": int, "regex": str, "keywords": [str]}.'
    )
    tool_schemas = serializers.JSONField(
        required=False, help_text="Action points: {tool: JSON Schema}; modified arguments must satisfy it."
    )
    version = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    reason = StrictCharField(max_length=2000, required=False, write_only=True,
                             help_text="Why the rules changed (audit trail).")

    def validate_kind(self, value: str) -> str:
        if self.instance is not None and value != self.instance.kind:
            raise serializers.ValidationError("The kind of an intervention point cannot change.")
        return value

    def validate_slug(self, value: str) -> str:
        if self.instance is not None and value != self.instance.slug:
            raise serializers.ValidationError("The slug identifies the intervention point and cannot change.")
        return value

    def validate_always_review_labels(self, value: list[str]) -> list[str]:
        return unique_non_empty(value, allow_empty=True)

    def validate_display(self, value: Any) -> list[dict[str, Any]]:
        return _content(validate_display, "display", value)

    def validate_decision_fields(self, value: Any) -> list[dict[str, Any]]:
        return _content(validate_decision_fields, "decision_fields", value)

    def validate_high_stakes(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Stored exactly as {field, op, value}: the router reads these keys.
        return [{"field": item["field"], "op": item["op"], "value": item["value"]} for item in value]

    def service_fields(self) -> dict[str, Any]:
        data = dict(self.validated_data)
        data.pop("reason", None)
        if self.instance is not None:
            data.pop("slug", None)  # validated unchanged above
            data.pop("kind", None)
        return data


class InterventionPointPublicSerializer(serializers.Serializer):
    """What an integration sees of an intervention point: where to send cases, never how they are routed.

    Thresholds, high-stakes conditions and rates stay with the overseers: an
    overseen system that could read them could steer its outputs around oversight.
    """

    slug = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    stage = enum_field("StageEnum", Stage.choices, read_only=True)
    # Present once points have a ``kind`` (classification / generation / action); a
    # read-only, not-required field whose attribute is missing is left out of the body.
    kind = serializers.CharField(read_only=True, required=False)


class InterventionPointPublicSchema(OpenApiSerializerExtension):
    """Documents the public shape as closed (no other properties).

    The points endpoints answer ``oneOf`` the full and the public shape; a full
    point must not also match the public one, or no answer would be "one of".
    """

    target_class = "reviews.api.serializers.systems.InterventionPointPublicSerializer"

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        # Read-only fields count as always present; ``kind`` only is where points have one.
        schema["required"] = [name for name in schema.get("required", []) if name != "kind"]
        return schema


class SaltRotationSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """Why the sampling salt is rotated (audit trail); the salt itself is never returned."""

    reason = StrictCharField(max_length=2000)


class SaltRotationResultSerializer(serializers.Serializer):
    slug = serializers.CharField(read_only=True)
    salt_rotated_at = serializers.DateTimeField(read_only=True)
