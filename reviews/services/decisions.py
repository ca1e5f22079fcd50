"""Reviewer decisions, four-eyes consensus, adjudication and reopening.

Rules (api-v1 "Review queue"):

- Only the holder of a live claim decides (409 otherwise); the lease is checked
  again here (compare-and-set), so an expired claim taken over by someone else
  can no longer be decided by its former holder.
- ``approve`` keeps the AI label; ``override`` needs a different label from the
  system's labels and a rationale; ``escalate`` needs a rationale.
- Blind cases (sampled blind, or labeling cases without a prediction) are
  answered with a label: the server records ``approve`` when it equals the AI
  label and ``override`` otherwise, so a labeling case without prediction is
  always recorded as ``override`` with the reviewer's label. A blind reviewer
  may still ``escalate``; ``approve`` is refused (they never saw what to approve).
  ``ai_shown`` is false for both kinds (nothing of the AI's output was shown).
- Time spent is measured by the server: decision time minus claim time.
- ``reviewers_required`` ≥ 2: the case goes back to the queue until that many
  different reviewers decided in the current round (each blind to the others);
  the same final label decides it, different ones escalate it. One reviewer's
  ``escalate`` escalates it at once.
- An adjudicator's decision on an escalated case is final (``adjudicated``);
  an adjudicator cannot escalate an escalated case further.
- Reopen (Art. 14(4)(d) reverse, Art. 86 appeal) starts a new review round as an
  escalated case.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import bulk_record_events, record_event
from hitl_portal.api.exceptions import Conflict
from reviews.models import Case, CaseStatus, Decision, DecisionOutcome, Resolution
from reviews.selectors.queue import is_served_blind
from reviews.services.errors import ClaimConflict, ReviewerNotAllowed
from reviews.services.queue import (
    CLAIM_FIELDS,
    end_claim,
    escalated_case_ids,
    holds_live_claim,
    locked_case,
    require_may_review,
)

CLOSE_FIELDS = ["resolution", "final_label", "decided_at"]
MAX_TIME_SPENT_MS = 2**31 - 1


def enqueue_decided_webhooks(cases: list[Case]) -> None:
    """Queue the ``case.decided`` webhooks in the deciding transaction (sent after commit).

    Imported late: the webhook module renders the case representation, which
    reads decisions; a top-level import would tie the modules in a cycle.
    """
    if not cases:
        return
    from reviews.services.webhooks import webhooks_enqueue

    webhooks_enqueue(cases=cases)


def _text_digest(text: str) -> dict[str, Any]:
    """A rationale is referred to by hash in the audit trail (it may mention the data subject)."""
    return {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "chars": len(text)}


def resolve_outcome(case: Case, *, outcome: str | None, label: str | None, rationale: str) -> tuple[str, str | None]:
    """Validate a verdict against the case and return ``(outcome, label the verdict stands for)``.

    For ``approve`` the label is the AI label, so decisions compare by label.
    """
    labels = list(case.system.labels)
    ai_label = case.prediction_label
    if outcome is not None and outcome not in DecisionOutcome.values:
        raise ValidationError({"outcome": [f"must be one of: {', '.join(DecisionOutcome.values)}"]})
    if label is not None and label not in labels:
        raise ValidationError({"label": [f"not one of the system's labels: {', '.join(labels)}"]})
    if outcome == DecisionOutcome.ESCALATE:
        if not rationale:
            raise ValidationError({"rationale": ["A rationale is required to escalate."]})
        return DecisionOutcome.ESCALATE, label
    if is_served_blind(case):
        if outcome == DecisionOutcome.APPROVE:
            raise ValidationError(
                {"outcome": ["This case is served blind: answer with a label (the server derives the outcome)."]}
            )
        if label is None:
            raise ValidationError({"label": ["This case is served blind: a label is required."]})
        return (DecisionOutcome.APPROVE if label == ai_label else DecisionOutcome.OVERRIDE), label
    if outcome is None:
        raise ValidationError({"outcome": ["This field is required."]})
    if outcome == DecisionOutcome.APPROVE:
        if label is not None and label != ai_label:
            raise ValidationError({"label": ["approve keeps the AI label: use override to change it."]})
        return DecisionOutcome.APPROVE, ai_label
    if label is None:
        raise ValidationError({"label": ["A label is required to override."]})
    if label == ai_label:
        raise ValidationError({"label": ["This is the AI label: use approve."]})
    if not rationale:
        raise ValidationError({"rationale": ["A rationale is required to override."]})
    return DecisionOutcome.OVERRIDE, label


@transaction.atomic
def decision_record(
    *, reviewer: User, case: Case, outcome: str | None, label: str | None, rationale: str
) -> Case:
    """Record the claim holder's verdict and move the case on (decided, escalated or back to the queue)."""
    case = locked_case(case, related=("system", "intervention_point"))
    now = timezone.now()
    if not holds_live_claim(case, reviewer, now):
        raise ClaimConflict("You hold no live claim on this case (it expired, was released or decided).")
    profile = require_may_review(reviewer, case)
    rationale = (rationale or "").strip()
    adjudication = case.pk in escalated_case_ids([case])
    if adjudication and not profile.adjudicator:
        raise ReviewerNotAllowed("Only an adjudicator may decide an escalated case.", code="adjudicator_required")
    outcome, verdict = resolve_outcome(case, outcome=outcome, label=label, rationale=rationale)
    if adjudication and outcome == DecisionOutcome.ESCALATE:
        raise ValidationError({"outcome": ["An adjudicator's decision is final: approve or override."]})

    blind = is_served_blind(case)
    claimed_at = case.claimed_at or now
    spent_ms = min(MAX_TIME_SPENT_MS, max(0, int((now - claimed_at) / timedelta(milliseconds=1))))
    decision = Decision(
        case=case, reviewer=reviewer, round=case.review_round, outcome=outcome, label=verdict,
        rationale=rationale, ai_shown=not blind, is_adjudication=adjudication, claimed_at=case.claimed_at,
        time_spent_ms=spent_ms, decided_at=now,
    )
    decision._history_user = reviewer  # type: ignore[attr-defined]
    decision.save()

    # What the case becomes.
    resolution: str | None = None
    cause = ""
    if adjudication:
        resolution = Resolution.ADJUDICATED
    elif outcome == DecisionOutcome.ESCALATE:
        cause = "reviewer_escalated"
    else:
        verdicts = list(
            Decision.objects.filter(case_id=case.pk, round=case.review_round).values_list("label", flat=True)
        )
        if len(set(verdicts)) > 1:
            # Consensus is out of reach as soon as two verdicts differ: no need to wait for the rest.
            cause = "disagreement"
        elif len(verdicts) >= case.reviewers_required:
            resolution = Resolution.REVIEWED

    before = {"status": case.status}
    end_claim(case, escalated=bool(cause))
    fields = list(CLAIM_FIELDS)
    if resolution is not None:
        case.status = CaseStatus.DECIDED
        case.resolution = resolution
        case.final_label = verdict
        case.decided_at = now
        fields += CLOSE_FIELDS
    case._history_user = reviewer  # type: ignore[attr-defined]
    case.save(update_fields=fields)

    data: dict[str, Any] = {
        "outcome": outcome, "label": verdict, "round": decision.round, "ai_shown": decision.ai_shown,
        "is_adjudication": adjudication, "time_spent_ms": spent_ms,
    }
    if rationale:
        data["rationale"] = _text_digest(rationale)
    events: list[dict[str, Any]] = [
        dict(action="decision.recorded", actor=reviewer, obj=decision, object_label=f"decision on case {case.pk}",
             case_id=case.pk, system_id=case.system_id, data=data, before=before, after={"status": case.status})
    ]
    if resolution is not None:
        events.append(dict(
            action="case.decided", actor=reviewer, obj=case, case_id=case.pk, system_id=case.system_id,
            data={"resolution": resolution, "final_label": case.final_label, "round": case.review_round,
                  "reviewers_required": case.reviewers_required},
            before=before, after={"status": case.status, "resolution": resolution, "final_label": case.final_label},
        ))
    elif cause:
        events.append(dict(
            action="case.escalated", actor=reviewer, obj=case, case_id=case.pk, system_id=case.system_id,
            data={"cause": cause, "round": case.review_round}, before=before, after={"status": case.status},
        ))
    bulk_record_events(events)
    if resolution is not None:
        enqueue_decided_webhooks([case])
    return case


