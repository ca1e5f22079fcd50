"""The claim queue: leases on cases, handed out safely to many concurrent reviewers.

A claim is a lease (holder + expiry) committed at once: no row lock is ever held
while a person reviews. On PostgreSQL the claim locks the first claimable row with
``FOR NO KEY UPDATE SKIP LOCKED`` (the case row only), so concurrent reviewers
pass each other instead of queueing on one row. SQLite has no row locks: there the
claim is a conditional ``UPDATE`` (compare-and-set on the state just read) whose
row count says who won. Expired leases return to the queue through the
``expire_leases`` sweeper, and a claimant may take an expired claim over directly.

A claimed case does not store whether it was escalated before the claim; it is
derived from the decisions (``escalated_case_ids``), so releasing or expiring a
claim gives an escalated case back to the adjudicators.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection, connections, router, transaction
from django.db.models import Count, Q
from django.utils import timezone

from audit.services import bulk_record_events, record_event
from hitl_portal.actors import Actor, system_user
from hitl_portal.sql import RowShape, column_of, load_row, row_shape
from reviews.hooks import check_claim_gates, own_gold_case_ids, serve_before_queue
from reviews.models import (
    CLAIMABLE_STATUSES,
    AISystem,
    Case,
    CaseSkip,
    CaseStatus,
    Decision,
    DecisionOutcome,
    InterventionPoint,
    ReviewerProfile,
    ReviewerStatus,
    TrainingRecord,
)
from reviews.rules import is_escalated, require_standing
from reviews.selectors.people import lacking_trainings, missing_trainings
from reviews.selectors.queue import claimable_cases, points_in_queue_order
from reviews.services.common import history_date_field
from reviews.services.errors import ClaimConflict, ReviewerNotAllowed

CLAIM_FIELDS = ["status", "claimed_by", "claimed_at", "lease_expires_at"]
# Sweeper chunk: each chunk is its own short transaction.
EXPIRE_CHUNK = 100
# SQLite compare-and-set: candidates tried per read, and reads per claim.
CAS_CANDIDATES = 5
CAS_ROUNDS = 5
# PostgreSQL: expired escalated claims a non-adjudicator may hand back in one claim.
MAX_HANDBACKS = 50


def lease_seconds() -> int:
    """Lease length; ``HITL_LEASE_SECONDS`` (default 5 minutes)."""
    return int(settings.HITL_LEASE_SECONDS)


def max_hold_seconds() -> int:
    """Longest total hold of one claim through renewals; ``HITL_LEASE_MAX_HOLD_SECONDS`` (default 1 hour)."""
    return max(lease_seconds(), int(settings.HITL_LEASE_MAX_HOLD_SECONDS))


def _duration(seconds: int) -> str:
    return f"{seconds // 60} minutes" if seconds >= 120 else f"{seconds} seconds"


@dataclass(frozen=True)
class ReviewerScope:
    """What one reviewer may claim right now."""

    reviewer: User
    profile: ReviewerProfile
    system_ids: frozenset[int]
    # (point id, system id) of every intervention point of the reviewer's qualified systems,
    # in id order, when the scope read them (PostgreSQL: the same statement); None: not read.
    points: tuple[tuple[int, int], ...] | None = None

    def point_ids(self, system_id: int | None) -> list[int] | None:
        """The ids of the points in scope (of ``system_id`` only, when given), or None when not read."""
        if self.points is None:
            return None
        return [pk for pk, system in self.points
                if system in self.system_ids and (system_id is None or system == system_id)]

    @property
    def adjudicator(self) -> bool:
        return self.profile.adjudicator


def reviewer_scope(
    reviewer: User, *, system: AISystem | None = None, point: InterventionPoint | None = None
) -> ReviewerScope:
    """The reviewer's claim scope, or 403 when they may not claim at all (never a silent 204)."""
    read = _scope_read(reviewer) if connection.vendor == "postgresql" else None
    profile = read[0] if read is not None else ReviewerProfile.objects.filter(user_id=reviewer.pk).first()
    if profile is None:
        raise ReviewerNotAllowed("Only reviewers with a competence record may claim cases.", code="not_qualified")
    if not (profile.status == ReviewerStatus.ACTIVE and reviewer.is_active):
        # Say why: the reason recorded with the suspension (e.g. expired training, gold accuracy).
        reason = f" Reason: {profile.status_reason}" if profile.status_reason else ""
        raise ReviewerNotAllowed(f"Your reviewer account is suspended.{reason}", code="reviewer_suspended")
    if system is not None and point is not None and point.system_id != system.pk:
        raise ValidationError({"intervention_point": ["does not belong to the given system"]})
    if read is not None:
        system_ids = frozenset(read[1])
    else:
        system_ids = frozenset(profile.qualifications.values_list("id", flat=True))
    if not system_ids:
        raise ReviewerNotAllowed("You are not qualified for any AI system.", code="not_qualified")
    wanted = system.pk if system is not None else (point.system_id if point is not None else None)
    if wanted is not None and wanted not in system_ids:
        raise ReviewerNotAllowed("You are not qualified for this AI system.", code="not_qualified")
    # Art. 26(2): a system's cases only for reviewers holding its required trainings, valid today.
    if read is not None:
        required = {pk: kinds for pk, kinds in read[2].items() if wanted is None or pk == wanted}
        lacking = lacking_trainings(required, read[3])
    else:
        lacking = missing_trainings(profile.pk, [wanted] if wanted is not None else system_ids)
    if lacking:
        allowed = frozenset(system_ids - set(lacking))
        if wanted is not None or not allowed:
            raise ReviewerNotAllowed(training_required_message(lacking), code="training_required")
        system_ids = allowed
    return ReviewerScope(reviewer=reviewer, profile=profile, system_ids=system_ids,
                         points=read[4] if read is not None else None)


