"""A reviewer's own work: comments on a case, skipping with a reason, undoing one's own decision.

Rules (issue 12, item 4):

- **Comments** may be written by the holder of a live claim, by anyone who decided
  the case, and by compliance officers and admins. They are for later reviewers,
  adjudicators and officers. Blind-phase rule: a comment written by a reviewer of
  the case's current round is hidden from the round's other reviewers until the case
  stands escalated or they have decided themselves (so a four-eyes co-reviewer never
  reads a verdict in disguise); ``reviews.selectors.own_work.comments_visible_to``
  applies it. Audited ``case.commented`` (the text by hash: it may name the data subject).
- **Skip** ends the skipper's live claim with a reason; the case goes back to the
  queue (as escalated when it was). The skipper is not offered the case again in
  this review round (``claimable_cases``); if that leaves nobody eligible, the
  officers are alerted like for any stuck case. Counted per reviewer (``CaseSkip``);
  audited ``case.skipped``.
- **Undo**: within ``HITL_UNDO_SECONDS`` (default 120 s) of one's own decision, while
  the case is still open (not final, so no webhook was sent) and nobody else holds it
  under a live lease, the decision is withdrawn and the case handed back to its
  reviewer under a fresh lease, to decide again. Audited ``decision.undone`` with the
  withdrawn verdict; the decision's history keeps its deletion.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import record_event
from hitl_portal.roles import ADMIN, COMPLIANCE_OFFICER, user_role
from reviews.models import Case, CaseAlert, CaseComment, CaseSkip, CaseStatus, Decision, ReviewerProfile
from reviews.services.errors import ClaimConflict, ReviewerNotAllowed
from reviews.services.escalations import alert_if_nobody_can_take
from reviews.services.queue import (
    CLAIM_FIELDS,
    escalated_case_ids,
    hand_back,
    holds_live_claim,
    lease_seconds,
    locked_case,
    require_may_review,
)

MAX_COMMENT_CHARS = 5_000
MAX_REASON_CHARS = 2_000


def undo_seconds() -> int:
    """How long after a decision its reviewer may undo it; ``HITL_UNDO_SECONDS`` (default 120)."""
    return int(settings.HITL_UNDO_SECONDS)


def _digest(text: str) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "chars": len(text)}


def may_comment(user: User, case: Case) -> bool:
    """Holder of a live claim, anyone who decided the case, officers and admins."""
    if user_role(user) in (COMPLIANCE_OFFICER, ADMIN):
        return True
    if holds_live_claim(case, user, timezone.now()):
        return True
    return Decision.objects.filter(case_id=case.pk, reviewer_id=user.pk).exists()


@transaction.atomic
def case_comment_add(*, author: User, case: Case, body: str) -> CaseComment:
    """Add a comment to a case (403 for someone who may not; 400 naming ``body`` when empty or too long)."""
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": ["Write something to comment."]})
    if len(body) > MAX_COMMENT_CHARS:
        raise ValidationError({"body": [f"At most {MAX_COMMENT_CHARS} characters."]})
    if "\x00" in body:
        raise ValidationError({"body": ["Text may not contain NUL characters."]})
    case = locked_case(case)
    if not may_comment(author, case):
        raise ReviewerNotAllowed("Only someone working on this case (or an officer) may comment on it.",
                                 code="not_allowed")
    in_round = (
        ReviewerProfile.objects.filter(user_id=author.pk).exists()
        and user_role(author) not in (COMPLIANCE_OFFICER, ADMIN)
    )
    comment = CaseComment.objects.create(
        case=case, author=author, round=case.review_round, by_round_reviewer=in_round, body=body
    )
    record_event(
        "case.commented", actor=author, obj=case, case_id=case.pk, system_id=case.system_id,
        data={"comment": comment.pk, "round": case.review_round, "text": _digest(body)},
    )
    return comment


@transaction.atomic
def claim_skip(*, reviewer: User, case: Case, reason: str) -> Case:
    """Hand a held case back with a reason; the skipper is not offered it again in this round (409 without a claim)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why you skip this case."]})
    if len(reason) > MAX_REASON_CHARS:
        raise ValidationError({"reason": [f"At most {MAX_REASON_CHARS} characters."]})
    case = hand_back(case=case, reviewer=reviewer)
    now = timezone.now()
    CaseSkip.objects.get_or_create(
        case=case, reviewer=reviewer, round=case.review_round, defaults={"reason": reason, "skipped_at": now}
    )
    record_event(
        "case.skipped", actor=reviewer, obj=case, case_id=case.pk, system_id=case.system_id, reason=reason,
        data={"round": case.review_round}, before={"status": CaseStatus.CLAIMED}, after={"status": case.status},
    )
    alert_if_nobody_can_take(case=case, actor=reviewer)
    return case


