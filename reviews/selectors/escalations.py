"""Reads for "escalations always resolve": who may still take a case, open alerts, adjudication context.

One definition of *eligible* for a case: an active reviewer (profile active, user
active) qualified for the case's system, who has decided the case in no round and
did not skip it in the current round, and, when the case stands escalated, an
adjudicator. ``claimable_cases`` applies the same exclusions per reviewer; here
they are applied per case, for the alert sweep and the officers' pages.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from audit.models import AuditEvent
from reviews.models import (
    Case,
    CaseAlert,
    CaseSkip,
    CaseStatus,
    Decision,
    ReviewerProfile,
    ReviewerStatus,
)

# Cases an alert can be about: open and not under a live lease (those are being worked on).
ALERTABLE_STATUSES = (CaseStatus.QUEUED, CaseStatus.ESCALATED)
# The audit events that say why a case stands escalated.
ESCALATION_ACTIONS = ("case.escalated", "case.reopened", "case.sla_breached")

CAUSE_TEXT: dict[str, str] = {
    "reviewer_escalated": "a reviewer escalated it",
    "disagreement": "the reviewers' verdicts differ",
}


def eligible_profiles(
    *, case_ref: Any, round_ref: Any, system_ref: Any, adjudicator: bool
) -> QuerySet[ReviewerProfile]:
    """Profiles that could take the case the references point at (OuterRef-friendly)."""
    decided = Decision.objects.filter(case_id=case_ref, reviewer_id=OuterRef("user_id"))
    skipped = CaseSkip.objects.filter(case_id=case_ref, reviewer_id=OuterRef("user_id"), round=round_ref)
    profiles = ReviewerProfile.objects.filter(
        status=ReviewerStatus.ACTIVE, user__is_active=True, qualifications=system_ref
    ).filter(~Exists(decided), ~Exists(skipped))
    if adjudicator:
        profiles = profiles.filter(adjudicator=True)
    return profiles


def eligible_reviewers(case: Case, *, adjudicator: bool) -> QuerySet[ReviewerProfile]:
    """The reviewers who could take this case now (adjudicators only, for an escalated one)."""
    return eligible_profiles(
        case_ref=case.pk, round_ref=case.review_round, system_ref=case.system_id, adjudicator=adjudicator
    ).select_related("user").order_by("user__username")


def unclaimable_cases(*, escalated: bool) -> QuerySet[Case]:
    """Open cases (queued, or escalated) that no eligible person can claim.

    Escalated ones need an eligible adjudicator; queued ones any eligible reviewer
    (adjudicators take queued work too).
    """
    nobody = ~Exists(eligible_profiles(
        case_ref=OuterRef(OuterRef("pk")), round_ref=OuterRef(OuterRef("review_round")),
        system_ref=OuterRef("system_id"), adjudicator=escalated,
    ))
    if escalated:
        return Case.objects.filter(status=CaseStatus.ESCALATED, is_gold=False).filter(nobody)
    # The queue can be large: a queued case can lack an eligible reviewer only when its system
    # has no active qualified reviewer at all, or when someone already decided or skipped it
    # (the exclusions). Only those few get the per-case check.
    staffed = ReviewerProfile.objects.filter(
        status=ReviewerStatus.ACTIVE, user__is_active=True, qualifications__isnull=False
    ).values("qualifications")
    touched = Exists(Decision.objects.filter(case_id=OuterRef("pk"))) | Exists(
        CaseSkip.objects.filter(case_id=OuterRef("pk"))
    )
    return (
        Case.objects.filter(status=CaseStatus.QUEUED, is_gold=False)
        .filter(~Q(system_id__in=staffed) | touched)
        .filter(nobody)
    )


def overdue_waiting_cases(*, now: datetime) -> QuerySet[Case]:
    """Open, unheld cases waiting past their point's SLA deadline (queue age over the SLA)."""
    return Case.objects.filter(status__in=ALERTABLE_STATUSES, is_gold=False, sla_deadline__lt=now)


def already_alerted(kind: str) -> Exists:
    return Exists(CaseAlert.objects.filter(case_id=OuterRef("pk"), kind=kind, round=OuterRef("review_round")))


def open_alerts(*, limit: int | None = None) -> QuerySet[CaseAlert]:
    """Unresolved alerts of cases still open, in their current round, newest first (what officers must look at)."""
    alerts = (
        CaseAlert.objects.filter(resolved_at__isnull=True, case__status__in=(*ALERTABLE_STATUSES, CaseStatus.CLAIMED),
                                 round=F("case__review_round"))
        .select_related("case", "case__system", "case__intervention_point")
        .order_by("-raised_at", "-id")
    )
    return alerts[:limit] if limit is not None else alerts


def open_alerts_of(case: Case) -> list[CaseAlert]:
    if case.status not in (*ALERTABLE_STATUSES, CaseStatus.CLAIMED):
        return []
    return list(
        CaseAlert.objects.filter(case_id=case.pk, round=case.review_round, resolved_at__isnull=True)
        .order_by("raised_at", "id")
    )


def _payload(event: AuditEvent) -> dict[str, Any]:
    try:
        return json.loads(event.payload or "{}")
    except ValueError:  # purged or not JSON: say nothing rather than guess
        return {}


def adjudication_context(case: Case) -> dict[str, Any]:
    """What an adjudicator (or officer) needs once the blind phase is over.

    Every earlier verdict (all rounds) with reviewer, outcome, label, rationale and
    time; and why the case stands escalated: who escalated and why (a reviewer's
    escalation with its rationale, disagreeing verdicts, an SLA breach, a reopen
    with its reason). Only for people allowed to see it: the caller decides that.
    """
    decisions = list(
        Decision.objects.filter(case_id=case.pk).select_related("reviewer").order_by("round", "decided_at", "id")
    )
    events = list(
        AuditEvent.objects.filter(case_id=case.pk, action__in=ESCALATION_ACTIONS).order_by("at", "id")
    )
    reasons: list[dict[str, Any]] = []
    for event in events:
        data = _payload(event).get("data") or {}
        if event.action == "case.escalated":
            cause = data.get("cause", "")
            text = CAUSE_TEXT.get(cause, cause.replace("_", " ") or "escalated")
            if cause == "reviewer_escalated":
                rationale = next(
                    (d.rationale for d in decisions
                     if d.reviewer.get_username() == event.actor_name and d.outcome == "escalate"),
                    "",
                )
                reasons.append({"at": event.at, "who": event.actor_name, "text": text, "why": rationale})
            else:
                # Disagreement is nobody's act: say whose verdict completed it, without blaming them.
                text = f"{text} (when {event.actor_name} decided)" if event.actor_name else text
                reasons.append({"at": event.at, "who": "Escalated", "text": text, "why": ""})
        elif event.action == "case.reopened":
            reasons.append({"at": event.at, "who": event.actor_name, "text": "reopened for a new review",
                            "why": event.reason})
        else:
            reasons.append({"at": event.at, "who": "the system", "text": "the SLA deadline passed",
                            "why": event.reason})
    return {
        "decisions": [
            {
                "round": d.round,
                "reviewer": d.reviewer.get_username(),
                "outcome": d.outcome,
                "outcome_text": d.get_outcome_display(),
                "label": d.label,
                "rationale": d.rationale,
                "decided_at": d.decided_at,
                "is_adjudication": d.is_adjudication,
            }
            for d in decisions
        ],
        "reasons": reasons,
    }

