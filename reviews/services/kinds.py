"""Generation and action cases (issue 14): what they hold, how they are routed and decided.

A ``generation`` case holds an AI-written text (with its prompt, conversation and
retrieved sources when sent); the reviewer approves it, edits it (the edited text
is the final output, the diff is stored) or rejects it with a reason and an
optional category. An ``action`` case holds an agent's proposed tool call; the
reviewer approves it, denies it (the reason goes back to the agent) or approves
it with modified arguments (validated against the tool's JSON Schema when the
point declares one).

The audit trail refers to texts and arguments by SHA-256 only: they may hold
personal data, and the ledger is never purged.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.canonical import canonical_json, sha256_hex
from audit.catalogue import ACTIONS, register_action
from audit.services import bulk_record_events
from reviews.models import (
    KIND_OUTCOMES,
    Case,
    CaseKind,
    CaseStatus,
    Decision,
    DecisionOutcome,
    InterventionPoint,
    RejectionCategory,
    Resolution,
    SlaBreachAction,
)
from reviews.services.errors import ClaimConflict, ReviewerNotAllowed

for _name, _description in [
    ("case.output_edited", "A reviewer edited a generated text (hashes of both texts)."),
    ("case.arguments_modified", "A reviewer approved a tool call with modified arguments (hashes)."),
]:
    if _name not in ACTIONS:
        register_action(_name, _description)

TEXT_MAX = 200_000
TOOL_MAX = 200
AGENT_MAX = 200
REASON_MAX = 20_000
MESSAGES_MAX = 200
SOURCES_MAX = 100
REGEX_MAX = 500
KEYWORDS_MAX = 200
# Above this many cells the edit distance is computed over words, not characters
# (quadratic time; a page of text against its edit stays in milliseconds).
_CHAR_DISTANCE_CELLS = 4_000_000

GENERATION_FIELDS = frozenset(("text", "prompt", "conversation", "sources"))
ACTION_FIELDS = frozenset(("tool", "arguments", "agent", "conversation", "rationale"))


def is_kind(point_or_case: InterventionPoint | Case) -> bool:
    """Whether the point (or the case's point) is a generation or action point."""
    point = point_or_case if isinstance(point_or_case, InterventionPoint) else point_or_case.intervention_point
    return point.kind != CaseKind.CLASSIFICATION


def digest(value: Any) -> str:
    """SHA-256 of a text, or of a JSON value in canonical form (the audit trail's reference)."""
    return sha256_hex(value if isinstance(value, str) else canonical_json(value))


# --- Point configuration -----------------------------------------------------------------


def _string_list(value: Any, name: str, *, limit: int) -> list[str]:
    if not isinstance(value, list) or len(value) > limit or not all(
        isinstance(item, str) and 0 < len(item) <= TOOL_MAX for item in value
    ):
        raise ValidationError({name: [f"Must be a list of at most {limit} non-empty strings."]})
    return value


def validate_point_kind_rules(values: Mapping[str, Any]) -> None:
    """Rules of ``kind``, ``tool_rules``, ``text_rules`` and ``tool_schemas`` (400 naming the field)."""
    kind = values.get("kind", CaseKind.CLASSIFICATION)
    if kind not in CaseKind.values:
        raise ValidationError({"kind": [f"Must be one of: {', '.join(CaseKind.values)}."]})
    tool_rules = values.get("tool_rules") or {}
    text_rules = values.get("text_rules") or {}
    tool_schemas = values.get("tool_schemas") or {}
    if not isinstance(tool_rules, dict):
        raise ValidationError({"tool_rules": ['Must be an object {"always": [...], "never": [...]}.']})
    if not isinstance(text_rules, dict):
        raise ValidationError({"text_rules": ['Must be an object {"max_length", "regex", "keywords"}.']})
    if not isinstance(tool_schemas, dict):
        raise ValidationError({"tool_schemas": ["Must be an object mapping tool names to JSON Schemas."]})
    if kind != CaseKind.ACTION and (tool_rules or tool_schemas):
        raise ValidationError({"tool_rules": ["Tool rules and schemas apply to action points only."]})
    if kind != CaseKind.GENERATION and text_rules:
        raise ValidationError({"text_rules": ["Text rules apply to generation points only."]})
    unknown = sorted(set(tool_rules) - {"always", "never"})
    if unknown:
        raise ValidationError({"tool_rules": [f"Unknown key(s): {', '.join(unknown)}."]})
    always = _string_list(tool_rules.get("always", []), "tool_rules", limit=KEYWORDS_MAX)
    never = _string_list(tool_rules.get("never", []), "tool_rules", limit=KEYWORDS_MAX)
    both = sorted(set(always) & set(never))
    if both:
        raise ValidationError({"tool_rules": [f"Both always and never reviewed: {', '.join(both)}."]})
    unknown = sorted(set(text_rules) - {"max_length", "regex", "keywords"})
    if unknown:
        raise ValidationError({"text_rules": [f"Unknown key(s): {', '.join(unknown)}."]})
    max_length = text_rules.get("max_length")
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                   or max_length < 0):
        raise ValidationError({"text_rules": ["max_length must be a non-negative integer."]})
    regex = text_rules.get("regex")
    if regex is not None:
        if not isinstance(regex, str) or not regex or len(regex) > REGEX_MAX:
            raise ValidationError({"text_rules": [f"regex must be a pattern of 1 to {REGEX_MAX} characters."]})
        try:
            re.compile(regex)
        except re.error as exc:
            raise ValidationError({"text_rules": [f"regex does not compile: {exc}."]}) from None
    if "keywords" in text_rules:
        _string_list(text_rules["keywords"], "text_rules", limit=KEYWORDS_MAX)
    for tool, schema in tool_schemas.items():
        if not isinstance(schema, dict):
            raise ValidationError({"tool_schemas": [f"{tool}: must be a JSON Schema object."]})
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValidationError({"tool_schemas": [f"{tool}: not a valid JSON Schema ({exc.message})."]}) from None
    if kind != CaseKind.CLASSIFICATION:
        if values.get("reviewers_required", 1) != 1:
            raise ValidationError(
                {"reviewers_required": ["Generation and action points are decided by one reviewer "
                                        "(escalate to an adjudicator for a second look)."]}
            )
        if values.get("stage") == "labeling":
            raise ValidationError({"stage": ["A generation or action point has no labeling stage."]})


