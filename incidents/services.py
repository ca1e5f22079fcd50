"""The incident register: filing, the Art. 73 reporting clock, the status flow, overdue alerts.

Everything that raises an incident (people through the pages and the API, the
nightly chain verification, bias audits, quality monitoring) files it through
``incident_create``; every status change goes through ``incident_update``. Both
write their audit event in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from audit.services import bulk_record_events, record_event
from hitl_portal.models import NotificationKind
from hitl_portal.notifications import notify
from hitl_portal.roles import COMPLIANCE_OFFICER
from incidents.models import Incident, IncidentKind, IncidentSource, IncidentStatus
from incidents.selectors import overdue_unalerted_ids
from reviews.models import AISystem, Case

logger = logging.getLogger(__name__)

# Days from awareness within which the report is due, per kind (EU AI Act Art. 73).
# None: no Art. 73 clock (not a serious incident in the sense of Art. 3(49)).
ART73_REPORT_DAYS: dict[str, int | None] = {
    # Art. 73(4): the death of a person: not later than 10 days after becoming aware.
    IncidentKind.DEATH: 10,
    # Art. 73(3): a widespread infringement, or a serious and irreversible disruption of
    # the management or operation of critical infrastructure: not later than 2 days.
    IncidentKind.CRITICAL_INFRASTRUCTURE: 2,
    IncidentKind.WIDESPREAD_INFRINGEMENT: 2,
    # Art. 73(2): any other serious incident: not later than 15 days after becoming aware.
    IncidentKind.SERIOUS_HARM: 15,
    # Tracked in the register, reported to no authority: no clock.
    IncidentKind.BIAS: None,
    IncidentKind.OTHER: None,
}

# Forward moves of the status flow. An initial report may be skipped (Art. 73(5)
# allows an incomplete initial report, it does not require one); nothing moves back.
TRANSITIONS: dict[str, frozenset[str]] = {
    IncidentStatus.AWARE: frozenset({IncidentStatus.INITIAL_REPORT, IncidentStatus.FULL_REPORT}),
    IncidentStatus.INITIAL_REPORT: frozenset({IncidentStatus.FULL_REPORT}),
    IncidentStatus.FULL_REPORT: frozenset({IncidentStatus.CLOSED}),
    IncidentStatus.CLOSED: frozenset(),
}
# An incident without an Art. 73 clock owes no report to an authority, so it may be
# closed at any point; one with a clock closes only after its full report.
NO_CLOCK_CLOSABLE_FROM = frozenset({IncidentStatus.AWARE, IncidentStatus.INITIAL_REPORT})

# The time each status is reached is kept on the incident.
STATUS_TIMESTAMPS: dict[str, str] = {
    IncidentStatus.INITIAL_REPORT: "initial_report_at",
    IncidentStatus.FULL_REPORT: "full_report_at",
    IncidentStatus.CLOSED: "closed_at",
}

# Awareness a few minutes ahead of the server clock is tolerated (clock skew of the
# filer's machine); anything later is a typo, and would start the clock in the future.
AWARE_AT_SKEW = dt.timedelta(minutes=5)
DESCRIPTION_MAX = 20_000
NOTE_MAX = 5_000
ALERT_CHUNK = 100


def report_due_at(kind: str, aware_at: dt.datetime) -> dt.datetime | None:
    """When the Art. 73 report is due for an incident of ``kind`` known since ``aware_at`` (None: no clock)."""
    days = ART73_REPORT_DAYS.get(kind)
    return None if days is None else aware_at + dt.timedelta(days=days)


def allowed_next_statuses(incident: Incident) -> list[str]:
    """The statuses ``incident`` may move to next, in flow order."""
    allowed = set(TRANSITIONS[incident.status])
    if ART73_REPORT_DAYS.get(incident.kind) is None and incident.status in NO_CLOCK_CLOSABLE_FROM:
        allowed.add(IncidentStatus.CLOSED)
    return [value for value in IncidentStatus.values if value in allowed]


def _text_digest(text: str) -> dict[str, Any]:
    """Free text is referred to by hash and length in events (it may name people)."""
    return {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "chars": len(text)}


def _acting_user(actor: Any) -> Any:
    return actor if getattr(actor, "pk", None) is not None else None


def _clean_aware_at(aware_at: Any, now: dt.datetime) -> tuple[dt.datetime | None, str | None]:
    if not isinstance(aware_at, dt.datetime):
        return None, "Must be a date-time."
    if timezone.is_naive(aware_at):
        aware_at = aware_at.replace(tzinfo=dt.UTC)
    if aware_at > now + AWARE_AT_SKEW:
        return None, "Awareness cannot be in the future."
    return aware_at, None


@transaction.atomic
def incident_create(
    *,
    actor: Any,
    system: AISystem | None,
    kind: str,
    aware_at: dt.datetime,
    description: str,
    case: Case | None = None,
    source: str = IncidentSource.MANUAL,
    title: str = "",
    source_ref: str = "",
) -> Incident:
    """File an incident; its Art. 73 clock runs from ``aware_at`` by ``kind`` (``ART73_REPORT_DAYS``).

    A linked case must belong to the incident's system; given a case and no
    system, the case's system is used. Audited as ``incident.created`` (the
    description by hash only).
    """
    now = timezone.now()
    errors: dict[str, list[str]] = {}
    if kind not in IncidentKind.values:
        errors["kind"] = [f"Must be one of: {', '.join(IncidentKind.values)}."]
    if source not in IncidentSource.values:
        errors["source"] = [f"Must be one of: {', '.join(IncidentSource.values)}."]
    description = (description or "").strip()
    if not description:
        errors["description"] = ["Describe what happened."]
    elif len(description) > DESCRIPTION_MAX:
        errors["description"] = [f"At most {DESCRIPTION_MAX} characters."]
    cleaned_aware_at, problem = _clean_aware_at(aware_at, now)
    if problem:
        errors["aware_at"] = [problem]
    if case is not None:
        if system is None:
            system = case.system
        elif case.system_id != system.pk:
            errors["case"] = [f"Case {case.pk} belongs to another AI system, not {system.slug}."]
    if errors:
        raise ValidationError(errors)
    assert cleaned_aware_at is not None
    incident = Incident(
        system=system,
        case=case,
        kind=kind,
        source=source,
        title=(title or "").strip(),
        source_ref=(source_ref or "").strip(),
        description=description,
        aware_at=cleaned_aware_at,
        report_due_at=report_due_at(kind, cleaned_aware_at),
        status=IncidentStatus.AWARE,
        created_by=_acting_user(actor),
    )
    incident.full_clean()
    incident._history_user = actor  # type: ignore[attr-defined]
    incident.save()
    record_event(
        "incident.created",
        actor=actor,
        obj=incident,
        system_id=incident.system_id,
        case_id=incident.case_id,
        data={
            "kind": incident.kind,
            "source": incident.source,
            "source_ref": incident.source_ref,
            "title": incident.title,
            "system": system.slug if system is not None else None,
            "aware_at": incident.aware_at,
            "report_due_at": incident.report_due_at,
            "art73_days": ART73_REPORT_DAYS.get(incident.kind),
            "description": _text_digest(description),
        },
        after={"status": incident.status},
    )
    return incident


@transaction.atomic
def incident_update(*, actor: Any, incident: Incident, status: str | None = None, note: str = "") -> Incident:
    """Move an incident along aware → initial_report → full_report → closed, or add a note.

    Never backwards; the initial report may be skipped; each status reached is
    timestamped. The note is kept on the incident (with who and when) and is the
    audit event's reason. Audited as ``incident.updated``.
    """
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    note = (note or "").strip()
    target = status or incident.status
    if target not in IncidentStatus.values:
        raise ValidationError({"status": [f"Must be one of: {', '.join(IncidentStatus.values)}."]})
    if len(note) > NOTE_MAX:
        raise ValidationError({"note": [f"At most {NOTE_MAX} characters."]})
    changing = target != incident.status
    if not changing and not note:
        raise ValidationError({"status": [f"The incident is already {incident.get_status_display().lower()}: "
                                          "give the next status or a note."]})
    if changing and target not in allowed_next_statuses(incident):
        allowed = allowed_next_statuses(incident)
        hint = f"next may be: {', '.join(allowed)}" if allowed else "a closed incident stays closed"
        raise ValidationError({"status": [f"Cannot move from {incident.status} to {target} ({hint})."]})

    now = timezone.now()
    before: dict[str, Any] = {"status": incident.status}
    after: dict[str, Any] = {"status": target}
    fields = ["notes", "updated_at"]
    if changing:
        incident.status = target
        stamp = STATUS_TIMESTAMPS.get(target)
        if stamp:
            setattr(incident, stamp, now)
            after[stamp] = now
            fields.append(stamp)
        fields.append("status")
    who = actor.get_username() if _acting_user(actor) is not None else "system"
    line = f"[{now:%Y-%m-%d %H:%M} UTC] {who}: "
    line += f"{before['status']} → {target}" if changing else "note"
    if note:
        line += f" — {note}"
    incident.notes = f"{incident.notes}\n{line}" if incident.notes else line
    incident._history_user = actor  # type: ignore[attr-defined]
    incident.save(update_fields=fields)
    record_event(
        "incident.updated",
        actor=actor,
        obj=incident,
        system_id=incident.system_id,
        case_id=incident.case_id,
        reason=note,
        data={"kind": incident.kind, "report_due_at": incident.report_due_at},
        before=before,
        after=after,
    )
    return incident


def incident_overdue_alerts(*, actor: Any = None, now: dt.datetime | None = None) -> int:
    """Alert the compliance officers about Art. 73 reports that are overdue; returns how many incidents.

    Overdue: an open incident with a clock whose ``report_due_at`` has passed while
    it is still at ``aware`` (no report filed). Each is alerted once: its
    ``overdue_alerted_at`` is set and ``incident.updated`` recorded in one
    transaction per chunk, and the e-mails go out after that commits (so a rolled
    back alert sends nothing). ``actor`` is who runs it (the system user in the beat
    task; None records the system). Idempotent: a second run finds nothing new.
    """
    now = now or timezone.now()
    history_user = actor
    if history_user is None:
        from hitl_portal.actors import system_user

        history_user = system_user()
    ids = overdue_unalerted_ids(now=now)
    alerted = 0
    for start in range(0, len(ids), ALERT_CHUNK):
        chunk = ids[start:start + ALERT_CHUNK]
        with transaction.atomic():
            queryset = Incident.objects.filter(
                pk__in=chunk,
                status=IncidentStatus.AWARE,
                report_due_at__lt=now,
                overdue_alerted_at__isnull=True,
            ).select_related("system").order_by("report_due_at", "id")
            if connection.features.has_select_for_update_skip_locked:
                queryset = queryset.select_for_update(skip_locked=True, of=("self",))
            incidents = list(queryset)
            if not incidents:
                continue
            events = []
            for incident in incidents:
                assert incident.report_due_at is not None  # the query asked for report_due_at < now
                incident.overdue_alerted_at = now
                incident._history_user = history_user  # type: ignore[attr-defined]
                incident.save(update_fields=["overdue_alerted_at", "updated_at"])
                subject, body = _overdue_message(incident, now=now)
                # Delivered after commit (inbox, e-mail, chat), retried until it reaches someone.
                notification = notify(
                    kind=NotificationKind.INCIDENT_DEADLINE, severity="critical", subject=subject, body=body,
                    link=reverse("compliance:incident_detail", args=[incident.pk]),
                    roles=(COMPLIANCE_OFFICER,), dedupe_key=f"incident-overdue:{incident.pk}",
                )
                notified = sorted(notification.recipients.values_list("user__username", flat=True)) \
                    if notification is not None else []
                events.append(dict(
                    action="incident.updated",
                    actor=actor,
                    obj=incident,
                    system_id=incident.system_id,
                    case_id=incident.case_id,
                    reason="Art. 73 report overdue: compliance officers alerted.",
                    data={
                        "overdue_alert": True,
                        "kind": incident.kind,
                        "report_due_at": incident.report_due_at,
                        "overdue_by_s": int((now - incident.report_due_at).total_seconds()),
                        "notified": notified,
                    },
                    before={"overdue_alerted_at": None},
                    after={"overdue_alerted_at": now},
                ))
            bulk_record_events(events)
        alerted += len(incidents)
    return alerted


def _overdue_message(incident: Incident, *, now: dt.datetime) -> tuple[str, str]:
    overdue = now - incident.report_due_at  # type: ignore[operator]
    hours = int(overdue.total_seconds() // 3600)
    system = incident.system.name if incident.system is not None else "no system"
    days = ART73_REPORT_DAYS.get(incident.kind)
    subject = f"Art. 73 report overdue: incident #{incident.pk} ({incident.kind}, {system})"
    body = (
        f"The Art. 73 report for incident #{incident.pk} was due on "
        f"{incident.report_due_at:%Y-%m-%d %H:%M} UTC ({days} days after awareness on "
        f"{incident.aware_at:%Y-%m-%d %H:%M} UTC) and is overdue by {hours // 24} d {hours % 24} h.\n\n"
        f"Kind: {incident.get_kind_display()}\nAI system: {system}\n"
        f"Title: {incident.title or '(none)'}\n\n"
        "File at least the initial report (Art. 73(5)) and record it in the register."
    )
    return subject, body


