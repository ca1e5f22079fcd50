"""Case submissions (the ingest hot path), batch results and the case representation.

Validation of a submission is hand-written (``CaseSubmissionValidator``): DRF's
field machinery costs several times more per case, and a batch validates a
thousand of them. The serializer classes below declare the same shapes for the
OpenAPI schema; ``CaseSubmissionSerializer`` validates through the validator, so
there is one set of rules. Errors name the field (``{"confidence": ["must be
between 0 and 1"]}``, the contract's own example: the prediction's fields are
named without a prefix).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from hitl_portal.actors import Actor
from reviews.content import validate_explanation
from reviews.models import (
    AISystem,
    CaseKind,
    CaseStatus,
    InterventionPoint,
    RejectionCategory,
    Resolution,
    Stage,
)
from reviews.selectors.cases import ingest_targets
from reviews.services.kinds import validate_payload
from reviews.services.webhook_guard import callback_url_problem

SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]{1,80}$")
EXTERNAL_ID_MAX = 255
LABEL_MAX = 100
MODEL_VERSION_MAX = 100
CALLBACK_URL_MAX = 2000
SUBJECT_MAX_KEYS = 100
SUBJECT_KEY_MAX = 100
SUBJECT_VALUE_MAX = 1000
# Deeper input is refused rather than risking recursion limits further down
# (hashing, the database's JSON functions).
INPUT_MAX_DEPTH = 64
BATCH_MAX = 1000

SUBMISSION_FIELDS = frozenset(
    ("system", "intervention_point", "external_id", "input", "prediction", "subject", "callback_url",
     "generation", "action", "expires_at")
)
PREDICTION_FIELDS = frozenset(("label", "confidence", "model_version", "explanation"))
REQUIRED = "This field is required."

_url_validator = URLValidator(schemes=["http", "https"])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_problem(value: Any, *, max_depth: int = INPUT_MAX_DEPTH) -> str | None:
    """Why a JSON value cannot be stored as is (non-finite number, too deep), without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            if depth > max_depth:
                return f"nested deeper than {max_depth} levels"
            stack.extend((item, depth + 1) for item in current.values())
        elif isinstance(current, list):
            if depth > max_depth:
                return f"nested deeper than {max_depth} levels"
            stack.extend((item, depth + 1) for item in current)
        elif isinstance(current, float) and not math.isfinite(current):
            return "numbers must be finite"
    return None


