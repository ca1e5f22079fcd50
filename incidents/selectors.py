"""Reads of the incident register: the filtered list, one incident, its Art. 73 clock, alert recipients."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from audit.models import AuditEvent
from hitl_portal.roles import ADMIN, COMPLIANCE_OFFICER, MANAGER, user_role
from incidents.models import Incident, IncidentStatus

# The register is read by the oversight roles; it names no object a role could not see anyway.
_READERS = frozenset((ADMIN, COMPLIANCE_OFFICER, MANAGER))
# Primary keys are 64-bit: a larger number names no incident (and PostgreSQL would refuse it).
MAX_PK = 2**63 - 1


def overdue_q(now: dt.datetime) -> Q:
    """Incidents whose Art. 73 report is overdue: a clock that ran out with no report filed yet."""
    return Q(report_due_at__isnull=False, report_due_at__lt=now, status=IncidentStatus.AWARE)


def incidents_visible_to(user: Any) -> QuerySet[Incident]:
    """The incidents ``user`` may read: all of them for officers, managers and admins, none otherwise."""
    if user_role(user) not in _READERS:
        return Incident.objects.none()
    return Incident.objects.select_related("system", "case", "created_by")


def incident_list(
    *,
    user: Any,
    system: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    overdue: bool | None = None,
    now: dt.datetime | None = None,
) -> QuerySet[Incident]:
    """The register, filtered; ``system`` is a slug, ``overdue`` narrows to (or excludes) overdue reports."""
    incidents = incidents_visible_to(user)
    if system:
        incidents = incidents.filter(system__slug=system)
    if kind:
        incidents = incidents.filter(kind=kind)
    if status:
        incidents = incidents.filter(status=status)
    if overdue is not None:
        condition = overdue_q(now or timezone.now())
        incidents = incidents.filter(condition) if overdue else incidents.exclude(condition)
    return incidents


def incident_get(*, user: Any, pk: int) -> Incident:
    """One incident ``user`` may read, or 404."""
    if not 0 < pk <= MAX_PK:
        raise Http404("No such incident.")
    incident = incidents_visible_to(user).filter(pk=pk).first()
    if incident is None:
        raise Http404("No such incident.")
    return incident


def is_overdue(incident: Incident, *, now: dt.datetime | None = None) -> bool:
    now = now or timezone.now()
    return (
        incident.report_due_at is not None
        and incident.status == IncidentStatus.AWARE
        and incident.report_due_at < now
    )


@dataclass(frozen=True)
class Clock:
    """The Art. 73 clock of one incident, as the pages and the API show it.

    ``state``: ``none`` (no clock for this kind), ``running`` (due in ``seconds``),
    ``overdue`` (overdue by ``seconds``), ``reported`` (a report was filed at
    ``reported_at``; ``late`` when after the due time).
    """

    state: str
    due_at: dt.datetime | None
    seconds: int | None = None
    reported_at: dt.datetime | None = None
    late: bool = False

    @property
    def text(self) -> str:
        if self.state == "none":
            return "No Art. 73 clock for this kind."
        if self.state == "reported":
            return "Reported late." if self.late else "Reported in time."
        assert self.seconds is not None
        span = _span(self.seconds)
        return f"Overdue by {span}" if self.state == "overdue" else f"Due in {span}"


def _span(seconds: int) -> str:
    days, rest = divmod(max(0, seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def incident_clock(incident: Incident, *, now: dt.datetime | None = None) -> Clock:
    """Where the incident stands against its Art. 73 deadline."""
    now = now or timezone.now()
    due = incident.report_due_at
    if due is None:
        return Clock(state="none", due_at=None)
    reported_at = incident.initial_report_at or incident.full_report_at
    if reported_at is None and incident.status != IncidentStatus.AWARE:
        reported_at = incident.closed_at
    if reported_at is not None:
        return Clock(state="reported", due_at=due, reported_at=reported_at, late=reported_at > due)
    if due < now:
        return Clock(state="overdue", due_at=due, seconds=int((now - due).total_seconds()))
    return Clock(state="running", due_at=due, seconds=int((due - now).total_seconds()))


def overdue_unalerted_ids(*, now: dt.datetime) -> list[int]:
    """Overdue incidents nobody was alerted about yet (the partial index on open due dates serves it)."""
    return list(
        Incident.objects.filter(overdue_q(now), overdue_alerted_at__isnull=True)
        .order_by("report_due_at", "id")
        .values_list("pk", flat=True)
    )


def incident_events(incident: Incident) -> list[AuditEvent]:
    """The audit events about one incident, in time order (the object index serves it)."""
    return list(
        AuditEvent.objects.filter(object_type="incident", object_id=str(incident.pk)).order_by("at", "id")
    )
