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
  escalated case. Nobody decides a case twice (in any round): an escalation goes
  to another adjudicator, or, when none is eligible, to the compliance officers
  with an alert (``reviews.services.escalations``).

Cost (the decide request is half of every review cycle): one locked read brings
the case, its system and point, the reviewer's standing (profile status,
adjudicator flag, qualification for the system) and whether the round already has
decisions; the round's verdicts are read only when it has some. Then the writes:
on PostgreSQL one statement inserts the decision, updates the case and copies
both rows as stored into their history tables (data-modifying CTEs); elsewhere
four statements do the same. Then the audit events. Both statements are built
once per process from the models' metadata: compiling the equivalent ORM queries
cost more CPU than running them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connections, models, router, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from audit.services import bulk_record_events, record_event
from hitl_portal.errors import Conflict
from hitl_portal.sql import RowShape, column_of, concrete_field, field_column, load_row, row_shape
from reviews.content import clean_form_values
from reviews.models import (
    CLASSIFICATION_OUTCOMES,
    AISystem,
    Case,
    CaseKind,
    CaseStatus,
    Decision,
    DecisionOutcome,
    InterventionPoint,
    Resolution,
    ReviewerProfile,
)
from reviews.rules import is_escalated, require_standing
from reviews.selectors.queue import is_served_blind
from reviews.services.common import history_date_field
from reviews.services.errors import ClaimConflict, ReviewerNotAllowed
from reviews.services.escalations import alert_if_nobody_can_take
from reviews.services.ingest import history_copy, insert_plan, prepared_row
from reviews.services.queue import CLAIM_FIELDS, end_claim, holds_live_claim, locked_case

CLOSE_FIELDS = ["resolution", "final_label", "decided_at"]
MAX_TIME_SPENT_MS = 2**31 - 1
MAX_PK = 2**63 - 1
# Read with the case but not needed to decide it (personal data, possibly large):
# left deferred, loaded only if something asks.
_DEFERRED_CASE_FIELDS = frozenset(("input", "subject", "explanation"))


def enqueue_decided_webhooks(cases: list[Case]) -> None:
    """Queue the ``case.decided`` webhooks in the deciding transaction (sent after commit).

    Imported late: the webhook module renders the case representation, which
    reads decisions; a top-level import would tie the modules in a cycle.
    """
    if not cases:
        return
    from reviews.services.waiting import notify_decided
    from reviews.services.webhooks import webhooks_enqueue

    webhooks_enqueue(cases=cases)
    # Agents long-polling /wait/ learn of the decision once it is committed.
    notify_decided([case.pk for case in cases])


def _text_digest(text: str) -> dict[str, Any]:
    """A rationale is referred to by hash in the audit trail (it may mention the data subject)."""
    return {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "chars": len(text)}


def resolve_outcome(case: Case, *, outcome: str | None, label: str | None, rationale: str) -> tuple[str, str | None]:
    """Validate a verdict against the case and return ``(outcome, label the verdict stands for)``.

    For ``approve`` the label is the AI label, so decisions compare by label.
    """
    labels = list(case.system.labels)
    ai_label = case.prediction_label
    if outcome is not None and outcome not in CLASSIFICATION_OUTCOMES:
        raise ValidationError({"outcome": [f"must be one of: {', '.join(CLASSIFICATION_OUTCOMES)}"]})
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


@dataclass(frozen=True)
class _ReadPlan:
    sql: str
    shape: RowShape


_read_plans: dict[str, _ReadPlan] = {}


