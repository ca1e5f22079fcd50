"""SLA breaches: overdue open cases get their intervention point's ``on_sla_breach`` rule.

- ``escalate``: the case goes to the adjudicators (status ``escalated``).
- ``accept_ai``: decided with the AI label (resolution ``sla_accept_ai``), but
  never while the system is halted (Art. 14(4)(e)), never for remote biometric
  identification (Annex III 1(a), Art. 14(5)), never without an AI label: then
  the case is escalated instead.
- ``fail_closed``: decided without a final label (resolution ``sla_fail_closed``).

A case under a live claim is left to its reviewer: the rule applies once the
lease is gone (released, decided, or expired and swept back to the queue).
Generation and action cases (``payload`` set) get a ``final_output`` too:
``accept_ai`` lets the AI's text or tool call through, ``fail_closed`` rejects or
denies it (the default for action points: an approval request nobody answered
in time is denied). Their ``expires_at`` is this deadline.

A reopened case (an appeal, round > 1) is never closed by the clock: it is only
marked breached and stays with the adjudicators. Each case is marked
``sla_breached`` (counted by the KPIs), so a run is idempotent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from audit.services import bulk_record_events
from hitl_portal.actors import Actor, system_user
from hitl_portal.models import NotificationKind
from hitl_portal.notifications import notify
from hitl_portal.roles import COMPLIANCE_OFFICER, MANAGER
from reviews.models import Case, CaseStatus, Resolution, SlaBreachAction, SystemStatus
from reviews.services.decisions import enqueue_decided_webhooks
from reviews.services.kinds import auto_output, expired_output

SLA_CHUNK = 100


def _applied_rule(case: Case) -> tuple[str, str]:
    """The rule actually applied and, when it differs from the configured one, why."""
    configured = case.intervention_point.on_sla_breach
    if case.review_round > 1:
        return SlaBreachAction.ESCALATE, "reopened"
    if configured != SlaBreachAction.ACCEPT_AI:
        return configured, ""
    if case.system.status == SystemStatus.HALTED:
        return SlaBreachAction.ESCALATE, "system_halted"
    if case.system.is_remote_biometric:
        return SlaBreachAction.ESCALATE, "remote_biometric"
    if case.prediction_label is None and case.payload is None:
        return SlaBreachAction.ESCALATE, "no_ai_label"
    return SlaBreachAction.ACCEPT_AI, ""


def apply_sla_breaches(*, now: datetime | None = None) -> int:
    """Apply the breach rule to every open, unclaimed case past its deadline; returns how many.

    Chunked (each chunk a short transaction with its audit events and one webhook
    enqueue); on PostgreSQL rows locked by a claimant or another sweeper are
    skipped and seen by the next run. Acts as the system actor.
    """
    now = now or timezone.now()
    actor = system_user()
    total = 0
    while True:
        with transaction.atomic():
            queryset = (
                Case.objects.filter(
                    status__in=[CaseStatus.QUEUED, CaseStatus.ESCALATED], sla_breached=False, sla_deadline__lt=now
                )
                .select_related("system", "intervention_point")
                .order_by("sla_deadline", "id")
            )
            if connection.features.has_select_for_update_skip_locked:
                queryset = queryset.select_for_update(skip_locked=True, no_key=True, of=("self",))
            batch = list(queryset[:SLA_CHUNK])
            if not batch:
                return total
            events: list[dict[str, Any]] = []
            decided: list[Case] = []
            for case in batch:
                events.extend(_apply(case, now=now, actor=actor))
                if case.status == CaseStatus.DECIDED:
                    decided.append(case)
            bulk_record_events(events)
            enqueue_decided_webhooks(decided)
            _alert(batch)
        total += len(batch)
        if len(batch) < SLA_CHUNK:
            return total


def _alert(batch: list[Case]) -> None:
    """One alert per sweep chunk to the officers and managers: which cases breached, and what followed."""
    lines = [
        f"Case #{case.pk} ({case.system.name} · {case.intervention_point.name}): "
        f"{case.intervention_point.get_on_sla_breach_display().lower()} → {case.get_status_display().lower()}"
        for case in batch[:50]
    ]
    more = f"\n… and {len(batch) - 50} more." if len(batch) > 50 else ""
    notify(
        kind=NotificationKind.SLA_BREACH,
        subject=f"{len(batch)} case(s) breached their SLA",
        body="\n".join(lines) + more,
        link=reverse("audit:case_list") + "?status=escalated",
        roles=(COMPLIANCE_OFFICER, MANAGER),
    )


def _apply(case: Case, *, now: datetime, actor: Actor) -> list[dict[str, Any]]:
    """Apply the rule to one locked case; returns its audit events (breach first, then the transition)."""
    configured = case.intervention_point.on_sla_breach
    applied, cause = _applied_rule(case)
    before = {"status": case.status}
    case.sla_breached = True
    fields = ["sla_breached"]
    if applied == SlaBreachAction.ESCALATE:
        if case.status != CaseStatus.ESCALATED:
            case.status = CaseStatus.ESCALATED
            fields.append("status")
    else:
        case.status = CaseStatus.DECIDED
        case.decided_at = now
        if applied == SlaBreachAction.ACCEPT_AI:
            case.resolution = Resolution.SLA_ACCEPT_AI
            case.final_label = case.prediction_label
        else:
            case.resolution = Resolution.SLA_FAIL_CLOSED
            case.final_label = None
        fields += ["status", "resolution", "final_label", "decided_at"]
        if case.payload is not None:
            # A generation or action request that expired: let through or refused (an
            # action point fails closed, i.e. denies, unless configured otherwise).
            case.final_output = (
                auto_output(case) if applied == SlaBreachAction.ACCEPT_AI else expired_output(case)
            )
            fields.append("final_output")
    case._history_user = actor  # type: ignore[attr-defined]
    case.save(update_fields=fields)
    common = dict(actor=actor, obj=case, case_id=case.pk, system_id=case.system_id)
    events: list[dict[str, Any]] = [
        dict(action="case.sla_breached", **common,
             data={"sla_deadline": case.sla_deadline, "configured": configured, "applied": applied,
                   "cause": cause or None, "round": case.review_round},
             before=before, after={"status": case.status})
    ]
    if case.status == CaseStatus.DECIDED:
        events.append(dict(action="case.decided", **common,
                           data={"resolution": case.resolution, "final_label": case.final_label,
                                 "round": case.review_round},
                           before=before, after={"status": case.status, "resolution": case.resolution,
                                                 "final_label": case.final_label}))
    elif before["status"] != CaseStatus.ESCALATED:
        events.append(dict(action="case.escalated", **common,
                           data={"cause": "sla_breach", "round": case.review_round},
                           before=before, after={"status": case.status}))
    return events