_ScopeRead = tuple[ReviewerProfile | None, list[int], dict[int, list[str] | None], list[tuple[str, int | None]],
                   tuple[tuple[int, int], ...]]


@functools.cache
def _scope_plan(alias: str) -> tuple[str, RowShape]:
    """The claim scope's one statement (PostgreSQL), built once per database."""
    qn = connections[alias].ops.quote_name
    shape = row_shape(alias, (ReviewerProfile, "rp"))
    through = ReviewerProfile.qualifications.through._meta
    q_table = qn(through.db_table)
    q_profile = qn(through.get_field("reviewerprofile").column)
    q_system = qn(through.get_field("aisystem").column)
    training = TrainingRecord._meta
    sql = (
        f"SELECT {shape.columns}, "
        f"ARRAY(SELECT q.{q_system} FROM {q_table} q WHERE q.{q_profile} = rp.{qn('id')}), "
        f"(SELECT json_agg(json_build_array(s.{qn('id')}, s.{qn(column_of(AISystem, 'required_trainings'))})) "
        f"FROM {qn(AISystem._meta.db_table)} s INNER JOIN {q_table} q ON q.{q_system} = s.{qn('id')} "
        f"WHERE q.{q_profile} = rp.{qn('id')}), "
        f"(SELECT json_agg(json_build_array(t.{qn(column_of(TrainingRecord, 'kind'))}, "
        f"t.{qn(column_of(TrainingRecord, 'system'))})) FROM {qn(training.db_table)} t "
        f"WHERE t.{qn(column_of(TrainingRecord, 'reviewer'))} = rp.{qn('id')} "
        f"AND (t.{qn(column_of(TrainingRecord, 'expires_at'))} IS NULL "
        f"OR t.{qn(column_of(TrainingRecord, 'expires_at'))} >= %s)), "
        # The points of the qualified systems: the claim's point list needs no query of its own.
        f"(SELECT json_agg(json_build_array(p.{qn('id')}, p.{qn(column_of(InterventionPoint, 'system'))}) "
        f"ORDER BY p.{qn('id')}) FROM {qn(InterventionPoint._meta.db_table)} p INNER JOIN {q_table} q "
        f"ON q.{q_system} = p.{qn(column_of(InterventionPoint, 'system'))} WHERE q.{q_profile} = rp.{qn('id')}) "
        f"FROM {qn(ReviewerProfile._meta.db_table)} rp WHERE rp.{qn(column_of(ReviewerProfile, 'user'))} = %s"
    )
    return sql, shape


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _scope_read(reviewer: User) -> _ScopeRead:
    """PostgreSQL: the profile, its qualifications, their required trainings, the reviewer's
    training records valid today and the qualified systems' intervention points, in one statement
    (``reviewer_scope``, ``missing_trainings`` and ``points_in_queue_order`` read the same in five)."""
    alias = router.db_for_read(ReviewerProfile)
    sql, shape = _scope_plan(alias)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [timezone.localdate(), reviewer.pk])
        raw = cursor.fetchone()
    if raw is None:
        return None, [], {}, [], ()
    (profile,), (qualified, required, valid, points) = load_row(shape, alias, raw)
    assert isinstance(profile, ReviewerProfile)
    required_by_system = {int(pk): _json(kinds) for pk, kinds in _json(required) or []}
    records = [(kind, system_id) for kind, system_id in _json(valid) or []]
    in_scope = tuple((int(pk), int(system_id)) for pk, system_id in _json(points) or [])
    return profile, list(qualified or []), required_by_system, records, in_scope