def point_defaults(kind: str, rules: dict[str, Any]) -> None:
    """Defaults that differ by kind: an unanswered action request is denied (fail closed)."""
    if kind == CaseKind.ACTION:
        rules.setdefault("on_sla_breach", SlaBreachAction.FAIL_CLOSED)


def routing_rule_fields(point: InterventionPoint) -> dict[str, Any]:
    """The kind-specific fields of ``reviews.routing.RoutingRules`` for a point."""
    if point.kind == CaseKind.CLASSIFICATION:
        return {}
    tool_rules = point.tool_rules or {}
    text_rules = point.text_rules or {}
    regex = text_rules.get("regex")
    return {
        "kind": point.kind,
        "tool_always": frozenset(tool_rules.get("always") or ()),
        "tool_never": frozenset(tool_rules.get("never") or ()),
        "text_max_length": text_rules.get("max_length"),
        "text_regex": re.compile(regex) if regex else None,
        "text_keywords": tuple(keyword.casefold() for keyword in text_rules.get("keywords") or ()),
    }


# --- Submissions ---------------------------------------------------------------------------


def _messages(value: Any, name: str, errors: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A conversation: ``[{role, content}]`` with string role and content."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MESSAGES_MAX:
        errors[name] = [f"Must be a list of at most {MESSAGES_MAX} messages."]
        return None
    for message in value:
        if not (isinstance(message, dict) and isinstance(message.get("role"), str)
                and isinstance(message.get("content"), str)):
            errors[name] = ['Each message must be an object {"role": str, "content": str}.']
            return None
    return value


def _sources(value: Any, errors: dict[str, Any]) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > SOURCES_MAX:
        errors["sources"] = [f"Must be a list of at most {SOURCES_MAX} sources."]
        return None
    for source in value:
        if not isinstance(source, dict) or not all(
            isinstance(source.get(key), str) for key in ("title", "content") if key in source
        ) or not any(key in source for key in ("title", "content", "url")):
            errors["sources"] = ['Each source must be an object with "title", "content" and/or "url" (strings).']
            return None
    return value


def validate_payload(kind: str, raw: Mapping[str, Any], errors: dict[str, Any]) -> dict[str, Any] | None:
    """The ``generation`` or ``action`` object of a submission, validated (errors name the field)."""
    name = "generation" if kind == CaseKind.GENERATION else "action"
    other = "action" if name == "generation" else "generation"
    if other in raw:
        errors[other] = [f"This intervention point takes {name} cases."]
    value = raw.get(name)
    if value is None:
        errors[name] = ["This field is required."]
        return None
    if not isinstance(value, dict):
        errors[name] = ["Must be a JSON object."]
        return None
    allowed = GENERATION_FIELDS if kind == CaseKind.GENERATION else ACTION_FIELDS
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        errors[name] = [f"Unknown field(s): {', '.join(unknown[:20])}."]
        return None
    if kind == CaseKind.GENERATION:
        text = value.get("text")
        if not isinstance(text, str):
            errors["text"] = ["Required: the generated text (a string)."]
        elif len(text) > TEXT_MAX:
            errors["text"] = [f"At most {TEXT_MAX} characters."]
        prompt = value.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            errors["prompt"] = ["Must be a string."]
        _messages(value.get("conversation"), "conversation", errors)
        _sources(value.get("sources"), errors)
        return {key: value[key] for key in ("text", "prompt", "conversation", "sources") if value.get(key) is not None}
    tool = value.get("tool")
    if not isinstance(tool, str) or not tool.strip():
        errors["tool"] = ["Required: the tool's name (a string)."]
    elif len(tool) > TOOL_MAX:
        errors["tool"] = [f"At most {TOOL_MAX} characters."]
    arguments = value.get("arguments")
    if not isinstance(arguments, dict):
        errors["arguments"] = ["Required: the tool call's arguments (a JSON object)."]
    agent = value.get("agent")
    if not isinstance(agent, str) or not agent.strip():
        errors["agent"] = ["Required: the agent's name (a string)."]
    elif len(agent) > AGENT_MAX:
        errors["agent"] = [f"At most {AGENT_MAX} characters."]
    rationale = value.get("rationale")
    if rationale is not None and not isinstance(rationale, str):
        errors["rationale"] = ["Must be a string."]
    _messages(value.get("conversation"), "conversation", errors)
    return {key: value[key] for key in ("tool", "arguments", "agent", "conversation", "rationale")
            if value.get(key) is not None}


def payload_digest(case: Case) -> dict[str, Any]:
    """What ``case.created`` records of a generation/action payload: hashes, never the content."""
    payload = case.payload or {}
    if case.intervention_point.kind == CaseKind.GENERATION:
        return {"text_sha256": digest(payload.get("text", "")), "text_chars": len(payload.get("text", ""))}
    return {"tool": payload.get("tool"), "agent": payload.get("agent"),
            "arguments_sha256": digest(payload.get("arguments", {}))}


def auto_output(case: Case) -> dict[str, Any]:
    """The final output of a case let through unreviewed (auto-accepted, or accepted on SLA breach)."""
    payload = case.payload or {}
    if case.intervention_point.kind == CaseKind.GENERATION:
        return {"text": payload.get("text"), "edited": False, "rejected": False, "diff": ""}
    return {"approved": True, "arguments": payload.get("arguments"), "modified": False, "diff": [],
            "reason": ""}


def expired_output(case: Case) -> dict[str, Any]:
    """The final output of a request nobody answered in time under a fail-closed rule."""
    reason = "No reviewer decided before the request expired."
    if case.intervention_point.kind == CaseKind.GENERATION:
        return {"text": None, "edited": False, "rejected": True, "diff": "", "reason": reason,
                "category": None}
    return {"approved": False, "arguments": None, "modified": False, "diff": [], "reason": reason}


# --- Diffs and distances -----------------------------------------------------------------


def text_diff(before: str, after: str) -> str:
    """A unified diff, line by line (what the reviewer changed)."""
    return "".join(difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), fromfile="ai", tofile="reviewer", n=2
    ))


