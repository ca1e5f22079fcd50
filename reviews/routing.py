"""The routing engine: which AI outputs a person must look at, and why.

A pure module (no Django, no I/O) so it can be unit- and property-tested on its
own and called in a tight loop by batch ingestion. Given an intervention point's
rules and one case it answers ``RoutingDecision(routed, reasons)`` with the reason
names of the API contract, in the contract's order.

Fail safe everywhere: a high-stakes condition whose field is absent, or whose
value cannot be compared with the rule (a string against ``gt``, a malformed
rule), routes the case with ``high_stakes_field_missing`` instead of letting it
through; a missing confidence under a confidence rule routes too.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SYSTEM_HALTED = "system_halted"
LABELING = "labeling"
CONFIDENCE_BELOW = "confidence_below"
ALWAYS_REVIEW_LABEL = "always_review_label"
HIGH_STAKES = "high_stakes"
HIGH_STAKES_FIELD_MISSING = "high_stakes_field_missing"
RANDOM_SAMPLE = "random_sample"
# Generation and action cases (issue 14).
TOOL_ALWAYS_REVIEW = "tool_always_review"
TEXT_LENGTH = "text_length"
TEXT_PATTERN = "text_pattern"
TEXT_KEYWORD = "text_keyword"
# Art. 14(5): an identification result of a remote biometric identification system (Annex III
# 1(a)) is verified by two people, whatever its confidence.
BIOMETRIC_IDENTIFICATION = "biometric_identification"

# The contract's order; ``route`` always lists reasons in this order.
REASON_ORDER: tuple[str, ...] = (
    SYSTEM_HALTED,
    BIOMETRIC_IDENTIFICATION,
    LABELING,
    CONFIDENCE_BELOW,
    ALWAYS_REVIEW_LABEL,
    TOOL_ALWAYS_REVIEW,
    TEXT_LENGTH,
    TEXT_PATTERN,
    TEXT_KEYWORD,
    HIGH_STAKES,
    HIGH_STAKES_FIELD_MISSING,
    RANDOM_SAMPLE,
)
CLASSIFICATION = "classification"
GENERATION = "generation"
ACTION = "action"
# A tool rule naming every tool.
ANY_TOOL = "*"

HIGH_STAKES_OPS: tuple[str, ...] = ("gt", "gte", "lt", "lte", "eq", "ne", "in")
OPERATORS: frozenset[str] = frozenset(HIGH_STAKES_OPS)
NUMERIC_OPS: frozenset[str] = frozenset(("gt", "gte", "lt", "lte"))
FIELD_PATH_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
MAX_HIGH_STAKES = 50
MAX_IN_VALUES = 1000
FIELD_PATH_MAX = 200
LABELING_STAGE = "labeling"
_TWO_TO_64 = float(2**64)


@dataclass(frozen=True, slots=True)
class RoutingRules:
    """An intervention point's routing rules, as plain data.

    ``high_stakes`` holds ``{"field": "a.b", "op": "gt", "value": 1000}`` mappings.
    """

    system: str
    stage: str = "validation"
    confidence_below: float | None = None
    always_review_labels: frozenset[str] = frozenset()
    high_stakes: tuple[Mapping[str, Any], ...] = ()
    random_sample_rate: float = 0.0
    version: int = 1
    # Generation and action points: see ``route``.
    kind: str = CLASSIFICATION
    tool_always: frozenset[str] = frozenset()
    tool_never: frozenset[str] = frozenset()
    text_max_length: int | None = None
    text_regex: re.Pattern[str] | None = None
    text_keywords: tuple[str, ...] = ()
    # Annex III 1(a) systems: every result but the declared non-match label is routed (Art. 14(5)).
    verify_identifications: bool = False
    non_match_label: str | None = None
    # The intervention point's secret sampling salt: without it an integration could
    # compute which of its external ids get sampled and steer around the sample.
    salt: str = ""


@dataclass(frozen=True, slots=True)
class CaseInput:
    """What routing looks at in a case. ``label is None`` means no prediction was sent.

    ``payload`` is a generation's ``{text, ...}`` or an action's ``{tool, arguments, ...}``.
    """

    external_id: str
    input: Mapping[str, Any]
    label: str | None = None
    confidence: float | None = None
    payload: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    routed: bool
    reasons: list[str] = field(default_factory=list)


def _fraction(text: str) -> float:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / _TWO_TO_64


def sample_fraction(system_slug: str, external_id: str, *, salt: str) -> float:
    """The contract's deterministic sampling draw in [0, 1).

    First 8 bytes of SHA-256("{salt}:{system}:{external_id}") as a big-endian
    integer, divided by 2**64: the same case is always sampled the same way, on
    any node, while the point's salt stays secret (it is in no API response), so
    the integration cannot tell in advance which external ids will be sampled.
    """
    return _fraction(f"{salt}:{system_slug}:{external_id}")


def blind_fraction(system_slug: str, external_id: str, *, salt: str = "") -> float:
    """A second deterministic draw (another prefix) for serving a routed case blind.

    Independent of ``sample_fraction`` so that the sampled cases are not also
    exactly the blind ones; salted like it when a salt is given, so which cases
    reviewers see blind cannot be predicted from the external id either.
    """
    if salt:
        return _fraction(f"blind:{salt}:{system_slug}:{external_id}")
    return _fraction(f"blind:{system_slug}:{external_id}")


_MISSING: Any = object()


def lookup_path(data: Any, path: str) -> Any:
    """The value at a dotted path (``applicant.income``, ``items.0.price``), or ``_MISSING``.

    A numeric segment indexes a list; anything that does not resolve is missing.
    """
    current = data
    for segment in path.split("."):
        if isinstance(current, Mapping):
            if segment not in current:
                return _MISSING
            current = current[segment]
        elif isinstance(current, list) and segment.isdigit():
            index = int(segment)
            if index >= len(current):
                return _MISSING
            current = current[index]
        else:
            return _MISSING
    return current


def _kind(value: Any) -> str:
    # bool before int: JSON's true is not the number 1.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, Sequence):
        return "array"
    return "other"


def json_equal(left: Any, right: Any) -> bool:
    """Equality of JSON values, where ``true`` never equals ``1``."""
    kind = _kind(left)
    if kind != _kind(right):
        return False
    if kind == "object":
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if kind == "array":
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


def compare(op: str, actual: Any, expected: Any) -> bool | None:
    """Evaluate one condition; ``None`` when the values cannot be compared (unsafe).

    Ordered operators compare numbers with numbers or strings with strings only.
    """
    if op == "eq":
        return json_equal(actual, expected)
    if op == "ne":
        return not json_equal(actual, expected)
    if op == "in":
        if _kind(expected) != "array":
            return None
        return any(json_equal(actual, item) for item in expected)
    if op in ("gt", "gte", "lt", "lte"):
        kind = _kind(actual)
        if kind not in ("number", "string") or kind != _kind(expected):
            return None
        if op == "gt":
            return bool(actual > expected)
        if op == "gte":
            return bool(actual >= expected)
        if op == "lt":
            return bool(actual < expected)
        return bool(actual <= expected)
    return None


# --- The one definition of a valid high-stakes condition (API, admin and services use it) ----------


def is_number(value: Any) -> bool:
    """A finite int or float (booleans are not numbers here)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool) or is_number(value)