def training_required_message(lacking: dict[int, list[str]]) -> str:
    """Which training is missing for which system, in words a reviewer can act on."""
    names = dict(AISystem.objects.filter(pk__in=list(lacking)).values_list("pk", "name"))
    parts = [f"{names.get(system_id, system_id)}: {', '.join(kinds)}" for system_id, kinds in sorted(lacking.items())]
    return ("Required training missing or expired (Art. 4, Art. 26(2)): " + "; ".join(parts)
            + ". Ask a compliance officer to record your training.")


def require_may_review(reviewer: User, case: Case) -> ReviewerProfile:
    """A holder must still be an active reviewer qualified for the case's system to renew or decide."""
    profile = ReviewerProfile.objects.filter(user_id=reviewer.pk).first()
    require_standing(
        status=profile.status if profile is not None else None, user_active=reviewer.is_active,
        qualified=profile is not None and profile.qualifications.filter(pk=case.system_id).exists(),
    )
    assert profile is not None  # require_standing refused a missing profile
    return profile


def escalated_case_ids(cases: Iterable[Case]) -> set[int]:
    """Which of these open cases stand escalated (``reviews.rules.is_escalated`` on their round's decisions).

    Used when a claim ends, to give the case back with the right status.
    """
    escalated: set[int] = set()
    pending: dict[int, Case] = {}
    for case in cases:
        if is_escalated(review_round=case.review_round, sla_breached=case.sla_breached, decisions=0,
                        distinct_labels=0, escalations=0, reviewers_required=case.reviewers_required):
            escalated.add(case.pk)
        else:
            pending[case.pk] = case
    if pending:
        rows = (
            Decision.objects.filter(case_id__in=list(pending), round=1)
            .values("case_id")
            .annotate(
                n=Count("id"),
                verdicts=Count("label", distinct=True),
                escalations=Count("id", filter=Q(outcome=DecisionOutcome.ESCALATE)),
            )
            .order_by()
        )
        for row in rows:
            case = pending[row["case_id"]]
            if is_escalated(review_round=case.review_round, sla_breached=case.sla_breached, decisions=row["n"],
                            distinct_labels=row["verdicts"], escalations=row["escalations"],
                            reviewers_required=case.reviewers_required):
                escalated.add(case.pk)
    return escalated


def end_claim(case: Case, *, escalated: bool) -> None:
    """Put the case back in the queue (as escalated when it was), holder cleared. Caller saves."""
    case.status = CaseStatus.ESCALATED if escalated else CaseStatus.QUEUED
    case.claimed_by = None
    case.claimed_at = None
    case.lease_expires_at = None


def holds_live_claim(case: Case, reviewer: User, now: datetime) -> bool:
    return (
        case.status == CaseStatus.CLAIMED
        and case.claimed_by_id == reviewer.pk
        and case.lease_expires_at is not None
        and case.lease_expires_at > now
    )


def _expired_event(case: Case, *, holder: str | None, status: str, by: str, actor: Actor) -> dict[str, Any]:
    return dict(
        action="case.lease_expired", actor=actor, obj=case, case_id=case.pk, system_id=case.system_id,
        data={"previous_holder": holder, "detected_by": by, "round": case.review_round},
        before={"status": CaseStatus.CLAIMED}, after={"status": status},
    )


def claimed_event(case: Case, *, reviewer: User, from_status: str) -> dict[str, Any]:
    return dict(
        action="case.claimed", actor=reviewer, obj=case, case_id=case.pk, system_id=case.system_id,
        data={"lease_expires_at": case.lease_expires_at, "round": case.review_round},
        before={"status": from_status}, after={"status": CaseStatus.CLAIMED},
    )