def undo_deadline(decision: Decision) -> Any:
    return decision.decided_at + timedelta(seconds=undo_seconds())


@transaction.atomic
def decision_undo(*, reviewer: User, decision: Decision) -> Case:
    """Withdraw one's own decision on a still-open case within the undo window; the case is theirs again.

    409 ``undo_window_passed`` after the window, ``not_open`` when the case is final,
    ``claimed`` when someone else holds it; 403 for someone else's decision.
    """
    case = locked_case(Case(pk=decision.case_id), related=("system",))
    decision = Decision.objects.select_for_update().filter(pk=decision.pk).first()  # type: ignore[assignment]
    if decision is None:
        raise ClaimConflict("This decision no longer exists.", code="not_found")
    if decision.reviewer_id != reviewer.pk:
        raise ReviewerNotAllowed("You can only undo your own decision.", code="not_allowed")
    now = timezone.now()
    if now > undo_deadline(decision):
        raise ClaimConflict(f"Decisions can be undone only within {undo_seconds()} seconds.",
                            code="undo_window_passed")
    if case.status not in (CaseStatus.QUEUED, CaseStatus.ESCALATED, CaseStatus.CLAIMED) or (
        decision.round != case.review_round
    ):
        raise ClaimConflict("The case is final (or moved on): the decision stands.", code="not_open")
    if case.status == CaseStatus.CLAIMED and case.lease_expires_at and case.lease_expires_at > now:
        raise ClaimConflict("Someone else is reviewing this case now: the decision stands.", code="claimed")
    before = {"status": case.status, "outcome": decision.outcome, "label": decision.label}
    withdrawn = {"decision": decision.pk, "outcome": decision.outcome, "label": decision.label,
                 "round": decision.round, "decided_at": decision.decided_at}
    profile = require_may_review(reviewer, case)
    decision._history_user = reviewer  # type: ignore[attr-defined]
    decision.delete()
    if not profile.adjudicator and case.pk in escalated_case_ids([case]):
        # Escalated for another reason meanwhile (a co-reviewer's verdict): only an adjudicator may
        # decide it now, so the decision stands (the transaction rolls the deletion back).
        raise ClaimConflict("The case was escalated meanwhile: your decision stands.", code="escalated")
    # The alerts its escalation raised no longer stand.
    CaseAlert.objects.filter(case_id=case.pk, round=case.review_round, resolved_at__isnull=True).update(
        resolved_at=now, resolved_by=reviewer
    )
    case.status = CaseStatus.CLAIMED
    case.claimed_by = reviewer
    case.claimed_at = now
    case.lease_expires_at = now + timedelta(seconds=lease_seconds())
    case._history_user = reviewer  # type: ignore[attr-defined]
    case.save(update_fields=CLAIM_FIELDS)
    record_event(
        "decision.undone", actor=reviewer, obj=case, case_id=case.pk, system_id=case.system_id,
        data=withdrawn, before=before, after={"status": case.status, "lease_expires_at": case.lease_expires_at},
    )
    return case