def _read_plan(alias: str) -> _ReadPlan:
    """The decision's locked read (see ``_locked_for_decision``), built once per database."""
    plan = _read_plans.get(alias)
    if plan is not None:
        return plan
    conn = connections[alias]
    qn = conn.ops.quote_name
    shape = row_shape(alias, (Case, "c", _DEFERRED_CASE_FIELDS), (AISystem, "s"), (InterventionPoint, "p"))
    profile_table = qn(ReviewerProfile._meta.db_table)
    profile_user = qn(ReviewerProfile._meta.get_field("user").column)
    qualifications = ReviewerProfile.qualifications.through
    q_profile = qn(qualifications._meta.get_field("reviewerprofile").column)
    q_system = qn(qualifications._meta.get_field("aisystem").column)
    decision = Decision._meta
    pk = qn(column_of(Case))
    lock = ""
    if conn.features.has_select_for_update:
        # The case row only (not the system or point rows), and no key lock: the
        # decision's foreign key to the case must not wait on this lock.
        no_key = " NO KEY" if conn.features.has_select_for_no_key_update else ""
        lock = f" FOR{no_key} UPDATE" + (" OF c" if conn.features.has_select_for_update_of else "")
    sql = (
        f"SELECT {shape.columns}, "
        f"(SELECT rp.{qn('status')} FROM {profile_table} rp WHERE rp.{profile_user} = %s), "
        f"(SELECT rp.{qn('adjudicator')} FROM {profile_table} rp WHERE rp.{profile_user} = %s), "
        f"EXISTS (SELECT 1 FROM {qn(qualifications._meta.db_table)} q "
        f"INNER JOIN {profile_table} rp ON rp.{qn('id')} = q.{q_profile} "
        f"WHERE rp.{profile_user} = %s AND q.{q_system} = c.{qn(Case._meta.get_field('system').column)}), "
        f"EXISTS (SELECT 1 FROM {qn(decision.db_table)} d "
        f"WHERE d.{qn(decision.get_field('case').column)} = c.{pk} "
        f"AND d.{qn(column_of(Decision, 'round'))} = c.{qn(column_of(Case, 'review_round'))}) "
        f"FROM {qn(Case._meta.db_table)} c "
        f"INNER JOIN {qn(AISystem._meta.db_table)} s ON s.{qn('id')} = c.{qn(Case._meta.get_field('system').column)} "
        f"INNER JOIN {qn(InterventionPoint._meta.db_table)} p "
        f"ON p.{qn('id')} = c.{qn(Case._meta.get_field('intervention_point').column)} "
        f"WHERE c.{pk} = %s{lock}"
    )
    plan = _ReadPlan(sql=sql, shape=shape)
    _read_plans[alias] = plan
    return plan


def _locked_for_decision(case: Case, reviewer: User) -> Case:
    """Re-read the case under a row lock, with everything the decision needs, in one statement.

    Beside the case (``input`` and ``subject`` deferred), its system and
    intervention point: the reviewer's profile status and adjudicator flag
    (``None`` without a profile), whether the profile is qualified for the case's
    system, and whether the current round already has decisions (as attributes
    ``reviewer_status``, ``reviewer_adjudicator``, ``reviewer_qualified``,
    ``round_has_decisions``). Blocking, not ``SKIP LOCKED``: a holder's own
    decision must not be skipped. ``ClaimConflict(code="not_found")`` when the
    case does not exist.
    """
    if not isinstance(case.pk, int) or not 0 < case.pk <= MAX_PK:
        raise ClaimConflict("The case no longer exists.", code="not_found")
    alias = router.db_for_write(Case)
    conn = connections[alias]
    plan = _read_plan(alias)
    with conn.cursor() as cursor:
        cursor.execute(plan.sql, [reviewer.pk, reviewer.pk, reviewer.pk, case.pk])
        raw = cursor.fetchone()
    if raw is None:
        raise ClaimConflict("The case no longer exists.", code="not_found")
    (locked, system, point), extra = load_row(plan.shape, alias, raw)
    assert isinstance(locked, Case)
    locked.system = system  # type: ignore[assignment]
    locked.intervention_point = point  # type: ignore[assignment]
    status, adjudicator, qualified, has_decisions = extra
    locked.reviewer_status = status  # type: ignore[attr-defined]
    locked.reviewer_adjudicator = None if adjudicator is None else bool(adjudicator)  # type: ignore[attr-defined]
    locked.reviewer_qualified = bool(qualified)  # type: ignore[attr-defined]
    locked.round_has_decisions = bool(has_decisions)  # type: ignore[attr-defined]
    return locked


def _require_standing(reviewer: User, case: Case) -> bool:
    """``reviews.rules.require_standing``, read from the annotations of ``_locked_for_decision``
    instead of two more queries; returns whether the reviewer is an adjudicator."""
    require_standing(
        status=case.reviewer_status,  # type: ignore[attr-defined]
        user_active=reviewer.is_active,
        qualified=bool(case.reviewer_qualified),  # type: ignore[attr-defined]
    )
    return bool(case.reviewer_adjudicator)  # type: ignore[attr-defined]