def claim_next(
    *, reviewer: User, system: AISystem | None = None, point: InterventionPoint | None = None
) -> Case | None:
    """Claim the next case in queue order for ``reviewer``; ``None`` when nothing is claimable.

    Raises ``ReviewerNotAllowed`` (403 ``reviewer_suspended`` / ``not_qualified``)
    when the reviewer may not claim at all (suspending them first when their
    required training expired or their gold accuracy fell below the threshold).
    The returned case has its system and intervention point loaded (the claim
    payload needs them).
    """
    scope = reviewer_scope(reviewer, system=system, point=point)
    system_id = system.pk if system is not None else None
    point_id = point.pk if point is not None else None
    # Art. 4 / 26(2): expired required training or failing gold accuracy suspends now (403 reviewer_suspended).
    check_claim_gates(scope.profile)
    # Gold items mixed in at each point's gold_rate (and the reviewer's own open gold copies).
    gold = serve_before_queue(scope, system_id=system_id, point_id=point_id)
    if gold is not None:
        return gold
    if connection.features.has_select_for_update_skip_locked:
        return _claim_skip_locked(scope, system_id=system_id, point_id=point_id)
    return claim_by_conditional_update(scope=scope, system_id=system_id, point_id=point_id)


def _claim_skip_locked(scope: ReviewerScope, *, system_id: int | None, point_id: int | None) -> Case | None:
    """PostgreSQL: lock the first claimable row of the best point, skipping rows others hold locked."""
    now = timezone.now()
    if point_id is not None:
        point_ids = [point_id]
    else:
        point_ids = points_in_queue_order(
            reviewer_id=scope.reviewer.pk, system_ids=scope.system_ids, adjudicator=scope.adjudicator, now=now,
            system_id=system_id, point_ids=scope.point_ids(system_id),
        )
    for candidate_point in point_ids:
        case = _claim_in_point(scope, point_id=candidate_point, system_id=system_id)
        if case is not None:
            return case
    return None


# Compiling the gold hook's subquery once per process: a marker stands for the reviewer id.
_GOLD_MARKER = -0x5EED


@dataclass(frozen=True)
class _ClaimPlan:
    """The one-statement claim of one point's head (PostgreSQL), for adjudicators or not."""

    sql: str
    shape: RowShape
    # Parameters of the gold hooks' subqueries (the marker is replaced by the reviewer's id).
    gold_params: tuple[Any, ...]
    history_params: list[str]


_claim_plans: dict[tuple[str, bool, bool], _ClaimPlan] = {}


