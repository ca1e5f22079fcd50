"""The nightly verification task: records each run, and files one incident per break."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent, Checkpoint
from audit.services import seal_pending
from audit.signing import public_key
from audit.tasks import verify_nightly_task
from incidents.models import Incident
from tests.audit.evidence_helpers import TABLE, audit_key_fixture, tamper  # noqa: F401
from tests.audit.factories import write_events

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("audit_key")]


def _forge_checkpoint(seq: int) -> None:
    """A checkpoint whose signature is not the portal's (inserting one is all a forger can do)."""
    key = public_key()
    Checkpoint.objects.create(seq=seq, hash=AuditEvent.objects.get(seq=seq).hash, signed_at=timezone.now(),
                              signature="ab" * 64, key_fingerprint=key.fingerprint, public_key=key.hex)


def test_nightly_verification_of_an_intact_chain_is_recorded_without_incident() -> None:
    write_events(3)
    report = verify_nightly_task.delay().get()
    assert report["ok"] is True and report["events"] == 3 and report["first_bad_seq"] is None
    event = AuditEvent.objects.get(action="audit.verified")
    assert event.actor_type == "system" and event.actor_name == "hitl-system"
    assert json.loads(event.payload)["data"]["ok"] is True
    assert not Incident.objects.exists()


def test_a_broken_chain_files_one_incident_per_break() -> None:
    write_events(4)
    seal_pending()
    _forge_checkpoint(3)
    report = verify_nightly_task.delay().get()
    assert (report["ok"], report["first_bad_seq"]) == (False, 3)
    incident = Incident.objects.get()
    assert (incident.kind, incident.source, incident.system_id) == ("other", "chain_verification", None)
    assert incident.source_ref == "seq:3" and "seq 3" in incident.title
    assert "invalid signature" in incident.description
    assert incident.report_due_at is None
    assert AuditEvent.objects.filter(action="incident.created").count() == 1
    verified = AuditEvent.objects.get(action="audit.verified")
    assert verified.object_id == "3" and json.loads(verified.payload)["data"]["ok"] is False
    # The next night the same break is already on file: recorded again, filed once.
    verify_nightly_task.delay().get()
    assert Incident.objects.count() == 1
    assert AuditEvent.objects.filter(action="audit.verified").count() == 2


def test_a_closed_incident_does_not_silence_the_same_break() -> None:
    write_events(2)
    seal_pending()
    _forge_checkpoint(2)
    verify_nightly_task()
    Incident.objects.update(status="closed")
    verify_nightly_task()
    assert Incident.objects.count() == 2


def test_verify_command_records_and_files_on_request() -> None:
    write_events(2)
    seal_pending()
    _forge_checkpoint(1)
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit", "--record", stdout=out)
    assert exit_info.value.code == 1
    assert "first bad seq: 1" in out.getvalue() and "checkpoints: 0" in out.getvalue()
    assert Incident.objects.filter(source="chain_verification", source_ref="seq:1").count() == 1
    assert AuditEvent.objects.get(action="audit.verified").actor_type == "system"


@pytest.mark.postgres
def test_a_tampered_row_is_filed_as_an_incident_on_postgres() -> None:
    write_events(5)
    seal_pending()
    tamper(f"UPDATE {TABLE} SET reason = %s WHERE seq = 2", ["rewritten"])
    report = verify_nightly_task()
    assert (report["ok"], report["first_bad_seq"]) == (False, 2)
    assert Incident.objects.get().source_ref == "seq:2"


def test_beat_schedules_the_audit_tasks_by_their_registered_names() -> None:
    from django.conf import settings

    from hitl_portal.celery import app

    # What a worker does when it starts: import every app's tasks module (autodiscovery is lazy,
    # so without it the registry holds only what earlier tests happened to import).
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for name in ("audit.checkpoint", "audit.verify_nightly", "audit.purge_expired"):
        assert name in scheduled
        assert name in app.tasks
