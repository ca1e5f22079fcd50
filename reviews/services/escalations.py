"""Escalations always resolve: alerts to compliance officers, officer adjudication and assignment.

- An escalated case never goes back to whoever escalated it or decided it before
  (``claimable_cases`` leaves out anyone with a decision on the case, in any round).
- When no other eligible active adjudicator exists, the case is routed to the
  compliance officers: an alert (``CaseAlert``, audited ``case.alert_raised``,
  notified through ``hitl_portal.notifications``) puts it on their home page and their escalations page,
  where they may adjudicate it themselves or assign it to a named reviewer.
- A beat task (``alert_stuck_cases``) finds open cases nobody eligible can claim,
  or that wait past their point's SLA deadline, and alerts once per case, kind
  and review round (the unique constraint makes a second run a no-op).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from audit.services import bulk_record_events, record_event
from hitl_portal.actors import Actor, system_user
from hitl_portal.models import NotificationKind
from hitl_portal.notifications import notify
from hitl_portal.roles import COMPLIANCE_OFFICER
from reviews.models import (
    AlertKind,
    Case,
    CaseAlert,
    CaseStatus,
    Decision,
    DecisionOutcome,
    Resolution,
)
from reviews.selectors.escalations import (
    already_alerted,
    eligible_reviewers,
    overdue_waiting_cases,
    unclaimable_cases,
)
from reviews.services.errors import ClaimConflict, ReviewerNotAllowed
from reviews.services.queue import CLAIM_FIELDS, case_reassign, end_claim, locked_case

logger = logging.getLogger(__name__)

# Beat sweep: alerts raised per run at most (the rest on the next run).
SWEEP_LIMIT = 500

ALERT_TEXT: dict[str, str] = {
    AlertKind.NO_ELIGIBLE_ADJUDICATOR: (
        "No other active adjudicator qualified for this system may take it (whoever escalated or decided it "
        "before cannot): a compliance officer must adjudicate it or assign it."
    ),
    AlertKind.NO_ELIGIBLE_REVIEWER: (
        "No active reviewer qualified for this system can claim it: a compliance officer must assign it "
        "or qualify a reviewer."
    ),
    AlertKind.QUEUE_AGE: "It has waited past its SLA deadline and nobody has taken it.",
}


def alert_raise(*, case: Case, kind: str, actor: Actor = None, detail: str = "") -> CaseAlert | None:
    """Raise one alert on ``case`` (once per case, kind and round); ``None`` when it already exists.

    Runs in the caller's transaction; the e-mail goes out after commit.
    """
    try:
        with transaction.atomic():
            alert = CaseAlert.objects.create(
                case=case, kind=kind, round=case.review_round, detail=detail or ALERT_TEXT.get(kind, "")
            )
    except IntegrityError:
        return None
    record_event(
        "case.alert_raised", actor=actor, obj=case, case_id=case.pk, system_id=case.system_id,
        data={"kind": kind, "round": case.review_round, "status": case.status},
    )
    # Inbox, e-mail and chat through the one notification service (retried until it reaches someone).
    notify(
        kind=NotificationKind.ESCALATION if kind == AlertKind.NO_ELIGIBLE_ADJUDICATOR
        else NotificationKind.UNCLAIMABLE_CASE,
        subject=f"Case #{case.pk} needs a compliance officer",
        body=f"{ALERT_TEXT.get(kind, kind)}\n\n{alert.detail}",
        link=reverse("reviews:officer_case", args=[case.pk]),
        roles=(COMPLIANCE_OFFICER,),
        dedupe_key=f"case-alert:{alert.pk}",
    )
    return alert


def alert_if_nobody_can_take(*, case: Case, actor: Actor = None) -> CaseAlert | None:
    """After an escalation (or a return to the queue): alert the officers when nobody eligible is left."""
    if case.status not in (CaseStatus.QUEUED, CaseStatus.ESCALATED) or case.is_gold:
        return None
    escalated = case.status == CaseStatus.ESCALATED
    if eligible_reviewers(case, adjudicator=escalated).exists():
        return None
    kind = AlertKind.NO_ELIGIBLE_ADJUDICATOR if escalated else AlertKind.NO_ELIGIBLE_REVIEWER
    return alert_raise(case=case, kind=kind, actor=actor)


def alert_stuck_cases(*, now: datetime | None = None, limit: int = SWEEP_LIMIT) -> int:
    """Beat: alert about open cases nobody eligible can claim, or waiting past their SLA; returns how many.

    Idempotent: each case is alerted once per kind and round. Acts as the system actor.
    """
    now = now or timezone.now()
    actor = system_user()
    raised = 0
    plans = [
        (AlertKind.NO_ELIGIBLE_ADJUDICATOR, unclaimable_cases(escalated=True)),
        (AlertKind.NO_ELIGIBLE_REVIEWER, unclaimable_cases(escalated=False)),
        (AlertKind.QUEUE_AGE, overdue_waiting_cases(now=now)),
    ]
    for kind, cases in plans:
        todo = list(cases.filter(~already_alerted(kind)).order_by("received_at", "id")[: max(0, limit - raised)])
        if not todo:
            continue
        with transaction.atomic():
            alerts = []
            events = []
            for case in todo:
                try:
                    with transaction.atomic():
                        alert = CaseAlert.objects.create(
                            case=case, kind=kind, round=case.review_round, detail=ALERT_TEXT[kind], raised_at=now
                        )
                except IntegrityError:  # raised meanwhile by a decision
                    continue
                alerts.append(alert)
                events.append(dict(
                    action="case.alert_raised", actor=actor, obj=case, case_id=case.pk, system_id=case.system_id,
                    data={"kind": kind, "round": case.review_round, "status": case.status, "detected_by": "sweeper"},
                ))
            if events:
                bulk_record_events(events)
                # One notification per sweep and kind, listing the cases (not one per case: no flood).
                notify(
                    kind=NotificationKind.ESCALATION if kind == AlertKind.NO_ELIGIBLE_ADJUDICATOR
                    else NotificationKind.UNCLAIMABLE_CASE,
                    subject=f"{len(alerts)} case(s) need a compliance officer",
                    body=ALERT_TEXT[kind] + "\n\n" + "\n".join(f"Case #{a.case_id}" for a in alerts[:50]),
                    link=reverse("reviews:escalations"),
                    roles=(COMPLIANCE_OFFICER,),
                )
        raised += len(alerts)
    return raised


def _resolve_alerts(case: Case, *, by: Any, now: datetime) -> int:
    alerts = list(CaseAlert.objects.filter(case_id=case.pk, resolved_at__isnull=True))
    for alert in alerts:
        alert.resolved_at = now
        alert.resolved_by = by if getattr(by, "pk", None) else None
        alert.save(update_fields=["resolved_at", "resolved_by"])
    return len(alerts)


@transaction.atomic
def case_assign(*, actor: Actor, case: Case, reviewer: User, reason: str) -> Case:
    """A compliance officer hands an open case to a named reviewer (``case.reassigned``, audited).

    The reviewer's standing is a property of the input here, so a reviewer who may
    not take the case is a 400 naming ``reviewer`` (not a 403 for the officer).
    Resolves the case's open alerts.
    """
    try:
        case = case_reassign(actor=actor, case=case, reviewer=reviewer, reason=reason)
    except ReviewerNotAllowed as exc:
        raise ValidationError({"reviewer": [str(exc.detail)]}) from exc
    _resolve_alerts(case, by=actor, now=timezone.now())
    return case


@transaction.atomic
def case_officer_adjudicate(*, officer: User, case: Case, outcome: str, label: str | None, rationale: str) -> Case:
    """A compliance officer's final decision on a case routed to the officers (an open alert).

    ``approve`` keeps the AI label; ``override`` takes one of the system's labels;
    no escalation (the officers are the end of the line). A rationale is required.
    Refused (409) while someone holds the case under a live lease, when the case is
    no longer open or not routed to the officers, or when the officer decided it before.
    """
    # Late import: the decision service imports this module (it raises alerts on escalation).
    from reviews.services.decisions import _text_digest, enqueue_decided_webhooks

    rationale = (rationale or "").strip()
    case = locked_case(case, related=("system",))
    now = timezone.now()
    if case.status not in (CaseStatus.QUEUED, CaseStatus.ESCALATED, CaseStatus.CLAIMED):
        raise ClaimConflict("This case is no longer open.", code="not_open")
    if case.status == CaseStatus.CLAIMED and case.lease_expires_at and case.lease_expires_at > now:
        raise ClaimConflict("A reviewer holds this case right now; wait or take it back first.", code="claimed")
    if not CaseAlert.objects.filter(case_id=case.pk, round=case.review_round, resolved_at__isnull=True).exists():
        raise ClaimConflict("This case was not routed to the compliance officers.", code="not_routed")
    if Decision.objects.filter(case_id=case.pk, reviewer_id=officer.pk).exists():
        raise ClaimConflict("You decided this case before; someone else must adjudicate it.", code="decided_before")
    labels = list(case.system.labels)
    if outcome == DecisionOutcome.ESCALATE:
        raise ValidationError({"outcome": ["An officer's adjudication is final: approve or override."]})
    if outcome not in (DecisionOutcome.APPROVE, DecisionOutcome.OVERRIDE):
        raise ValidationError({"outcome": ["must be approve or override"]})
    if outcome == DecisionOutcome.APPROVE:
        if case.prediction_label is None:
            raise ValidationError({"outcome": ["This case has no AI label to approve: choose a label."]})
        label = case.prediction_label
    else:
        if not label:
            raise ValidationError({"label": ["A label is required to override."]})
        if label not in labels:
            raise ValidationError({"label": [f"not one of the system's labels: {', '.join(labels)}"]})
        if label == case.prediction_label:
            outcome = DecisionOutcome.APPROVE
    if not rationale:
        raise ValidationError({"rationale": ["A rationale is required to adjudicate."]})
    before = {"status": case.status}
    decision = Decision(
        case=case, reviewer=officer, round=case.review_round, outcome=outcome, label=label, rationale=rationale,
        ai_shown=True, is_adjudication=True, claimed_at=None, time_spent_ms=0, decided_at=now,
        system_id=case.system_id, prediction_label=case.prediction_label,
    )
    decision._history_user = officer  # type: ignore[attr-defined]
    decision.save()
    end_claim(case, escalated=False)
    case.status = CaseStatus.DECIDED
    case.resolution = Resolution.ADJUDICATED
    case.final_label = label
    case.decided_at = now
    case._history_user = officer  # type: ignore[attr-defined]
    case.save(update_fields=[*CLAIM_FIELDS, "resolution", "final_label", "decided_at"])
    _resolve_alerts(case, by=officer, now=now)
    bulk_record_events([
        dict(action="decision.recorded", actor=officer, obj=decision, object_label=f"decision on case {case.pk}",
             case_id=case.pk, system_id=case.system_id,
             data={"outcome": outcome, "label": label, "round": decision.round, "ai_shown": True,
                   "is_adjudication": True, "by_officer": True, "time_spent_ms": 0,
                   "rationale": _text_digest(rationale)},
             before=before, after={"status": case.status}),
        dict(action="case.decided", actor=officer, obj=case, case_id=case.pk, system_id=case.system_id,
             data={"resolution": Resolution.ADJUDICATED, "final_label": label, "round": case.review_round,
                   "reviewers_required": case.reviewers_required, "by_officer": True},
             before=before, after={"status": case.status, "resolution": case.resolution, "final_label": label}),
    ])
    enqueue_decided_webhooks([case])
    return case


def officer_may_adjudicate(case: Case, officer: User) -> bool:
    """Page hint only (the service decides): an open alert, nobody holding it live, not decided by them."""
    now = timezone.now()
    if case.status not in (CaseStatus.QUEUED, CaseStatus.ESCALATED, CaseStatus.CLAIMED):
        return False
    if case.status == CaseStatus.CLAIMED and case.lease_expires_at is not None and case.lease_expires_at > now:
        return False
    return (
        CaseAlert.objects.filter(case_id=case.pk, round=case.review_round, resolved_at__isnull=True).exists()
        and not Decision.objects.filter(case_id=case.pk, reviewer_id=officer.pk).exists()
    )