def _claim_plan(alias: str, *, adjudicator: bool, one_system: bool) -> _ClaimPlan:
    """``claimable_cases`` for one point, locked, leased and its history row copied, as one statement.

    The same conditions as ``reviews.selectors.queue.claimable_cases`` (kept side by
    side: a change there must be made here too; the queue tests run both), and the
    same history row as ``case.save(update_fields=CLAIM_FIELDS)`` writes.
    """
    key = (alias, adjudicator, one_system)
    plan = _claim_plans.get(key)
    if plan is not None:
        return plan
    from reviews.services.ingest import history_copy

    conn = connections[alias]
    qn = conn.ops.quote_name

    def col(model: type[Any], name: str) -> str:
        return qn(column_of(model, name))

    status, lease = col(Case, "status"), col(Case, "lease_expires_at")
    expired = f"(c.{status} = 'claimed' AND c.{lease} < %(now)s)"
    if adjudicator:
        wanted = f"(c.{status} = 'queued' OR c.{status} = 'escalated' OR {expired})"
    else:
        wanted = (f"(c.{status} = 'queued' OR ({expired} AND c.{col(Case, 'review_round')} = 1 "
                  f"AND NOT c.{col(Case, 'sla_breached')}))")
    gold_sql: list[str] = []
    gold_params: list[Any] = []
    for queryset in own_gold_case_ids(_GOLD_MARKER):
        query = queryset.query.clone()
        query.clear_ordering(force=True)  # as the ORM does for an ``IN`` subquery
        sql, params = query.get_compiler(alias).as_sql()
        # Positional placeholders become named ones (g0, g1, ...): the statement's are named.
        for value in params:
            sql = sql.replace("%s", f"%(g{len(gold_params)})s", 1)
            gold_params.append(value)
        gold_sql.append(f"c.{qn('id')} IN ({sql})")
    not_gold_or_own = " OR ".join([f"NOT c.{col(Case, 'is_gold')}", *gold_sql])
    decision, skip = Decision._meta, CaseSkip._meta
    table = qn(Case._meta.db_table)
    copy = history_copy(Case, alias)
    shape = row_shape(alias, (Case, "c"), (AISystem, "s"), (InterventionPoint, "p"))
    statuses = ", ".join(f"'{value}'" for value in CLAIMABLE_STATUSES)
    history_sql = copy.sql
    for index in range(len(copy.params)):
        history_sql = history_sql.replace("%s", f"%(h{index})s", 1)
    sql = (
        f"WITH head AS (SELECT c.{qn('id')}, c.{status} FROM {table} c "
        f"WHERE c.{status} IN ({statuses}) AND {wanted} "
        f"AND c.{col(Case, 'system')} = ANY(%(system_ids)s) "
        + (f"AND c.{col(Case, 'system')} = %(system_id)s " if one_system else "")
        + f"AND c.{col(Case, 'intervention_point')} = %(point_id)s "
        f"AND ({not_gold_or_own}) "
        f"AND NOT EXISTS (SELECT 1 FROM {qn(decision.db_table)} d WHERE d.{col(Decision, 'case')} = c.{qn('id')} "
        f"AND d.{col(Decision, 'reviewer')} = %(me)s) "
        f"AND NOT EXISTS (SELECT 1 FROM {qn(skip.db_table)} k WHERE k.{col(CaseSkip, 'case')} = c.{qn('id')} "
        f"AND k.{col(CaseSkip, 'reviewer')} = %(me)s AND k.{col(CaseSkip, 'round')} = c.{col(Case, 'review_round')}) "
        f"ORDER BY c.{col(Case, 'sla_deadline')} ASC NULLS LAST, c.{col(Case, 'received_at')} ASC, c.{qn('id')} ASC "
        f"LIMIT 1 FOR NO KEY UPDATE OF c SKIP LOCKED), "
        f"leased AS (UPDATE {table} c SET {status} = 'claimed', {col(Case, 'claimed_by')} = %(me)s, "
        f"{col(Case, 'claimed_at')} = %(now)s, {lease} = %(until)s FROM head "
        f"WHERE c.{qn('id')} = head.{qn('id')} AND head.{status} <> 'claimed' RETURNING c.*), "
        f"hist AS ({history_sql} FROM leased src) "
        f"SELECT head.{qn('id')}, head.{status}, {shape.columns} FROM head "
        f"LEFT JOIN leased c ON c.{qn('id')} = head.{qn('id')} "
        f"LEFT JOIN {qn(AISystem._meta.db_table)} s ON s.{qn('id')} = c.{col(Case, 'system')} "
        f"LEFT JOIN {qn(InterventionPoint._meta.db_table)} p ON p.{qn('id')} = c.{col(Case, 'intervention_point')}"
    )
    plan = _ClaimPlan(sql=sql, shape=shape, gold_params=tuple(gold_params), history_params=copy.params)
    _claim_plans[key] = plan
    return plan


def _claim_one_statement(scope: ReviewerScope, *, point_id: int, system_id: int | None,
                         now: datetime) -> tuple[Case | None, str | None]:
    """PostgreSQL: lock the head of the point's queue and, unless it is an expired claim, lease it
    and write its history row, in one statement. Call inside a transaction.

    Returns ``(leased case, its previous status)``; ``(None, "claimed")`` when the head
    is an expired claim (locked now, for the takeover path); ``(None, None)`` when the
    point has nothing claimable for this reviewer.
    """
    alias = router.db_for_write(Case)
    conn = connections[alias]
    reviewer = scope.reviewer
    plan = _claim_plan(alias, adjudicator=scope.adjudicator, one_system=system_id is not None)
    # Named parameters throughout, the gold hooks' positional ones spliced in by name.
    params: dict[str, Any] = {
        "now": now, "until": now + timedelta(seconds=lease_seconds()), "me": reviewer.pk,
        "system_ids": sorted(scope.system_ids), "system_id": system_id, "point_id": point_id,
    }
    history_date = history_date_field(Case)
    own = {"history_date": history_date.get_db_prep_save(now, conn), "history_type": "~",
           "history_user_id": reviewer.pk, "history_change_reason": None}
    for index, value in enumerate(plan.gold_params):
        params[f"g{index}"] = reviewer.pk if value == _GOLD_MARKER else value
    for index, name in enumerate(plan.history_params):
        params[f"h{index}"] = own[name]
    with conn.cursor() as cursor:
        cursor.execute(plan.sql, params)
        raw = cursor.fetchone()
    if raw is None:
        return None, None
    head_status = raw[1]
    if head_status == CaseStatus.CLAIMED:
        return None, head_status
    (case, system, point), _ = load_row(plan.shape, alias, raw[2:])
    assert isinstance(case, Case)
    case.system = system  # type: ignore[assignment]
    case.intervention_point = point  # type: ignore[assignment]
    case.claimed_by = reviewer
    return case, head_status