def condition_errors(condition: Any) -> dict[str, list[str]]:
    """Why one high-stakes condition is invalid, by key (empty when it is valid).

    A condition is exactly ``{field, op, value}``: ``field`` a dotted path into the
    case input, ``op`` one of ``HIGH_STAKES_OPS``, ``value`` a finite number for
    the ordering operators, a non-empty list of scalars for ``in``, a scalar for
    ``eq``/``ne``.
    """
    if not isinstance(condition, Mapping):
        return {"non_field_errors": ['Must be an object {"field": ..., "op": ..., "value": ...}.']}
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(condition) - {"field", "op", "value"})
    for key in unknown:
        errors[str(key)] = ["Unknown field."]
    for key in ("field", "op", "value"):
        if key not in condition:
            errors[key] = ["This field is required."]
    if errors:
        return errors
    path, op, value = condition["field"], condition["op"], condition["value"]
    if not isinstance(path, str) or len(path) > FIELD_PATH_MAX or not FIELD_PATH_RE.match(path):
        errors["field"] = ['Must be a dotted path of letters, digits, "_" or "-", e.g. "applicant.income".']
    if op not in OPERATORS:
        errors["op"] = [f"Must be one of {', '.join(HIGH_STAKES_OPS)}."]
    elif op in NUMERIC_OPS:
        if not is_number(value):
            errors["value"] = [f"{op} needs a finite number."]
    elif op == "in":
        if not isinstance(value, list) or not value:
            errors["value"] = ["in needs a non-empty list."]
        elif len(value) > MAX_IN_VALUES or not all(is_scalar(item) for item in value):
            errors["value"] = [f"in needs at most {MAX_IN_VALUES} strings, numbers, booleans or nulls."]
    elif not is_scalar(value):
        errors["value"] = [f"{op} needs a string, number, boolean or null."]
    return errors


def high_stakes_errors(conditions: Any) -> list[str]:
    """Why a list of high-stakes conditions is invalid, each message naming the condition (empty: valid)."""
    if not isinstance(conditions, list):
        return ["Must be a list of conditions."]
    if len(conditions) > MAX_HIGH_STAKES:
        return [f"At most {MAX_HIGH_STAKES} conditions."]
    messages: list[str] = []
    for index, condition in enumerate(conditions):
        for key, key_messages in condition_errors(condition).items():
            messages += [f"[{index}].{key}: {message}" for message in key_messages]
    return messages