class CaseSubmissionValidator:
    """Validates case submissions of one request; looks up each (system, point) once.

    ``prime(raw_items)`` fetches every intervention point a batch names in one
    query; ``validate(raw)`` then returns ``(data, None)`` or ``(None, errors)``.
    """

    def __init__(self, *, actor: Actor) -> None:
        self.actor = actor
        self._points: dict[tuple[str, str], InterventionPoint | None] = {}
        self._labels: dict[int, frozenset[str]] = {}
        self._known_systems: dict[str, bool] = {}

    # --- look-ups ---------------------------------------------------------------------

    def prime(self, raw_items: list[Any]) -> None:
        pairs = set()
        for raw in raw_items:
            if isinstance(raw, dict):
                system, point = raw.get("system"), raw.get("intervention_point")
                if isinstance(system, str) and isinstance(point, str) and SLUG_RE.match(system) and SLUG_RE.match(
                    point
                ):
                    pairs.add((system, point))
        pairs -= set(self._points)
        if not pairs:
            return
        found = ingest_targets(actor=self.actor, pairs=pairs)
        for pair in pairs:
            self._points[pair] = found.get(pair)

    def _point(self, system: str, point: str) -> InterventionPoint | None:
        if (system, point) not in self._points:
            self.prime([{"system": system, "intervention_point": point}])
        return self._points[(system, point)]

    def _system_exists(self, slug: str) -> bool:
        if slug not in self._known_systems:
            self._known_systems[slug] = AISystem.objects.filter(slug=slug).exists()
        return self._known_systems[slug]

    def _labels_of(self, system: AISystem) -> frozenset[str]:
        labels = self._labels.get(system.pk)
        if labels is None:
            labels = frozenset(label for label in system.labels if isinstance(label, str))
            self._labels[system.pk] = labels
        return labels

    # --- validation -------------------------------------------------------------------

    def validate(self, raw: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if not isinstance(raw, dict):
            return None, {"non_field_errors": ["A case must be a JSON object."]}
        errors: dict[str, Any] = {}
        unknown = sorted(str(key) for key in raw if key not in SUBMISSION_FIELDS)
        for key in unknown[:20]:
            errors[key] = ["Unknown field."]

        point = self._validate_target(raw, errors)

        external_id = raw.get("external_id")
        if external_id is None:
            errors["external_id"] = [REQUIRED]
        elif not isinstance(external_id, str):
            errors["external_id"] = ["Must be a string."]
        elif not external_id.strip():
            errors["external_id"] = ["Must not be empty."]
        elif len(external_id) > EXTERNAL_ID_MAX:
            errors["external_id"] = [f"At most {EXTERNAL_ID_MAX} characters."]

        kind = point.kind if point is not None else CaseKind.CLASSIFICATION
        payload = None
        expires_at = None
        if kind != CaseKind.CLASSIFICATION:
            payload = validate_payload(kind, raw, errors)
            expires_at = self._validate_expires_at(raw.get("expires_at"), errors)
        else:
            for name in ("generation", "action", "expires_at"):
                if name in raw and point is not None:
                    errors[name] = ["Only generation and action intervention points take this field."]

        case_input = raw.get("input")
        if "input" not in raw and kind != CaseKind.CLASSIFICATION:
            # The tool call or text is what is reviewed; input is optional context.
            case_input = {}
        elif "input" not in raw:
            errors["input"] = [REQUIRED]
        elif not isinstance(case_input, dict):
            errors["input"] = ["Must be a JSON object."]
        else:
            problem = json_problem(case_input)
            if problem:
                errors["input"] = [f"Invalid: {problem}."]

        if kind != CaseKind.CLASSIFICATION:
            prediction = self._validate_kind_prediction(raw.get("prediction"), errors)
        else:
            prediction = self._validate_prediction(raw, point, errors)
        subject = self._validate_subject(raw.get("subject"), errors)

        callback_url = raw.get("callback_url")
        if callback_url is None or callback_url == "":
            callback_url = ""
        elif not isinstance(callback_url, str):
            errors["callback_url"] = ["Must be a string."]
        elif len(callback_url) > CALLBACK_URL_MAX:
            errors["callback_url"] = [f"At most {CALLBACK_URL_MAX} characters."]
        else:
            try:
                _url_validator(callback_url)
            except DjangoValidationError:
                errors["callback_url"] = ["Must be an http(s) URL."]
            else:
                # SSRF: what can be refused without DNS is refused now; the rest at send time.
                problem = callback_url_problem(callback_url)
                if problem:
                    errors["callback_url"] = [problem]

        if errors:
            return None, errors
        return {
            "intervention_point": point,
            "external_id": external_id,
            "input": case_input,
            "prediction": prediction,
            "subject": subject,
            "callback_url": callback_url,
            "payload": payload,
            "expires_at": expires_at,
        }, None

    def _validate_expires_at(self, value: Any, errors: dict[str, Any]) -> dt.datetime | None:
        if value is None:
            return None
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None or timezone.is_naive(parsed):
            errors["expires_at"] = ["Must be an ISO 8601 date-time with a time zone."]
            return None
        if parsed <= timezone.now():
            errors["expires_at"] = ["Must be in the future."]
            return None
        return parsed

    def _validate_kind_prediction(self, prediction: Any, errors: dict[str, Any]) -> dict[str, Any] | None:
        """A generation or action case may send the model's confidence and version, never a label."""
        if prediction is None:
            return None
        if not isinstance(prediction, dict):
            errors["prediction"] = ["Must be a JSON object with confidence and model_version."]
            return None
        unknown = sorted(str(key) for key in prediction if key not in ("confidence", "model_version"))
        if unknown:
            errors["prediction"] = [f"Unknown field(s) for this kind of case: {', '.join(unknown[:20])}."]
            return None
        confidence = prediction.get("confidence")
        if confidence is not None and (not _is_number(confidence) or not 0 <= confidence <= 1):
            errors["confidence"] = ["must be between 0 and 1"]
        model_version = prediction.get("model_version") or ""
        if not isinstance(model_version, str) or len(model_version) > MODEL_VERSION_MAX:
            errors["model_version"] = [f"Must be a string of at most {MODEL_VERSION_MAX} characters."]
        return {"label": None, "confidence": None if confidence is None else float(confidence),
                "model_version": model_version}

    def _validate_target(self, raw: dict[str, Any], errors: dict[str, Any]) -> InterventionPoint | None:
        system, point_slug = raw.get("system"), raw.get("intervention_point")
        system_slug: str | None = None  # set once the system's slug is well formed
        if system is None:
            errors["system"] = [REQUIRED]
        elif not isinstance(system, str):
            errors["system"] = ["Must be a string (the system's slug)."]
        elif not SLUG_RE.match(system):
            errors["system"] = ["Unknown system."]
        else:
            system_slug = system
        if point_slug is None:
            errors["intervention_point"] = [REQUIRED]
            return None
        if not isinstance(point_slug, str):
            errors["intervention_point"] = ["Must be a string (the intervention point's slug)."]
            return None
        if system_slug is None:
            return None
        point = self._point(system_slug, point_slug) if SLUG_RE.match(point_slug) else None
        if point is None:
            if self._system_exists(system_slug):
                errors["intervention_point"] = [f"Unknown intervention point of system {system_slug}."]
            else:
                errors["system"] = ["Unknown system."]
        return point

    def _validate_prediction(
        self, raw: dict[str, Any], point: InterventionPoint | None, errors: dict[str, Any]
    ) -> dict[str, Any] | None:
        prediction = raw.get("prediction")
        if prediction is None:
            if point is not None and point.stage != Stage.LABELING:
                errors["prediction"] = [
                    "Required at this intervention point (only a labeling point accepts cases without one)."
                ]
            return None
        if not isinstance(prediction, dict):
            errors["prediction"] = ["Must be a JSON object with label, confidence and model_version."]
            return None
        unknown = sorted(str(key) for key in prediction if key not in PREDICTION_FIELDS)
        if unknown:
            errors["prediction"] = [f"Unknown field(s): {', '.join(unknown[:20])}."]
        label = prediction.get("label")
        if label is None:
            errors["label"] = [REQUIRED]
        elif not isinstance(label, str):
            errors["label"] = ["Must be a string."]
        elif point is not None and label not in self._labels_of(point.system):
            known = sorted(self._labels_of(point.system))
            shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
            errors["label"] = [f"Not one of the system's labels ({shown})."]
        elif len(label) > LABEL_MAX:
            errors["label"] = [f"At most {LABEL_MAX} characters."]
        confidence = prediction.get("confidence")
        if confidence is not None:
            if not _is_number(confidence) or not math.isfinite(confidence):
                errors["confidence"] = ["Must be a number."]
            elif not 0 <= confidence <= 1:
                errors["confidence"] = ["must be between 0 and 1"]
            else:
                confidence = float(confidence)
        model_version = prediction.get("model_version")
        if model_version is None:
            model_version = ""
        elif not isinstance(model_version, str):
            errors["model_version"] = ["Must be a string."]
        elif len(model_version) > MODEL_VERSION_MAX:
            errors["model_version"] = [f"At most {MODEL_VERSION_MAX} characters."]
        explanation, problem = validate_explanation(prediction.get("explanation"))
        if problem:
            errors["explanation"] = [problem]
        return {"label": label, "confidence": confidence, "model_version": model_version,
                "explanation": explanation}

    def _validate_subject(self, subject: Any, errors: dict[str, Any]) -> dict[str, Any]:
        if subject is None:
            return {}
        if not isinstance(subject, dict):
            errors["subject"] = ["Must be a JSON object of attributes."]
            return {}
        if len(subject) > SUBJECT_MAX_KEYS:
            errors["subject"] = [f"At most {SUBJECT_MAX_KEYS} attributes."]
            return {}
        for key, value in subject.items():
            if not key or len(key) > SUBJECT_KEY_MAX:
                errors["subject"] = [f"Attribute names must have 1 to {SUBJECT_KEY_MAX} characters."]
                break
            if value is None or isinstance(value, bool):
                continue
            if isinstance(value, str):
                if len(value) > SUBJECT_VALUE_MAX:
                    errors["subject"] = [f"{key}: at most {SUBJECT_VALUE_MAX} characters."]
                    break
            elif not _is_number(value) or not math.isfinite(value):
                errors["subject"] = [f"{key}: must be a string, number, boolean or null."]
                break
        return subject


def validate_batch_envelope(data: Any) -> list[Any]:
    """The batch body's ``cases`` list (1..1000 items), or a 400 naming ``cases``."""
    if not isinstance(data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object with a cases list."]})
    unknown = sorted(str(key) for key in data if key != "cases")
    if unknown:
        raise serializers.ValidationError({key: ["Unknown field."] for key in unknown[:20]})
    cases = data.get("cases")
    if cases is None:
        raise serializers.ValidationError({"cases": [REQUIRED]})
    if not isinstance(cases, list):
        raise serializers.ValidationError({"cases": ["Must be a list of cases."]})
    if not cases:
        raise serializers.ValidationError({"cases": ["Must hold at least one case."]})
    if len(cases) > BATCH_MAX:
        raise serializers.ValidationError({"cases": [f"At most {BATCH_MAX} cases per batch."]})
    return cases


# --- Schema shapes (and the single-case serializer the view validates with) ---------------


class AttributionSerializer(serializers.Serializer):
    feature = serializers.CharField(max_length=200)
    value = serializers.JSONField(required=False, allow_null=True, help_text="The feature's value (a scalar).")
    weight = serializers.FloatField(help_text="Signed contribution to the predicted label.")


class ExplanationSerializer(serializers.Serializer):
    """As stored and returned. Submitted also as a plain list of attributions and/or reason codes."""

    reason_codes = serializers.ListField(child=serializers.CharField(max_length=200), max_length=50)
    # many=True builds a ListSerializer, which takes max_length; the stubs check Serializer's own arguments.
    attributions = AttributionSerializer(many=True, max_length=100)  # type: ignore[call-arg]


class CasePredictionSerializer(serializers.Serializer):
    # The API field is named "label"; the stubs know only Field.label (the display label).
    label = serializers.CharField(  # type: ignore[assignment]
        max_length=LABEL_MAX, help_text="One of the system's labels."
    )
    confidence = serializers.FloatField(min_value=0.0, max_value=1.0, required=False, allow_null=True)
    model_version = serializers.CharField(max_length=MODEL_VERSION_MAX, required=False, allow_blank=True,
                                          allow_null=True)
    explanation = ExplanationSerializer(
        required=False, allow_null=True,
        help_text="The model's explanation for reviewers (Art. 14(4)(c)): reason codes and/or feature "
        "attributions [{feature, value?, weight}]. Submitted as that object or as a list mixing attribution "
        "objects and reason-code strings. Hidden from reviewers of a blind case; never copied into audit events.",
    )


class ConversationMessageSerializer(serializers.Serializer):
    role = serializers.CharField(help_text='"user", "assistant", "tool", "system"...')
    content = serializers.CharField(allow_blank=True)


class SourceSerializer(serializers.Serializer):
    title = serializers.CharField(required=False)
    url = serializers.URLField(required=False)
    content = serializers.CharField(required=False, allow_blank=True)


class GenerationSerializer(serializers.Serializer):
    """A generated text under review (``kind: generation`` points)."""

    text = serializers.CharField(allow_blank=True, help_text="The AI-generated text.")
    prompt = serializers.CharField(required=False, allow_blank=True)
    conversation = ConversationMessageSerializer(many=True, required=False)
    sources = SourceSerializer(many=True, required=False, help_text="Retrieved sources the text draws on.")


class ActionSerializer(serializers.Serializer):
    """An agent's proposed tool call (``kind: action`` points)."""

    tool = serializers.CharField(max_length=200)
    arguments = serializers.DictField(help_text="The tool call's arguments (a JSON object).")
    agent = serializers.CharField(max_length=200, help_text="Which agent proposes the call.")
    conversation = ConversationMessageSerializer(many=True, required=False)
    rationale = serializers.CharField(required=False, allow_blank=True, help_text="The agent's stated reason.")


class FinalOutputSerializer(serializers.Serializer):
    """What oversight let through (generation and action cases; null until decided).

    Generation: ``text`` (null when rejected), ``edited``, ``rejected``, ``diff``
    (unified diff), ``edit_distance`` (edits), ``reason`` and ``category``
    (rejections). Action: ``approved``, ``arguments`` (as approved, null when
    denied), ``modified``, ``diff`` (``[{path, op, before?, after?}]``), ``reason``.
    """

    text = serializers.CharField(required=False, allow_null=True)
    edited = serializers.BooleanField(required=False)
    rejected = serializers.BooleanField(required=False)
    edit_distance = serializers.FloatField(required=False)
    category = serializers.ChoiceField(choices=RejectionCategory.choices, required=False, allow_null=True)
    approved = serializers.BooleanField(required=False)
    arguments = serializers.DictField(required=False, allow_null=True)
    modified = serializers.BooleanField(required=False)
    diff = serializers.JSONField(required=False)
    reason = serializers.CharField(required=False, allow_blank=True)


class CaseSubmissionSerializer(serializers.Serializer):
    """One AI output submitted for oversight.

    ``prediction`` may be omitted only at a ``labeling`` intervention point (the
    case is then always routed and answered with a label). ``subject`` holds the
    data subject's attributes for fairness audits (scalars only).
    """

    system = serializers.SlugField(max_length=80, help_text="The AI system's slug.")
    intervention_point = serializers.SlugField(max_length=80, help_text="The intervention point's slug.")
    external_id = serializers.CharField(max_length=EXTERNAL_ID_MAX, help_text="Unique per system.")
    input = serializers.DictField(help_text="The input the AI system decided on (a JSON object).")
    prediction = CasePredictionSerializer(required=False, allow_null=True)
    subject = serializers.DictField(required=False, allow_null=True,
                                    help_text="Attributes of the data subject (scalars), for fairness audits.")
    callback_url = serializers.URLField(
        max_length=CALLBACK_URL_MAX, required=False, allow_blank=True, allow_null=True,
        help_text="Where the decision is POSTed (signed, Standard Webhooks). Public addresses only, unless "
        "the operator allow-listed the receiver (HITL_WEBHOOK_ALLOW); no credentials in the URL.",
    )
    generation = GenerationSerializer(required=False, help_text="Required at a generation point (else refused).")
    action = ActionSerializer(required=False, help_text="Required at an action point (else refused).")
    expires_at = serializers.DateTimeField(
        required=False, help_text="Generation/action: decide by then, else the point's breach rule applies "
        "(an action point denies by default). Never later than the point's SLA."
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        validator = self.context.get("validator") or CaseSubmissionValidator(actor=self.context.get("actor"))
        validated, errors = validator.validate(data)
        if errors or validated is None:
            raise serializers.ValidationError(errors or {"non_field_errors": ["Invalid case."]})
        return validated


class CaseRoutingSerializer(serializers.Serializer):
    routed = serializers.BooleanField()
    reasons = serializers.ListField(
        child=serializers.ChoiceField(choices=[
            "system_halted", "labeling", "confidence_below", "always_review_label", "high_stakes",
            "high_stakes_field_missing", "random_sample", "tool_always_review", "text_length",
            "text_pattern", "text_keyword",
        ])
    )
    rules_version = serializers.IntegerField()


class CaseIngestResponseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    status = serializers.ChoiceField(choices=CaseStatus.choices)
    routing = CaseRoutingSerializer()
    final_label = serializers.CharField(allow_null=True)


class CaseBatchRequestSerializer(serializers.Serializer):
    cases = CaseSubmissionSerializer(many=True, help_text=f"1 to {BATCH_MAX} cases.")


class CaseBatchResultSerializer(serializers.Serializer):
    external_id = serializers.CharField(allow_null=True)
    id = serializers.IntegerField(required=False, help_text="The new case (accepted items).")
    status = serializers.ChoiceField(choices=CaseStatus.choices, required=False)
    routing = CaseRoutingSerializer(required=False)
    final_label = serializers.CharField(allow_null=True, required=False)
    error = serializers.DictField(
        required=False,
        help_text='Field errors of a rejected item; refusals add a "code" (duplicate, system_prohibited, '
        'system_not_linked) and, for a duplicate, the existing case\'s "id".',
    )


class CaseBatchResponseSerializer(serializers.Serializer):
    results = CaseBatchResultSerializer(many=True)


class DecisionViewSerializer(serializers.Serializer):
    reviewer = serializers.CharField()
    outcome = serializers.CharField()
    label = serializers.CharField(allow_null=True)  # type: ignore[assignment]  # API field, not Field.label
    rationale = serializers.CharField(allow_blank=True)
    decided_at = serializers.DateTimeField()
    form_values = serializers.DictField(help_text="Answers to the intervention point's extra decision fields.")
    category = serializers.ChoiceField(choices=RejectionCategory.choices, required=False,
                                      help_text="A rejected generation's category.")


class CaseSerializer(serializers.Serializer):
    """The case representation (GET, webhooks). Reviewers get neither ``true_label`` nor others' decisions."""

    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True, help_text="null for reviewers (they never need it).")
    system = serializers.CharField()
    intervention_point = serializers.CharField()
    status = serializers.ChoiceField(choices=CaseStatus.choices)
    received_at = serializers.DateTimeField(allow_null=True, help_text="null for reviewers.")
    prediction = CasePredictionSerializer(allow_null=True)
    routing = CaseRoutingSerializer()
    final_label = serializers.CharField(allow_null=True)
    resolution = serializers.ChoiceField(choices=Resolution.choices, allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    sla_deadline = serializers.DateTimeField(allow_null=True)
    reviewers_required = serializers.IntegerField()
    true_label = serializers.CharField(allow_null=True, required=False)
    decisions = DecisionViewSerializer(many=True)
    kind = serializers.ChoiceField(choices=CaseKind.choices, help_text="The intervention point's kind.")
    generation = GenerationSerializer(required=False, help_text="Generation cases: the text under review.")
    action = ActionSerializer(required=False, help_text="Action cases: the proposed tool call.")
    final_output = FinalOutputSerializer(required=False, allow_null=True,
                                         help_text="Generation/action cases: the outcome (null until decided).")
    expires_at = serializers.DateTimeField(required=False, allow_null=True,
                                           help_text="Generation/action cases: when the breach rule applies.")


OUTCOME_REASON_MAX = 2000


class OutcomeSerializer(serializers.Serializer):
    """Ground truth reported by the integration, for accuracy KPIs.

    A case's first outcome needs no reason; replacing a reported outcome with a
    different one needs ``reason`` (a correction is audited with both values).
    """

    true_label = serializers.CharField(max_length=LABEL_MAX, help_text="One of the system's labels.")
    reason = serializers.CharField(
        max_length=OUTCOME_REASON_MAX, required=False,
        help_text="Why a reported outcome is replaced; required when the case already has a different one.",
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        unknown = sorted(str(key) for key in data if key not in ("true_label", "reason"))
        if unknown:
            raise serializers.ValidationError({key: ["Unknown field."] for key in unknown[:20]})
        value = data.get("true_label")
        if value is None:
            raise serializers.ValidationError({"true_label": [REQUIRED]})
        if not isinstance(value, str) or not value.strip():
            raise serializers.ValidationError({"true_label": ["Must be a non-empty string."]})
        if len(value) > LABEL_MAX:
            raise serializers.ValidationError({"true_label": [f"At most {LABEL_MAX} characters."]})
        reason = data.get("reason")
        if reason is None:
            reason = ""
        elif not isinstance(reason, str):
            raise serializers.ValidationError({"reason": ["Must be a string."]})
        elif len(reason) > OUTCOME_REASON_MAX:
            raise serializers.ValidationError({"reason": [f"At most {OUTCOME_REASON_MAX} characters."]})
        elif "\x00" in reason:
            raise serializers.ValidationError({"reason": ["Must not contain NUL characters."]})
        return {"true_label": value, "reason": reason.strip()}