def _claim_in_point(scope: ReviewerScope, *, point_id: int, system_id: int | None = None) -> Case | None:
    """Lock and lease the head of one intervention point's queue (the partial index serves it in order)."""
    reviewer = scope.reviewer
    with transaction.atomic():
        now = timezone.now()
        if connection.vendor == "postgresql" and settings.SIMPLE_HISTORY_ENABLED:
            case, from_status = _claim_one_statement(scope, point_id=point_id, system_id=system_id, now=now)
            if case is not None:
                assert from_status is not None
                bulk_record_events([claimed_event(case, reviewer=reviewer, from_status=from_status)])
                case.claimed_from = from_status
                return case
            if from_status is None:
                return None
            # The head is an expired claim, now locked by this transaction: the takeover path below.
        queryset = (
            claimable_cases(
                reviewer_id=reviewer.pk, system_ids=scope.system_ids, adjudicator=scope.adjudicator, now=now,
                point_id=point_id,
            )
            .select_related("system", "intervention_point")
            .select_for_update(skip_locked=True, no_key=True, of=("self",))
        )
        events: list[dict[str, Any]] = []
        for _ in range(MAX_HANDBACKS):
            # Evaluated here, inside the transaction: the row is locked only now.
            case = queryset.first()
            if case is None:
                if events:
                    bulk_record_events(events)
                return None
            from_status = case.status
            if from_status == CaseStatus.CLAIMED:
                escalated = case.pk in escalated_case_ids([case])
                holder = case.claimed_by.get_username() if case.claimed_by else None
                if escalated and not scope.adjudicator:
                    # Not ours to take: hand the expired claim back to the adjudicators and look further.
                    end_claim(case, escalated=True)
                    case._history_user = system_user()  # type: ignore[attr-defined]
                    case.save(update_fields=CLAIM_FIELDS)
                    events.append(_expired_event(case, holder=holder, status=case.status, by="claim", actor=None))
                    continue
                events.append(_expired_event(
                    case, holder=holder, by="claim", actor=None,
                    status=CaseStatus.ESCALATED if escalated else CaseStatus.QUEUED,
                ))
            case.status = CaseStatus.CLAIMED
            case.claimed_by = reviewer
            case.claimed_at = now
            case.lease_expires_at = now + timedelta(seconds=lease_seconds())
            case._history_user = reviewer  # type: ignore[attr-defined]
            case.save(update_fields=CLAIM_FIELDS)
            events.append(claimed_event(case, reviewer=reviewer, from_status=from_status))
            bulk_record_events(events)
            return case
        bulk_record_events(events)
        return None


def claim_by_conditional_update(
    *, scope: ReviewerScope, system_id: int | None = None, point_id: int | None = None
) -> Case | None:
    """Claim without row locks (SQLite): compare-and-set on the state just read.

    Reads a few candidates, then for each tries ``UPDATE … WHERE id = … AND`` the
    row is still in the state read and still claimable; a row count of 1 means
    this claimant won. ``QuerySet.update`` writes no history, so the history row is
    written explicitly.
    """
    reviewer = scope.reviewer
    for _ in range(CAS_ROUNDS):
        with transaction.atomic():
            now = timezone.now()
            candidates = list(
                claimable_cases(
                    reviewer_id=reviewer.pk, system_ids=scope.system_ids, adjudicator=scope.adjudicator, now=now,
                    system_id=system_id, point_id=point_id,
                ).select_related("system", "intervention_point", "claimed_by")[:CAS_CANDIDATES]
            )
            if not candidates:
                return None
            case = claim_first_of(scope, candidates, now=now)
            if case is not None:
                return case
    return None