def round_verdicts(case: Case) -> list[tuple[str | None, str]]:
    """``(label, outcome)`` of the decisions already given in the case's current round."""
    if not getattr(case, "round_has_decisions", True):
        return []
    return list(Decision.objects.filter(case_id=case.pk, round=case.review_round).values_list("label", "outcome"))


def stands_escalated(case: Case, verdicts: list[tuple[str | None, str]]) -> bool:
    """``reviews.rules.is_escalated`` for one case whose current round's verdicts are already read."""
    return is_escalated(
        review_round=case.review_round,
        sla_breached=case.sla_breached,
        decisions=len(verdicts),
        distinct_labels=len({label for label, _ in verdicts if label is not None}),
        escalations=sum(1 for _, outcome in verdicts if outcome == DecisionOutcome.ESCALATE),
        reviewers_required=case.reviewers_required,
    )


@dataclass(frozen=True)
class _WritePlan:
    """The decision's writes for one set of updated case fields, built once per database."""

    # PostgreSQL: the four writes in one statement (data-modifying CTEs); None elsewhere.
    combined: str | None
    # Elsewhere: one statement each (the insert with ``returning`` when the database can).
    decision_insert: str
    returning: str
    decision_history: str
    case_update: str
    case_history: str
    decision_fields: Any  # the InsertPlan of Decision
    update_fields: list[models.Field]
    decision_history_params: list[str]
    case_history_params: list[str]


_write_plans: dict[tuple[str, tuple[str, ...]], _WritePlan] = {}


def _write_plan(alias: str, field_names: tuple[str, ...]) -> _WritePlan:
    plan = _write_plans.get((alias, field_names))
    if plan is not None:
        return plan
    conn = connections[alias]
    qn = conn.ops.quote_name
    decision_plan = insert_plan(Decision, alias)
    decision_copy = history_copy(Decision, alias)
    case_copy = history_copy(Case, alias)
    update_fields = [concrete_field(Case, name) for name in field_names]
    case_table, case_pk = qn(Case._meta.db_table), qn(column_of(Case))
    decision_table, decision_pk = qn(Decision._meta.db_table), qn(column_of(Decision))
    assignments = ", ".join(f"{qn(field_column(f))} = %s" for f in update_fields)
    case_update = f"UPDATE {case_table} SET {assignments} WHERE {case_pk} = %s"
    decision_insert = f"{decision_plan.into}VALUES {decision_plan.row}"
    combined = None
    if conn.vendor == "postgresql":
        combined = (
            f"WITH d AS ({decision_insert} RETURNING *), "
            f"dh AS ({decision_copy.sql} FROM d src), "
            f"c AS ({case_update} RETURNING *), "
            f"ch AS ({case_copy.sql} FROM c src) "
            f"SELECT (SELECT {decision_pk} FROM d), (SELECT COUNT(*) FROM c)"
        )
    plan = _WritePlan(
        combined=combined,
        decision_insert=decision_insert,
        returning=decision_plan.returning if conn.features.can_return_columns_from_insert else "",
        decision_history=f"{decision_copy.sql} FROM {decision_table} src WHERE src.{decision_pk} = %s",
        case_update=case_update,
        case_history=f"{case_copy.sql} FROM {case_table} src WHERE src.{case_pk} = %s",
        decision_fields=decision_plan,
        update_fields=update_fields,
        decision_history_params=decision_copy.params,
        case_history_params=case_copy.params,
    )
    _write_plans[(alias, field_names)] = plan
    return plan


def _history_values(model: type[models.Model], names: list[str], *, at: Any, kind: str, user: User,
                    conn: Any) -> list[Any]:
    """The history row's own columns, as simple-history fills them on ``save()``."""
    history_date = history_date_field(model)
    own = {
        "history_date": history_date.get_db_prep_save(at, conn),
        "history_type": kind,
        "history_user_id": user.pk,
        # ``save()`` records the instance's ``_change_reason``; the services set none.
        "history_change_reason": None,
    }
    return [own[name] for name in names]