def evaluate_high_stakes(conditions: Sequence[Mapping[str, Any]], data: Any) -> tuple[bool, bool]:
    """``(any condition holds, any condition could not be evaluated)`` over the case input."""
    hit = unsafe = False
    for condition in conditions:
        path = condition.get("field") if isinstance(condition, Mapping) else None
        op = condition.get("op") if isinstance(condition, Mapping) else None
        if not isinstance(path, str) or not path or op not in OPERATORS:
            unsafe = True
            continue
        actual = lookup_path(data, path)
        if actual is _MISSING:
            unsafe = True
            continue
        result = compare(op, actual, condition.get("value"))
        if result is None:
            unsafe = True
        elif result:
            hit = True
    return hit, unsafe


def condition_data(case: CaseInput) -> Any:
    """What high-stakes conditions are evaluated over.

    The input for classification; for generation and action cases the input's
    fields with the payload's on top, so ``arguments.amount`` or ``tool`` resolve.
    """
    if case.payload is None:
        return case.input
    return {**case.input, **case.payload}


def _text_reasons(rules: RoutingRules, text: str) -> list[str]:
    reasons: list[str] = []
    if rules.text_max_length is not None and len(text) > rules.text_max_length:
        reasons.append(TEXT_LENGTH)
    if rules.text_regex is not None and rules.text_regex.search(text):
        reasons.append(TEXT_PATTERN)
    if rules.text_keywords:
        folded = text.casefold()
        if any(keyword in folded for keyword in rules.text_keywords):
            reasons.append(TEXT_KEYWORD)
    return reasons


def _route_kind(rules: RoutingRules, case: CaseInput, *, system_halted: bool) -> RoutingDecision:
    """Generation and action cases: no label; tool and text rules beside the shared ones.

    A tool listed under ``never`` goes through unless the system is halted (the
    stop button sends every action to a person); ``always`` (or ``"*"``) always
    routes. A confidence rule routes when the model's confidence is below it or
    was not sent (fail safe, as for classification).
    """
    payload = case.payload or {}
    reasons: list[str] = []
    if system_halted:
        reasons.append(SYSTEM_HALTED)
    tool = payload.get("tool") if rules.kind == ACTION else None
    if isinstance(tool, str) and tool in rules.tool_never:
        return RoutingDecision(routed=bool(reasons), reasons=reasons)
    if rules.confidence_below is not None and (case.confidence is None or case.confidence < rules.confidence_below):
        reasons.append(CONFIDENCE_BELOW)
    if rules.kind == ACTION and (ANY_TOOL in rules.tool_always or tool in rules.tool_always):
        reasons.append(TOOL_ALWAYS_REVIEW)
    if rules.kind == GENERATION:
        text = payload.get("text")
        reasons.extend(_text_reasons(rules, text if isinstance(text, str) else ""))
    if rules.high_stakes:
        hit, unsafe = evaluate_high_stakes(rules.high_stakes, condition_data(case))
        if hit:
            reasons.append(HIGH_STAKES)
        if unsafe:
            reasons.append(HIGH_STAKES_FIELD_MISSING)
    if (
        rules.random_sample_rate > 0
        and sample_fraction(rules.system, case.external_id, salt=rules.salt) < rules.random_sample_rate
    ):
        reasons.append(RANDOM_SAMPLE)
    return RoutingDecision(routed=bool(reasons), reasons=reasons)


def route(rules: RoutingRules, case: CaseInput, *, system_halted: bool) -> RoutingDecision:
    """Decide whether a case goes to a human, with every reason that applies.

    Every rule is evaluated (not just the first that fires), so the case records
    all the reasons it was routed for.
    """
    if rules.kind != CLASSIFICATION:
        return _route_kind(rules, case, system_halted=system_halted)
    reasons: list[str] = []
    if system_halted:
        reasons.append(SYSTEM_HALTED)
    if rules.verify_identifications and (case.label is None or case.label != rules.non_match_label):
        # Not configurable away: no threshold, sampling or breach rule decides this one.
        reasons.append(BIOMETRIC_IDENTIFICATION)
    if case.label is None:
        # No prediction: only allowed at a labeling point, and a person must label it.
        reasons.append(LABELING)
    else:
        if rules.confidence_below is not None and (
            case.confidence is None or case.confidence < rules.confidence_below
        ):
            reasons.append(CONFIDENCE_BELOW)
        if case.label in rules.always_review_labels:
            reasons.append(ALWAYS_REVIEW_LABEL)
    if rules.high_stakes:
        hit, unsafe = evaluate_high_stakes(rules.high_stakes, case.input)
        if hit:
            reasons.append(HIGH_STAKES)
        if unsafe:
            reasons.append(HIGH_STAKES_FIELD_MISSING)
    if (
        rules.random_sample_rate > 0
        and sample_fraction(rules.system, case.external_id, salt=rules.salt) < rules.random_sample_rate
    ):
        reasons.append(RANDOM_SAMPLE)
    return RoutingDecision(routed=bool(reasons), reasons=reasons)


__all__ = [
    "REASON_ORDER",
    "CaseInput",
    "RoutingDecision",
    "RoutingRules",
    "blind_fraction",
    "compare",
    "condition_data",
    "evaluate_high_stakes",
    "json_equal",
    "lookup_path",
    "route",
    "sample_fraction",
]
