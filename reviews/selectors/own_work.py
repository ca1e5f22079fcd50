"""Reads of a reviewer's own work: their decisions, the case as they saw it, comments they may read, skips."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from hitl_portal.roles import ADMIN, COMPLIANCE_OFFICER, user_role
from reviews.models import OPEN_STATUSES, Case, CaseComment, CaseSkip, CaseStatus, Decision

# What the "My decisions" list shows and ``undoable`` reads. The case's input, explanation
# and payload (kilobytes to megabytes for rich content) and the system's and point's
# configuration (a dozen JSON columns) are not shown: fetching and decoding them for
# 50 rows was most of the page's database and Python time at a million cases (issue 15).
MY_DECISIONS_COLUMNS = (
    "id", "case_id", "reviewer_id", "round", "outcome", "label", "decided_at",
    "case__id", "case__status", "case__review_round", "case__lease_expires_at", "case__claimed_by_id",
    "case__system__id", "case__system__name", "case__intervention_point__id", "case__intervention_point__name",
)


def my_decisions(*, reviewer: User) -> QuerySet[Decision]:
    """The reviewer's own decisions (never anyone else's), newest first, with the columns the list shows."""
    return (
        Decision.objects.filter(reviewer_id=reviewer.pk)
        .select_related("case", "case__system", "case__intervention_point")
        .only(*MY_DECISIONS_COLUMNS)
        .order_by("-decided_at", "-id")
    )


def own_decisions_on(*, reviewer: User, case: Case) -> list[Decision]:
    return list(Decision.objects.filter(case_id=case.pk, reviewer_id=reviewer.pk).order_by("round", "decided_at"))


def skip_count(*, reviewer: User) -> int:
    return CaseSkip.objects.filter(reviewer_id=reviewer.pk).count()


def undoable(decision: Decision, *, case: Case | None = None) -> bool:
    """Page hint (the undo service decides): own decision, within the window, case still open in that round."""
    from reviews.services.own_work import undo_deadline

    case = case or decision.case
    now = timezone.now()
    if now > undo_deadline(decision) or decision.round != case.review_round:
        return False
    if case.status not in OPEN_STATUSES:
        return False
    live_other = (
        case.status == CaseStatus.CLAIMED and case.lease_expires_at is not None and case.lease_expires_at > now
        and case.claimed_by_id != decision.reviewer_id
    )
    return not live_other


def in_blind_phase(case: Case) -> bool:
    """An open case whose current round's reviewers still decide independently (not escalated)."""
    if case.status not in OPEN_STATUSES or case.status == CaseStatus.ESCALATED:
        return False
    # Late import: the derivation of "escalated" lives with the queue service (one rule).
    from reviews.services.queue import escalated_case_ids

    return case.pk not in escalated_case_ids([case])


def comments_visible_to(viewer: User, case: Case) -> list[CaseComment]:
    """The comments on ``case`` that ``viewer`` may read, oldest first.

    Officers and admins read all. A reviewer in the blind phase of a case (open, not
    escalated) who has not decided in the current round does not see comments by the
    round's other reviewers: they could carry a verdict.
    """
    comments = CaseComment.objects.filter(case_id=case.pk).select_related("author").order_by("created_at", "id")
    if user_role(viewer) in (COMPLIANCE_OFFICER, ADMIN):
        return list(comments)
    decided_now = Decision.objects.filter(case_id=case.pk, reviewer_id=viewer.pk, round=case.review_round).exists()
    if not decided_now and in_blind_phase(case):
        comments = comments.exclude(Q(by_round_reviewer=True, round=case.review_round) & ~Q(author_id=viewer.pk))
    return list(comments)


def comment_rows(comments: list[CaseComment]) -> list[dict[str, Any]]:
    return [{"author": c.author.get_username(), "body": c.body, "at": c.created_at} for c in comments]
