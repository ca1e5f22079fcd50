"""What the claim response adds beyond ``claim_payload``: the case's kind and payload, the adjudication context.

A reviewer client (the workbench, or one deciding over the API) needs, for a
generation case, the text with its prompt, conversation and sources; for an action
case, the tool call with the tool's JSON Schema when the point declares one (modified
arguments are validated against it); and, when the claim is an adjudication round,
the earlier verdicts to adjudicate. A first-round classification case gets nothing
more, so its response stays what it was.

Cheap on the claim's hot path: the kind and payload come from the rows the claim
already loaded; whether the case stands escalated costs at most one aggregate
statement over the case's round-1 decisions (none when the row alone says so, or when the
claim leased it straight from ``queued``), and
only an escalated case reads the verdicts and the escalation reasons.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, router

from reviews.models import Case, CaseKind, CaseStatus, Decision, DecisionOutcome
from reviews.rules import is_escalated
from reviews.selectors.escalations import adjudication_context
from reviews.selectors.queue import is_served_blind


def _stands_escalated(case: Case) -> bool:
    """``reviews.rules.is_escalated`` for the claimed case: from the row, else one statement on round 1."""
    if is_escalated(review_round=case.review_round, sla_breached=case.sla_breached, decisions=0,
                    distinct_labels=0, escalations=0, reviewers_required=case.reviewers_required):
        return True
    if case.claimed_from == CaseStatus.QUEUED:
        # Leased straight from "queued": the claim statement itself trusted that status (it hands
        # queued cases to non-adjudicators), so the round's verdicts need not be counted again.
        return False
    alias = router.db_for_read(Decision)
    conn = connections[alias]
    qn = conn.ops.quote_name
    # A plain statement, as the claim view's system look-up: compiling the ORM aggregate
    # would cost more than running it, on every claim.
    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), COUNT(DISTINCT {qn('label')}),"
            f" COALESCE(SUM(CASE WHEN {qn('outcome')} = %s THEN 1 ELSE 0 END), 0)"
            f" FROM {qn(Decision._meta.db_table)} WHERE {qn('case_id')} = %s AND {qn('round')} = 1",
            [DecisionOutcome.ESCALATE.value, case.pk],
        )
        row = cursor.fetchone()
    decisions, distinct_labels, escalations = row if row is not None else (0, 0, 0)
    return is_escalated(review_round=case.review_round, sla_breached=case.sla_breached, decisions=int(decisions),
                        distinct_labels=int(distinct_labels), escalations=int(escalations),
                        reviewers_required=case.reviewers_required)


def _adjudication(case: Case) -> dict[str, Any]:
    """The earlier verdicts (with a generation's edit or an action's modified arguments) and why it escalated."""
    context = adjudication_context(case)
    # Masking hides whether a classification verdict agreed with the hidden AI label; a
    # generation/action verdict is about the payload the adjudicator sees anyway.
    blind = case.intervention_point.kind == CaseKind.CLASSIFICATION and is_served_blind(case)
    outputs: dict[tuple[str, int], tuple[Any, str]] = {}
    if case.payload is not None:
        outputs = {
            (username, round_): (output, category)
            for username, round_, output, category in Decision.objects.filter(case_id=case.pk).values_list(
                "reviewer__username", "round", "output", "category"
            )
        }
    decisions = []
    for row in context["decisions"]:
        outcome = row["outcome"]
        if blind and outcome != DecisionOutcome.ESCALATE:
            # Blind adjudication: each verdict's label, but not whether it agreed with the hidden AI label.
            outcome = "answer"
        view: dict[str, Any] = {
            "round": row["round"], "reviewer": row["reviewer"], "outcome": outcome, "label": row["label"],
            "rationale": row["rationale"], "decided_at": row["decided_at"],
            "is_adjudication": row["is_adjudication"],
        }
        output, category = outputs.get((row["reviewer"], row["round"]), (None, ""))
        if output is not None:
            view["output"] = output
        if category:
            view["category"] = category
        decisions.append(view)
    reasons = [{"at": r["at"], "who": r["who"], "text": r["text"], "why": r["why"]} for r in context["reasons"]]
    return {"decisions": decisions, "reasons": reasons}


def claim_extras(case: Case) -> dict[str, Any]:
    """The fields the claim response's ``case`` adds to ``claim_payload(case)`` (none for a plain first round).

    ``kind`` and the payload under ``generation`` or ``action`` (the submission's
    shape) for those kinds, with ``tool_schema`` for a declared tool and
    ``expires_at`` when the case has an SLA deadline; ``adjudication`` ``{decisions, reasons}`` when the case stands
    escalated (only adjudicators are handed such a case).
    """
    extras: dict[str, Any] = {}
    point = case.intervention_point
    if point.kind != CaseKind.CLASSIFICATION:
        payload = case.payload or {}
        extras["kind"] = point.kind
        extras[point.kind] = payload
        if point.kind == CaseKind.ACTION:
            schema = (point.tool_schemas or {}).get(payload.get("tool"))
            if isinstance(schema, dict):
                extras["tool_schema"] = schema
        if case.sla_deadline is not None:
            # When an undecided request resolves by the point's breach rule (the SLA deadline).
            extras["expires_at"] = case.sla_deadline
    if _stands_escalated(case):
        extras["adjudication"] = _adjudication(case)
    return extras