def _levenshtein(a: list[str] | str, b: list[str] | str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def normalised_edit_distance(before: str, after: str) -> float:
    """Levenshtein distance over the longer length, in [0, 1] (characters; words for long texts)."""
    if before == after:
        return 0.0
    a: list[str] | str = before
    b: list[str] | str = after
    if len(before) * len(after) > _CHAR_DISTANCE_CELLS:
        a, b = before.split(), after.split()
    longest = max(len(a), len(b))
    return 0.0 if longest == 0 else round(_levenshtein(a, b) / longest, 6)


def json_diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """Changes from ``before`` to ``after`` as ``[{path, op: added|removed|changed, before?, after?}]``."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in after:
                changes.append({"path": sub, "op": "removed", "before": before[key]})
            elif key not in before:
                changes.append({"path": sub, "op": "added", "after": after[key]})
            else:
                changes.extend(json_diff(before[key], after[key], sub))
        return changes
    if canonical_json(before) == canonical_json(after):
        return []
    return [{"path": path, "op": "changed", "before": before, "after": after}]


# --- Deciding ------------------------------------------------------------------------------


def _validate_verdict(
    case: Case, *, outcome: str | None, text: str | None, arguments: Any, rationale: str, category: str
) -> tuple[str, dict[str, Any] | None]:
    """Check a verdict against the case; returns ``(outcome, final output or None for escalate)``."""
    kind = case.intervention_point.kind
    allowed = KIND_OUTCOMES[kind]
    if outcome not in allowed:
        raise ValidationError({"outcome": [f"For a {kind} case: one of {', '.join(allowed)}."]})
    if category and outcome != DecisionOutcome.REJECT:
        raise ValidationError({"category": ["Only a rejection has a category."]})
    if category and category not in RejectionCategory.values:
        raise ValidationError({"category": [f"Must be one of: {', '.join(RejectionCategory.values)}."]})
    if outcome != DecisionOutcome.EDIT and text is not None:
        raise ValidationError({"text": ["Only an edit sends a text."]})
    if outcome != DecisionOutcome.MODIFY and arguments is not None:
        raise ValidationError({"arguments": ["Only a modification sends arguments."]})
    payload = case.payload or {}
    if outcome == DecisionOutcome.ESCALATE:
        if not rationale:
            raise ValidationError({"rationale": ["A rationale is required to escalate."]})
        return outcome, None
    if outcome == DecisionOutcome.APPROVE:
        return outcome, auto_output(case)
    if outcome in (DecisionOutcome.REJECT, DecisionOutcome.DENY):
        if not rationale:
            raise ValidationError({"rationale": [f"A reason is required to {outcome}."]})
        if outcome == DecisionOutcome.REJECT:
            return outcome, {"text": None, "edited": False, "rejected": True, "diff": "", "reason": rationale,
                             "category": category or None}
        return outcome, {"approved": False, "arguments": None, "modified": False, "diff": [], "reason": rationale}
    if outcome == DecisionOutcome.EDIT:
        original = payload.get("text", "")
        if not isinstance(text, str):
            raise ValidationError({"text": ["The edited text is required to edit."]})
        if len(text) > TEXT_MAX:
            raise ValidationError({"text": [f"At most {TEXT_MAX} characters."]})
        if text == original:
            raise ValidationError({"text": ["The text is unchanged: use approve."]})
        return outcome, {"text": text, "edited": True, "rejected": False, "diff": text_diff(original, text),
                         "edit_distance": normalised_edit_distance(original, text)}
    # modify
    if not isinstance(arguments, dict):
        raise ValidationError({"arguments": ["The modified arguments (a JSON object) are required to modify."]})
    original_args = payload.get("arguments", {})
    changes = json_diff(original_args, arguments)
    if not changes:
        raise ValidationError({"arguments": ["The arguments are unchanged: use approve."]})
    schema = (case.intervention_point.tool_schemas or {}).get(payload.get("tool"))
    if schema:
        validator_class = jsonschema.validators.validator_for(schema)
        problems = sorted(validator_class(schema).iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if problems:
            first = problems[0]
            where = ".".join(str(part) for part in first.absolute_path) or "(root)"
            raise ValidationError({"arguments": [f"{where}: {first.message}"]})
    return outcome, {"approved": True, "arguments": arguments, "modified": True, "diff": changes,
                     "reason": rationale}


# No savepoint of its own: a refusal raised here leaves the caller's transaction
# (``decision_record``'s, or this one when called alone) to roll back, as it must.
@transaction.atomic(savepoint=False)
def kind_decision_record(
    *,
    reviewer: User,
    case: Case,
    outcome: str | None,
    text: str | None = None,
    arguments: Any = None,
    rationale: str = "",
    category: str = "",
    locked: bool = False,
) -> Case:
    """Record the claim holder's verdict on a generation or action case.

    One reviewer decides (points of these kinds require one); ``escalate`` sends
    the case to an adjudicator, whose verdict is final. Events: ``decision.recorded``
    (hashes of the texts and arguments), ``case.output_edited`` or
    ``case.arguments_modified`` when the reviewer changed the output, and
    ``case.decided``; the webhook and the waiting agents are told after commit.

    ``locked``: ``case`` was read by ``_locked_for_decision`` in this transaction
    (``decision_record`` does): it holds the row lock and the reviewer's standing,
    so reading it again would only cost a round trip (the decision's critical path:
    the waiting agent wakes when it commits).
    """
    # Late imports: these modules import the decision service, which imports this one.
    from reviews.services.decisions import (
        _locked_for_decision,
        _require_standing,
        _text_digest,
        enqueue_decided_webhooks,
        stands_escalated,
    )
    from reviews.services.queue import CLAIM_FIELDS, end_claim, holds_live_claim

    if not locked:
        case = _locked_for_decision(case, reviewer)
    if case.intervention_point.kind == CaseKind.CLASSIFICATION:
        raise ValidationError({"outcome": ["This is a classification case: decide it with a label."]})
    now = timezone.now()
    if not holds_live_claim(case, reviewer, now):
        raise ClaimConflict("You hold no live claim on this case (it expired, was released or decided).")
    adjudicator = _require_standing(reviewer, case)
    rationale = (rationale or "").strip()
    if len(rationale) > REASON_MAX:
        raise ValidationError({"rationale": [f"At most {REASON_MAX} characters."]})
    adjudication = stands_escalated(case, [])
    if adjudication and not adjudicator:
        raise ReviewerNotAllowed("Only an adjudicator may decide an escalated case.", code="adjudicator_required")
    outcome, final = _validate_verdict(case, outcome=outcome, text=text, arguments=arguments,
                                       rationale=rationale, category=category or "")
    if adjudication and outcome == DecisionOutcome.ESCALATE:
        raise ValidationError({"outcome": ["An adjudicator's decision is final."]})

    claimed_at = case.claimed_at or now
    spent_ms = min(2**31 - 1, max(0, int((now - claimed_at) / timedelta(milliseconds=1))))
    decision_output = None
    if outcome == DecisionOutcome.EDIT and final is not None:
        decision_output = {"text": final["text"], "diff": final["diff"]}
    elif outcome == DecisionOutcome.MODIFY and final is not None:
        decision_output = {"arguments": final["arguments"], "diff": final["diff"]}
    decision = Decision(
        case=case, reviewer=reviewer, round=case.review_round, outcome=outcome, label=None, rationale=rationale,
        ai_shown=True, is_adjudication=adjudication, claimed_at=case.claimed_at, time_spent_ms=spent_ms,
        decided_at=now, output=decision_output, category=category or "",
        system_id=case.system_id, prediction_label=case.prediction_label,
    )
    decision._history_user = reviewer  # type: ignore[attr-defined]
    decision.save()

    before = {"status": case.status}
    escalated = outcome == DecisionOutcome.ESCALATE
    end_claim(case, escalated=escalated)
    fields = list(CLAIM_FIELDS)
    if not escalated:
        case.status = CaseStatus.DECIDED
        case.resolution = Resolution.ADJUDICATED if adjudication else Resolution.REVIEWED
        case.final_output = final
        case.decided_at = now
        fields += ["resolution", "final_output", "decided_at"]
    case._history_user = reviewer  # type: ignore[attr-defined]
    case.save(update_fields=fields)

    common = dict(actor=reviewer, case_id=case.pk, system_id=case.system_id)
    data: dict[str, Any] = {"outcome": outcome, "round": decision.round, "ai_shown": True,
                            "is_adjudication": adjudication, "time_spent_ms": spent_ms,
                            "kind": case.intervention_point.kind}
    if rationale:
        data["rationale"] = _text_digest(rationale)
    if category:
        data["category"] = category
    events: list[dict[str, Any]] = [
        dict(action="decision.recorded", obj=decision, object_label=f"decision on case {case.pk}", data=data,
             before=before, after={"status": case.status}, **common)
    ]
    payload = case.payload or {}
    if outcome == DecisionOutcome.EDIT and final is not None:
        events.append(dict(action="case.output_edited", obj=case, **common, data={
            "before_sha256": digest(payload.get("text", "")), "after_sha256": digest(final["text"]),
            "edit_distance": final["edit_distance"], "round": case.review_round,
        }))
    if outcome == DecisionOutcome.MODIFY and final is not None:
        events.append(dict(action="case.arguments_modified", obj=case, **common, data={
            "tool": payload.get("tool"), "before_sha256": digest(payload.get("arguments", {})),
            "after_sha256": digest(final["arguments"]),
            "paths": [change["path"] for change in final["diff"]], "round": case.review_round,
        }))
    if escalated:
        events.append(dict(action="case.escalated", obj=case, **common,
                           data={"cause": "reviewer_escalated", "round": case.review_round},
                           before=before, after={"status": case.status}))
    else:
        events.append(dict(action="case.decided", obj=case, **common,
                           data={"resolution": case.resolution, "outcome": outcome, "round": case.review_round},
                           before=before, after={"status": case.status, "resolution": case.resolution}))
    bulk_record_events(events)
    if not escalated:
        enqueue_decided_webhooks([case])
    return case


def expires_at_of(case: Case) -> datetime | None:
    """When an undecided generation/action request resolves by the point's breach rule."""
    return case.sla_deadline