@transaction.atomic
def case_reopen(*, actor: User, case: Case, reason: str) -> Case:
    """Send a decided (or auto-accepted) case back to review as escalated, in a new round.

    Art. 14(4)(d): a person may disregard or reverse the output; Art. 86: an
    affected person may ask for an explanation and a fresh look. Earlier deciders
    may decide again in the new round. The case gets a fresh SLA deadline (when
    its intervention point has one), so the appeal is not instantly overdue.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["A reason is required to reopen a case."]})
    case = locked_case(case, related=("intervention_point",))
    if case.status not in (CaseStatus.DECIDED, CaseStatus.AUTO_ACCEPTED):
        raise Conflict("Only a decided or auto-accepted case can be reopened.", code="not_decided")
    now = timezone.now()
    before = {
        "status": case.status, "resolution": case.resolution, "final_label": case.final_label,
        "decided_at": case.decided_at, "review_round": case.review_round,
    }
    case.status = CaseStatus.ESCALATED
    case.review_round += 1
    case.resolution = None
    case.final_label = None
    case.decided_at = None
    sla_seconds = case.intervention_point.sla_seconds
    case.sla_deadline = now + timedelta(seconds=sla_seconds) if sla_seconds else None
    case._history_user = actor  # type: ignore[attr-defined]
    case.save(update_fields=["status", "review_round", "sla_deadline", *CLOSE_FIELDS])
    record_event(
        "case.reopened", actor=actor, obj=case, case_id=case.pk, system_id=case.system_id, reason=reason,
        before=before, after={"status": case.status, "review_round": case.review_round,
                              "sla_deadline": case.sla_deadline},
    )
    return case