def claim_first_of(scope: ReviewerScope, candidates: list[Case], *, now: datetime) -> Case | None:
    """Compare-and-set claim of the first of ``candidates`` still in the state read; the one CAS of the queue.

    For each candidate: ``UPDATE … WHERE id = … AND`` the row is still in the state
    read and still claimable; a row count of 1 means this claimant won. Used by the
    SQLite claim and by the gold copies' claim (quality). ``QuerySet.update`` writes
    no history, so the history row is written explicitly, with the same events as
    any claim. Call inside a transaction; the candidates carry ``claimed_by``.
    """
    reviewer = scope.reviewer
    escalated = escalated_case_ids([c for c in candidates if c.status == CaseStatus.CLAIMED])
    for case in candidates:
        from_status = case.status
        if from_status == CaseStatus.CLAIMED and case.pk in escalated and not scope.adjudicator:
            continue  # the sweeper gives it back to the adjudicators
        still_claimable = Q(status__in=[CaseStatus.QUEUED, CaseStatus.ESCALATED]) | Q(
            status=CaseStatus.CLAIMED, lease_expires_at__lt=now
        )
        lease_expires_at = now + timedelta(seconds=lease_seconds())
        won = (
            Case.objects.filter(
                still_claimable,
                pk=case.pk,
                status=from_status,
                claimed_by_id=case.claimed_by_id,
                lease_expires_at=case.lease_expires_at,
            ).update(
                status=CaseStatus.CLAIMED, claimed_by=reviewer, claimed_at=now,
                lease_expires_at=lease_expires_at,
            )
            == 1
        )
        if not won:
            continue  # another claimant changed the row since it was read
        holder = case.claimed_by.get_username() if case.claimed_by else None
        case.status = CaseStatus.CLAIMED
        case.claimed_by = reviewer
        case.claimed_at = now
        case.lease_expires_at = lease_expires_at
        Case.history.bulk_history_create([case], update=True, default_user=reviewer)
        events: list[dict[str, Any]] = []
        if from_status == CaseStatus.CLAIMED:
            events.append(_expired_event(
                case, holder=holder, by="claim", actor=None,
                status=CaseStatus.ESCALATED if case.pk in escalated else CaseStatus.QUEUED,
            ))
        events.append(claimed_event(case, reviewer=reviewer, from_status=from_status))
        bulk_record_events(events)
        return case
    return None


def locked_case(case: Case, *, related: tuple[str, ...] = ()) -> Case:
    """Re-read the case under a row lock (blocking: a holder's own action must not be skipped)."""
    queryset = Case.objects.select_for_update(no_key=True, of=("self",))
    if related:
        queryset = queryset.select_related(*related)
    locked = queryset.filter(pk=case.pk).first()
    if locked is None:
        raise ClaimConflict("The case no longer exists.", code="not_found")
    return locked


@transaction.atomic
def claim_renew(*, reviewer: User, case: Case) -> Case:
    """Extend the holder's live lease by a full lease length (409 without a live claim).

    Bounded by the maximum total hold (``HITL_LEASE_MAX_HOLD_SECONDS`` after the
    claim): the workbench renews while the reviewer is active, but nobody keeps a
    case from the queue for ever. At the bound, 409 ``max_hold_reached``.
    """
    case = locked_case(case)
    now = timezone.now()
    if not holds_live_claim(case, reviewer, now):
        raise ClaimConflict("You hold no live claim on this case.")
    require_may_review(reviewer, case)
    before = case.lease_expires_at
    renewed = now + timedelta(seconds=lease_seconds())
    if case.claimed_at is not None:
        renewed = min(renewed, case.claimed_at + timedelta(seconds=max_hold_seconds()))
    if before is not None and renewed <= before:
        raise ClaimConflict(
            f"You have held this case for the maximum time ({_duration(max_hold_seconds())}): decide, "
            "skip or release it before the lease ends.",
            code="max_hold_reached",
        )
    case.lease_expires_at = renewed
    case._history_user = reviewer  # type: ignore[attr-defined]
    case.save(update_fields=["lease_expires_at"])
    record_event(
        "case.lease_renewed", actor=reviewer, obj=case, case_id=case.pk, system_id=case.system_id,
        before={"lease_expires_at": before}, after={"lease_expires_at": case.lease_expires_at},
    )
    return case


def hand_back(*, case: Case, reviewer: User) -> Case:
    """End the reviewer's live claim (409 without one): back to the queue, as escalated when it stands so.

    The shared step of a release and a skip; the caller is in a transaction and records its event.
    """
    case = locked_case(case)
    if not holds_live_claim(case, reviewer, timezone.now()):
        raise ClaimConflict("You hold no live claim on this case.")
    end_claim(case, escalated=case.pk in escalated_case_ids([case]))
    case._history_user = reviewer  # type: ignore[attr-defined]
    case.save(update_fields=CLAIM_FIELDS)
    return case