def _write_decision(*, decision: Decision, case: Case, fields: list[str], reviewer: User,
                    decision_at: Any, case_at: Any) -> None:
    """INSERT the decision, UPDATE ``fields`` of the case, and one history row each ("+" and "~").

    The same rows ``decision.save()`` and ``case.save(update_fields=fields)`` write
    with simple-history (``reviewer`` as the history user, no change reason, the
    given history dates), in one statement on PostgreSQL. With history disabled
    (``SIMPLE_HISTORY_ENABLED = False``) it is exactly those two saves.
    """
    if not settings.SIMPLE_HISTORY_ENABLED:
        decision.save()
        case.save(update_fields=fields)
        return
    alias = router.db_for_write(Decision)
    conn = connections[alias]
    plan = _write_plan(alias, tuple(fields))
    decision_values = prepared_row(plan.decision_fields, decision, conn)
    update_values = [f.get_db_prep_save(f.pre_save(case, False), conn) for f in plan.update_fields]
    decision_history = _history_values(Decision, plan.decision_history_params, at=decision_at, kind="+",
                                       user=reviewer, conn=conn)
    case_history = _history_values(Case, plan.case_history_params, at=case_at, kind="~", user=reviewer, conn=conn)
    with conn.cursor() as cursor:
        if plan.combined is not None:
            cursor.execute(
                plan.combined, [*decision_values, *decision_history, *update_values, case.pk, *case_history]
            )
            decision_pk, updated = cursor.fetchone()
        else:
            cursor.execute(plan.decision_insert + plan.returning, decision_values)
            decision_pk = cursor.fetchone()[0] if plan.returning else cursor.lastrowid
            cursor.execute(plan.decision_history, [*decision_history, decision_pk])
            cursor.execute(plan.case_update, [*update_values, case.pk])
            updated = cursor.rowcount
            cursor.execute(plan.case_history, [*case_history, case.pk])
    if updated != 1:
        # As ``save(update_fields=...)`` does; the row is locked, so this means it was deleted.
        raise DatabaseError("Save with update_fields did not affect any rows.")
    decision.pk = decision_pk
    decision._state.adding = False
    decision._state.db = alias


def _later_than(earlier: datetime) -> datetime:
    """Now, strictly after ``earlier``: the case's history row follows the decision's, as before."""
    now = timezone.now()
    return now if now > earlier else earlier + timedelta(microseconds=1)


