"""Reads of the review queue: what a reviewer may claim, what they hold, what they decided.

``claimable_cases`` is the one definition of "claimable by this reviewer"; the
claim service locks from it and the overview counts from it, so the page and the
queue never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from reviews.hooks import own_gold_case_ids
from reviews.models import (
    CLAIMABLE_STATUSES,
    AISystem,
    Case,
    CaseSkip,
    CaseStatus,
    Decision,
    InterventionPoint,
    ReviewerProfile,
)

# Routing reasons that would tell a blind reviewer what the AI predicted
# ("always_review_label" names the AI's label set, "confidence_below" its doubt).
REASONS_HIDDEN_WHEN_BLIND = frozenset({"confidence_below", "always_review_label"})


def queue_order() -> list[Any]:
    """The contract's queue order: earliest SLA deadline first (none last), then earliest received.

    Matches the column order of the partial index ``case_claimable_idx``.
    """
    return [F("sla_deadline").asc(nulls_last=True), "received_at", "id"]


def claimable_cases(
    *,
    reviewer_id: int,
    system_ids: frozenset[int] | set[int] | list[int],
    adjudicator: bool,
    now: datetime,
    system_id: int | None = None,
    point_id: int | None = None,
) -> QuerySet[Case]:
    """Open cases this reviewer could be handed now, in queue order.

    Queued cases of the reviewer's systems; escalated ones only for adjudicators;
    claimed ones only once their lease expired (the compare-and-set takeover). A
    non-adjudicator never takes over an expired claim that is escalated for a
    reason visible on the row (a reopened or SLA-escalated case); escalations
    derived from decisions are checked on the locked row by the claim service.
    Cases the reviewer already decided (in any round) or skipped in this round are left out.

    Gold items never enter a queue as themselves: only the copies served to this
    reviewer (registered by the quality app, ``reviews.hooks``) are claimable by
    them, and by nobody else.
    """
    expired = Q(status=CaseStatus.CLAIMED, lease_expires_at__lt=now)
    if adjudicator:
        wanted = Q(status=CaseStatus.QUEUED) | Q(status=CaseStatus.ESCALATED) | expired
    else:
        wanted = Q(status=CaseStatus.QUEUED) | (expired & Q(review_round=1, sla_breached=False))
    # Escalations always resolve (issue 12): nobody decides a case twice, in any round, so an
    # escalation never returns to whoever escalated it or decided it before; and a reviewer who
    # skipped the case is not offered it again in that round.
    already_decided = Decision.objects.filter(case_id=OuterRef("pk"), reviewer_id=reviewer_id)
    skipped = CaseSkip.objects.filter(case_id=OuterRef("pk"), reviewer_id=reviewer_id, round=OuterRef("review_round"))
    # The explicit status__in lets PostgreSQL prove the partial index's condition.
    queryset = Case.objects.filter(status__in=CLAIMABLE_STATUSES).filter(wanted).filter(system_id__in=system_ids)
    if system_id is not None:
        queryset = queryset.filter(system_id=system_id)
    if point_id is not None:
        queryset = queryset.filter(intervention_point_id=point_id)
    not_gold_or_own = Q(is_gold=False)
    for own_gold in own_gold_case_ids(reviewer_id):
        not_gold_or_own |= Q(pk__in=own_gold)
    queryset = queryset.filter(not_gold_or_own)
    return queryset.filter(~Exists(already_decided), ~Exists(skipped)).order_by(*queue_order())


def points_in_queue_order(
    *,
    reviewer_id: int,
    system_ids: frozenset[int] | set[int] | list[int],
    adjudicator: bool,
    now: datetime,
    system_id: int | None = None,
    point_ids: list[int] | None = None,
) -> list[int]:
    """The reviewer's intervention points with claimable work, best queue head first.

    ``point_ids``: the points of ``system_ids`` (of ``system_id`` only, when given) in id
    order, when the caller has already read them (the claim's scope statement does).

    The partial index leads with the intervention point, so one point's queue is
    read in index order and stops at its head; ordering the whole queue across
    points in one query would sort every open case on each claim. So the heads
    (unlocked, one row per point, in one UNION ALL query) pick the point, and the
    claim then locks within that point. The order between points is as of this
    read: SKIP LOCKED gives no strict FIFO anyway.
    """
    if point_ids is None:
        points = InterventionPoint.objects.filter(system_id__in=system_ids)
        if system_id is not None:
            points = points.filter(system_id=system_id)
        point_ids = list(points.order_by("id").values_list("id", flat=True))
    if len(point_ids) <= 1:
        return point_ids
    heads = [
        claimable_cases(
            reviewer_id=reviewer_id, system_ids=system_ids, adjudicator=adjudicator, now=now, point_id=point_id
        ).values_list("sla_deadline", "received_at", "id", "intervention_point_id")[:1]
        for point_id in point_ids
    ]
    rows = list(heads[0].union(*heads[1:], all=True))
    # NULLS LAST on the deadline, as in queue_order().
    rows.sort(key=lambda row: (row[0] is None, row[0] or row[1], row[1], row[2]))
    return [row[3] for row in rows]


def reviewer_profile_of(user: User) -> ReviewerProfile | None:
    return ReviewerProfile.objects.filter(user_id=user.pk).first()


def queue_overview(
    *, reviewer: User, profile: ReviewerProfile | None = None, system_ids: set[int] | None = None
) -> list[dict[str, Any]]:
    """Per intervention point the reviewer may work: claimable count and the oldest waiting case.

    Empty for a suspended reviewer or one without qualifications (they can claim nothing).
    A caller that has read the reviewer's profile (with its user) and qualified systems
    already passes them in, saving the round trips.
    """
    profile = profile or ReviewerProfile.objects.select_related("user").filter(user_id=reviewer.pk).first()
    if profile is None or not profile.is_active_reviewer:
        return []
    if system_ids is None:
        system_ids = set(profile.qualifications.values_list("id", flat=True))
    if not system_ids:
        return []
    points = list(
        InterventionPoint.objects.filter(system_id__in=system_ids)
        .select_related("system")
        .order_by("system__slug", "slug")
    )
    counts = {
        row["intervention_point_id"]: row
        for row in claimable_cases(
            reviewer_id=reviewer.pk, system_ids=system_ids, adjudicator=profile.adjudicator, now=timezone.now()
        )
        .order_by()
        .values("intervention_point_id")
        .annotate(claimable=Count("id"), oldest_received_at=Min("received_at"))
    }
    overview = []
    for point in points:
        row: Mapping[str, Any] = counts.get(point.pk, {})
        overview.append(
            {
                "system": point.system.slug,
                "system_name": point.system.name,
                "system_status": point.system.status,
                "point": point.slug,
                "point_name": point.name,
                "stage": point.stage,
                "claimable": row.get("claimable", 0),
                "oldest_received_at": row.get("oldest_received_at"),
            }
        )
    return overview


def recent_decisions(*, reviewer: User, limit: int = 20) -> QuerySet[Decision]:
    """The reviewer's own latest decisions (never anyone else's), newest first."""
    return (
        Decision.objects.filter(reviewer_id=reviewer.pk)
        .select_related("case", "case__system", "case__intervention_point")
        .order_by("-decided_at", "-id")[:limit]
    )


def is_served_blind(case: Case) -> bool:
    """Blind: the AI suggestion is hidden (sampled blind, or a labeling case without prediction)."""
    return bool(case.blind) or case.prediction_label is None


def claim_payload(case: Case) -> dict[str, Any]:
    """The claim response's ``case`` object: what a reviewer needs to decide, and nothing more.

    No other reviewer's decision, no gold marker, no ground truth; no prediction
    (and no routing reason that gives it away) when the case is served blind.
    """
    system: AISystem = case.system
    point: InterventionPoint = case.intervention_point
    blind = is_served_blind(case)
    reasons = list(case.routing_reasons or [])
    if blind:
        reasons = [reason for reason in reasons if reason not in REASONS_HIDDEN_WHEN_BLIND]
    prediction = None
    if not blind:
        prediction = {
            "label": case.prediction_label,
            "confidence": case.prediction_confidence,
            "model_version": case.model_version,
        }
        if case.explanation:
            prediction["explanation"] = case.explanation
    return {
        # No external id and no received time: a reviewer never needs them, and a gold copy
        # (made at claim time, with an id of its own) would give itself away by them.
        "id": case.pk,
        "system": system.slug,
        "intervention_point": point.slug,
        "stage": point.stage,
        "input": case.input,
        "prediction": prediction,
        "routing": {"routed": case.routed, "reasons": reasons, "rules_version": case.rules_version},
        "labels": list(system.labels),
        "guidelines": point.guidelines,
        "display": list(point.display or []),
        "decision_fields": list(point.decision_fields or []),
        "sla_deadline": case.sla_deadline,
    }


def live_claim_of(*, reviewer: User) -> Case | None:
    """The case the reviewer holds under a live lease (the latest claimed), if any."""
    return (
        Case.objects.filter(status=CaseStatus.CLAIMED, claimed_by_id=reviewer.pk, lease_expires_at__gt=timezone.now())
        .select_related("system", "intervention_point")
        .order_by("-claimed_at", "-id")
        .first()
    )
