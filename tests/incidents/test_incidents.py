"""The incident register's services: the Art. 73 clock per kind, the status flow, overdue alerts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditEvent
from hitl_portal.actors import SYSTEM_USERNAME
from incidents.models import Incident, IncidentKind, IncidentStatus
from incidents.selectors import incident_clock, is_overdue
from incidents.services import (
    ART73_REPORT_DAYS,
    incident_create,
    incident_overdue_alerts,
    incident_update,
)
from incidents.tasks import incident_overdue_alerts_task
from tests.incidents.incident_helpers import file_incident, make_case

pytestmark = pytest.mark.django_db

AWARE = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("kind", "days"),
    [
        ("death", 10),
        ("critical_infrastructure", 2),
        ("widespread_infringement", 2),
        ("serious_harm", 15),
        ("bias", None),
        ("other", None),
    ],
)
def test_art73_clock_by_kind(make_user, kind, days):
    officer = make_user("compliance_officer")
    incident = file_incident(actor=officer, kind=kind, aware_at=AWARE)
    if days is None:
        assert incident.report_due_at is None
        assert incident_clock(incident).state == "none"
    else:
        assert incident.report_due_at == AWARE + dt.timedelta(days=days)
    assert ART73_REPORT_DAYS[kind] == days


def test_every_kind_has_a_clock_entry():
    assert set(ART73_REPORT_DAYS) == set(IncidentKind.values)


def test_create_is_audited_without_copying_the_description(make_user):
    officer = make_user("compliance_officer")
    case = make_case("app-7")
    incident = incident_create(actor=officer, system=case.system, kind="serious_harm", aware_at=AWARE,
                               description="Applicant Jane Roe was refused wrongly.", case=case, title="Wrong refusal")
    assert incident.created_by == officer
    assert incident.status == IncidentStatus.AWARE
    assert incident.history.get().history_user == officer
    event = AuditEvent.objects.get(action="incident.created")
    assert (event.actor_name, event.object_type, event.object_id) == (officer.username, "incident", str(incident.pk))
    assert (event.case_id, event.system_id) == (case.pk, case.system_id)
    assert "Jane Roe" not in event.payload
    assert '"kind":"serious_harm"' in event.payload
    assert '"report_due_at":"2026-03-17T09:30:00.000000Z"' in event.payload


def test_case_alone_gives_the_system(make_user):
    case = make_case("app-8")
    incident = incident_create(actor=make_user("compliance_officer"), system=None, kind="bias", aware_at=AWARE,
                               description="Skewed refusals.", case=case)
    assert incident.system_id == case.system_id


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"kind": "flood"}, "kind"),
        ({"description": "   "}, "description"),
        ({"aware_at": "yesterday"}, "aware_at"),
        ({"source": "rumour"}, "source"),
    ],
)
def test_create_refuses_bad_input_naming_the_field(make_user, overrides, field):
    case = make_case("app-9")
    values = dict(actor=make_user("compliance_officer"), system=case.system, kind="death", aware_at=AWARE,
                  description="Something happened.")
    values.update(overrides)
    with pytest.raises(ValidationError) as excinfo:
        incident_create(**values)
    assert field in excinfo.value.message_dict
    assert not Incident.objects.exists()
    assert not AuditEvent.objects.filter(action="incident.created").exists()


def test_awareness_in_the_future_is_refused(make_user):
    case = make_case("app-10")
    with pytest.raises(ValidationError) as excinfo:
        incident_create(actor=make_user("compliance_officer"), system=case.system, kind="death",
                        aware_at=timezone.now() + dt.timedelta(days=1), description="Typo in the date.")
    assert "aware_at" in excinfo.value.message_dict


def test_case_of_another_system_is_refused(make_user):
    case = make_case("app-11")
    other = make_case("tx-1", system="fraud-check", point="tx-review")
    with pytest.raises(ValidationError) as excinfo:
        incident_create(actor=make_user("compliance_officer"), system=other.system, kind="other", aware_at=AWARE,
                        description="Mismatch.", case=case)
    assert "case" in excinfo.value.message_dict


def test_status_flow_forward_with_timestamps_and_events(make_user):
    officer = make_user("compliance_officer")
    incident = file_incident(actor=officer, kind="death", aware_at=AWARE)
    incident = incident_update(actor=officer, incident=incident, status="initial_report",
                               note="Initial report sent to the market surveillance authority.")
    assert incident.status == "initial_report" and incident.initial_report_at is not None
    incident = incident_update(actor=officer, incident=incident, status="full_report", note="Full report sent.")
    assert incident.full_report_at is not None
    incident = incident_update(actor=officer, incident=incident, status="closed", note="Authority closed it.")
    assert incident.closed_at is not None
    events = list(AuditEvent.objects.filter(action="incident.updated").order_by("id"))
    assert [e.reason for e in events] == [
        "Initial report sent to the market surveillance authority.", "Full report sent.", "Authority closed it.",
    ]
    assert '"before":{"status":"aware"}' in events[0].payload
    assert "aware → initial_report — Initial report sent" in incident.notes
    assert incident.notes.count("\n") == 2
    assert all(h.history_user == officer for h in incident.history.all())


def test_initial_report_may_be_skipped(make_user):
    officer = make_user("compliance_officer")
    incident = file_incident(actor=officer, kind="serious_harm", aware_at=AWARE)
    incident = incident_update(actor=officer, incident=incident, status="full_report", note="Complete at once.")
    assert incident.initial_report_at is None and incident.full_report_at is not None
    # A report was filed, so the clock is met (late: the due date lies in the past).
    clock = incident_clock(incident)
    assert clock.state == "reported" and clock.late


@pytest.mark.parametrize(
    ("path", "target"),
    [
        (["initial_report"], "aware"),
        (["full_report"], "initial_report"),
        (["full_report", "closed"], "full_report"),
        ([], "closed"),  # a reportable incident closes only after its full report
        (["initial_report"], "closed"),
    ],
)
def test_no_backwards_moves_and_no_closing_unreported(make_user, path, target):
    officer = make_user("compliance_officer")
    incident = file_incident(actor=officer, kind="death", aware_at=AWARE)
    for status in path:
        incident = incident_update(actor=officer, incident=incident, status=status)
    before = AuditEvent.objects.filter(action="incident.updated").count()
    with pytest.raises(ValidationError) as excinfo:
        incident_update(actor=officer, incident=incident, status=target, note="try")
    assert "status" in excinfo.value.message_dict
    assert AuditEvent.objects.filter(action="incident.updated").count() == before


def test_bias_incident_may_close_without_reports(make_user):
    officer = make_user("compliance_officer")
    incident = file_incident(actor=officer, kind="bias", aware_at=AWARE)
    incident = incident_update(actor=officer, incident=incident, status="closed", note="Threshold recalibrated.")
    assert incident.status == "closed" and incident.closed_at is not None


def test_note_without_status_change_and_empty_update(make_user):
    officer = make_user("compliance_officer")
    incident = file_incident(actor=officer, kind="death", aware_at=AWARE)
    incident = incident_update(actor=officer, incident=incident, note="Called the provider.")
    assert incident.status == "aware" and "note — Called the provider." in incident.notes
    with pytest.raises(ValidationError) as excinfo:
        incident_update(actor=officer, incident=incident, status="aware", note="")
    assert "status" in excinfo.value.message_dict
    with pytest.raises(ValidationError) as excinfo:
        incident_update(actor=officer, incident=incident, status="solved")
    assert "status" in excinfo.value.message_dict


def test_clock_running_and_overdue():
    now = AWARE + dt.timedelta(days=1, hours=2, minutes=30)
    running = Incident(kind="critical_infrastructure", aware_at=AWARE, report_due_at=AWARE + dt.timedelta(days=2),
                       status="aware")
    clock = incident_clock(running, now=now)
    assert (clock.state, clock.text) == ("running", "Due in 21 h 30 min")
    late = incident_clock(running, now=AWARE + dt.timedelta(days=5))
    assert (late.state, late.text) == ("overdue", "Overdue by 3 d 0 h")
    assert is_overdue(running, now=AWARE + dt.timedelta(days=5))
    assert not is_overdue(running, now=now)


def _overdue_incident(officer, *, kind="death", days_ago=12):
    return file_incident(actor=officer, kind=kind, aware_at=timezone.now() - dt.timedelta(days=days_ago))


def test_overdue_alert_fires_once_and_emails_the_officers(make_user, django_capture_on_commit_callbacks):
    officer = make_user("compliance_officer", email="officer@example.org")
    make_user("compliance_officer", email="")  # no address: not mailed
    make_user("manager", email="manager@example.org")
    overdue = _overdue_incident(officer)
    _overdue_incident(officer, kind="serious_harm", days_ago=3)  # due in 12 days
    _overdue_incident(officer, kind="bias", days_ago=40)  # no clock
    reported = _overdue_incident(officer, kind="critical_infrastructure", days_ago=5)
    incident_update(actor=officer, incident=reported, status="initial_report")
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert incident_overdue_alerts_task.apply().get() == 1
    overdue.refresh_from_db()
    assert overdue.overdue_alerted_at is not None
    event = AuditEvent.objects.get(action="incident.updated", object_id=str(overdue.pk))
    assert (event.actor_type, event.actor_name) == ("system", SYSTEM_USERNAME)
    assert '"overdue_alert":true' in event.payload
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["officer@example.org"]
    assert f"incident #{overdue.pk}" in message.subject
    assert f"/compliance/incidents/{overdue.pk}/" in message.body
    # Idempotent: nothing new on the next run.
    with django_capture_on_commit_callbacks(execute=True):
        assert incident_overdue_alerts() == 0
    assert len(mail.outbox) == 1
    assert AuditEvent.objects.filter(action="incident.updated", object_id=str(overdue.pk)).count() == 1


def test_overdue_alert_without_any_officer_address_still_records(make_user, django_capture_on_commit_callbacks):
    officer = make_user("compliance_officer")
    overdue = _overdue_incident(officer, kind="widespread_infringement", days_ago=3)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert incident_overdue_alerts() == 1
    overdue.refresh_from_db()
    assert overdue.overdue_alerted_at is not None
    assert mail.outbox == []