@transaction.atomic
def decision_record(
    *, reviewer: User, case: Case, outcome: str | None, label: str | None, rationale: str,
    form_values: dict[str, Any] | None = None,
    text: str | None = None, arguments: Any = None, category: str = "",
) -> Case:
    """Record the claim holder's verdict and move the case on (decided, escalated or back to the queue).

    ``form_values`` answers the intervention point's extra decision fields: required
    ones must be answered for a verdict (an escalation may leave them open); errors
    name the field as ``form_values.<name>``. Generation and action cases are decided
    by ``reviews.services.kinds`` (``text``, ``arguments`` and ``category`` belong to them).
    """
    case = _locked_for_decision(case, reviewer)
    if case.is_gold:
        # A gold answer may change the reviewer's gold accuracy: the stored competence verdict
        # no longer holds (the next claim evaluates it again). Rolled back with a refused decision.
        ReviewerProfile.objects.filter(user_id=reviewer.pk).update(competence_verdict="", updated_at=timezone.now())
    if case.intervention_point.kind != CaseKind.CLASSIFICATION:
        from reviews.services.kinds import kind_decision_record

        if label is not None:
            raise ValidationError({"label": ["A generation or action case has no labels."]})
        return kind_decision_record(reviewer=reviewer, case=case, outcome=outcome, text=text, arguments=arguments,
                                    rationale=rationale, category=category, locked=True)
    for name, value in (("text", text), ("arguments", arguments), ("category", category or None)):
        if value is not None:
            raise ValidationError({name: ["Only generation and action cases take this field."]})
    now = timezone.now()
    if not holds_live_claim(case, reviewer, now):
        raise ClaimConflict("You hold no live claim on this case (it expired, was released or decided).")
    adjudicator = _require_standing(reviewer, case)
    rationale = (rationale or "").strip()
    earlier = [] if (case.review_round > 1 or case.sla_breached) else round_verdicts(case)
    adjudication = stands_escalated(case, earlier)
    if adjudication and not adjudicator:
        raise ReviewerNotAllowed("Only an adjudicator may decide an escalated case.", code="adjudicator_required")
    outcome, verdict = resolve_outcome(case, outcome=outcome, label=label, rationale=rationale)
    if adjudication and outcome == DecisionOutcome.ESCALATE:
        raise ValidationError({"outcome": ["An adjudicator's decision is final: approve or override."]})
    answers = clean_form_values(case.intervention_point.decision_fields or [], form_values,
                                require=outcome != DecisionOutcome.ESCALATE)

    blind = is_served_blind(case)
    claimed_at = case.claimed_at or now
    spent_ms = min(MAX_TIME_SPENT_MS, max(0, int((now - claimed_at) / timedelta(milliseconds=1))))
    decision = Decision(
        case=case, reviewer=reviewer, round=case.review_round, outcome=outcome, label=verdict,
        rationale=rationale, ai_shown=not blind, is_adjudication=adjudication, claimed_at=case.claimed_at,
        time_spent_ms=spent_ms, decided_at=now, form_values=answers,
        system_id=case.system_id, prediction_label=case.prediction_label,
    )
    decision._history_user = reviewer  # type: ignore[attr-defined]
    # When ``decision.save()`` would have written the decision's history row.
    decision_at = timezone.now()

    # What the case becomes.
    resolution: str | None = None
    cause = ""
    if adjudication:
        resolution = Resolution.ADJUDICATED
    elif outcome == DecisionOutcome.ESCALATE:
        cause = "reviewer_escalated"
    else:
        # Not escalated, so ``earlier`` holds every verdict of this round before this one.
        verdicts = [earlier_label for earlier_label, _ in earlier] + [verdict]
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
    _write_decision(decision=decision, case=case, fields=fields, reviewer=reviewer, decision_at=decision_at,
                    case_at=_later_than(decision_at))

    data: dict[str, Any] = {
        "outcome": outcome, "label": verdict, "round": decision.round, "ai_shown": decision.ai_shown,
        "is_adjudication": adjudication, "time_spent_ms": spent_ms,
    }
    if rationale:
        data["rationale"] = _text_digest(rationale)
    if answers:
        # Which extra fields were answered, never the answers (free text may hold personal data).
        data["form_fields"] = sorted(answers)
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
    elif cause:
        # Nothing waits in silence: with no eligible adjudicator left, the officers are alerted now.
        alert_if_nobody_can_take(case=case, actor=reviewer)
    return case


@transaction.atomic
def case_reopen(*, actor: User, case: Case, reason: str) -> Case:
    """Send a decided (or auto-accepted) case back to review as escalated, in a new round.

    Art. 14(4)(d): a person may disregard or reverse the output; Art. 86: an
    affected person may ask for an explanation and a fresh look. Earlier deciders
    may decide again in the new round. The case gets a fresh SLA deadline (when
    its intervention point has one), so the appeal is not instantly overdue. Earlier
    deciders do not decide it again: someone else looks afresh (or the officers, alerted).
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
    alert_if_nobody_can_take(case=case, actor=actor)
    return case


def decision_copies_fill() -> int:
    """Give the decisions written without them their copies of the case's system and AI label.

    Every path that records a decision fills ``Decision.system`` and
    ``Decision.prediction_label`` (the quality figures are counted from them, migration
    0011). A process still running the code from before that migration, during a deploy,
    writes decisions without them; the quality figures would leave those out. The daily
    beat (``reviews.fill_decision_copies``, before the reviewer-quality snapshot) fills
    them. The copies are derived values, not a change of the decision: no history row
    and no audit event (the decision's own events stand).
    """
    case = Case.objects.filter(pk=OuterRef("case_id"))
    return Decision.objects.filter(system__isnull=True).update(
        system_id=Subquery(case.values("system_id")[:1]),
        prediction_label=Subquery(case.values("prediction_label")[:1]),
    )