@transaction.atomic
def claim_release(*, reviewer: User, case: Case) -> Case:
    """Give a held case back to the queue (as escalated when it was); 409 without a live claim.

    Allowed to a suspended holder too: handing work back is always welcome.
    """
    case = hand_back(case=case, reviewer=reviewer)
    record_event(
        "case.released", actor=reviewer, obj=case, case_id=case.pk, system_id=case.system_id,
        data={"round": case.review_round},
        before={"status": CaseStatus.CLAIMED}, after={"status": case.status},
    )
    return case


def expire_leases(*, now: datetime | None = None) -> int:
    """Return every case whose lease expired to the queue; returns how many.

    Chunked (each chunk a short transaction), idempotent, and safe beside
    claimants: on PostgreSQL rows a claimant holds locked are skipped (the next
    run sees them again if still expired). Acts as the system actor.
    """
    now = now or timezone.now()
    actor = system_user()
    total = 0
    while True:
        with transaction.atomic():
            queryset = (
                Case.objects.filter(status=CaseStatus.CLAIMED, lease_expires_at__lt=now)
                .select_related("claimed_by")
                .order_by("lease_expires_at", "id")
            )
            if connection.features.has_select_for_update_skip_locked:
                queryset = queryset.select_for_update(skip_locked=True, no_key=True, of=("self",))
            batch = list(queryset[:EXPIRE_CHUNK])
            if not batch:
                return total
            escalated = escalated_case_ids(batch)
            events = []
            for case in batch:
                holder = case.claimed_by.get_username() if case.claimed_by else None
                end_claim(case, escalated=case.pk in escalated)
                case._history_user = actor  # type: ignore[attr-defined]
                case.save(update_fields=CLAIM_FIELDS)
                events.append(_expired_event(case, holder=holder, status=case.status, by="sweeper", actor=actor))
            bulk_record_events(events)
        total += len(batch)
        if len(batch) < EXPIRE_CHUNK:
            return total


@transaction.atomic
def case_reassign(*, actor: Actor, case: Case, reviewer: User | None = None, reason: str) -> Case:
    """An administrator hands an open case to a reviewer, or takes a held case back to the queue.

    ``reviewer=None`` unassigns: the holder's claim ends and the case returns to the
    queue (as escalated when it stood escalated). Otherwise the reviewer gets the
    case under a fresh lease, on the same conditions as a claim: an active reviewer
    qualified for the system, an adjudicator for an escalated case, and not one who
    already decided it (in any round). Audited as ``case.reassigned`` with the reason.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["A reason is required to reassign a case."]})
    case = locked_case(case, related=("claimed_by",))
    if case.status not in (CaseStatus.QUEUED, CaseStatus.ESCALATED, CaseStatus.CLAIMED):
        raise ClaimConflict("Only an open case (queued, escalated or claimed) can be reassigned.", code="not_open")
    escalated = case.status == CaseStatus.ESCALATED or (
        case.status == CaseStatus.CLAIMED and case.pk in escalated_case_ids([case])
    )
    now = timezone.now()
    before = {
        "status": case.status,
        "claimed_by": case.claimed_by.get_username() if case.claimed_by is not None else None,
        "lease_expires_at": case.lease_expires_at,
    }
    if reviewer is None:
        if case.status != CaseStatus.CLAIMED:
            raise ClaimConflict("Nobody holds this case.", code="not_claimed")
        end_claim(case, escalated=escalated)
    else:
        profile = require_may_review(reviewer, case)
        if escalated and not profile.adjudicator:
            raise ReviewerNotAllowed("Only an adjudicator may take an escalated case.", code="adjudicator_required")
        if holds_live_claim(case, reviewer, now):
            raise ValidationError({"reviewer": ["This reviewer already holds the case."]})
        if Decision.objects.filter(case_id=case.pk, reviewer_id=reviewer.pk).exists():
            # Escalations always resolve: never back to whoever escalated or decided it before.
            raise ValidationError({"reviewer": ["This reviewer already decided this case."]})
        case.status = CaseStatus.CLAIMED
        case.claimed_by = reviewer
        case.claimed_at = now
        case.lease_expires_at = now + timedelta(seconds=lease_seconds())
    case._history_user = actor  # type: ignore[attr-defined]
    case.save(update_fields=CLAIM_FIELDS)
    record_event(
        "case.reassigned", actor=actor, obj=case, case_id=case.pk, system_id=case.system_id, reason=reason,
        data={"round": case.review_round, "escalated": escalated},
        before=before,
        after={
            "status": case.status,
            "claimed_by": reviewer.get_username() if reviewer is not None else None,
            "lease_expires_at": case.lease_expires_at,
        },
    )
    return case
