"""Audit chain pieces that run on both databases: the beat task, the verify command, SQLite guards."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.selectors import verify_chain
from audit.services import seal_pending
from audit.tasks import seal_pending_task
from tests.audit.factories import write_events


def test_seal_task_has_the_name_beat_schedules() -> None:
    assert seal_pending_task.name == "audit.seal_pending"
    assert seal_pending_task.ignore_result is True
    assert settings.CELERY_BEAT_SCHEDULE["audit-seal"]["task"] == seal_pending_task.name


@pytest.mark.django_db
def test_seal_task_seals_pending_events() -> None:
    # Inside the test transaction nothing commits, so the inline sealer never
    # runs: exactly the backlog beat exists to sweep.
    write_events(3)
    assert AuditEvent.objects.filter(seq__isnull=True).count() == 3
    assert seal_pending_task.apply().get() == 3
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == [1, 2, 3]
    assert verify_chain().ok


@pytest.mark.django_db
def test_verify_audit_command_reports_an_intact_chain() -> None:
    write_events(2)
    out = StringIO()
    call_command("verify_audit", "--seal", stdout=out)
    text = out.getvalue()
    assert "ok: true" in text
    assert "events: 2" in text
    assert f"head: {AuditEvent.objects.get(seq=2).hash}" in text
    assert "first bad seq: -" in text

    out = StringIO()
    call_command("verify_audit", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {
        "ok": True,
        "events": 2,
        "head_hash": AuditEvent.objects.get(seq=2).hash,
        "first_bad_seq": None,
        "problem": "",
        "checkpoints": 0,
        "last_checkpoint_seq": None,
        "witness": "file",
        "witness_checked": True,
        "witnessed_checkpoints": 0,
        "last_witnessed_seq": None,
    }


@pytest.mark.django_db
def test_verify_audit_on_an_empty_trail() -> None:
    out = StringIO()
    call_command("verify_audit", stdout=out)
    assert "ok: true" in out.getvalue()
    assert "events: 0" in out.getvalue()


@pytest.mark.sqlite_only
@pytest.mark.django_db
def test_sqlite_guard_refuses_update_and_delete_but_allows_purge() -> None:
    write_events(3)
    seal_pending()
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        # The test set-up lets the runner empty the table through this bypass
        # row; remove it (rolled back with the test) to see production's guard.
        cursor.execute("DELETE FROM audit_guard_bypass")
        for sql in (
            f"UPDATE {table} SET reason = 'rewritten' WHERE seq = 2",
            f"UPDATE {table} SET hash = 'x' WHERE seq = 2",
            f"DELETE FROM {table} WHERE seq = 2",
        ):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                cursor.execute(sql)
        cursor.execute(f"UPDATE {table} SET payload = NULL WHERE seq = 2")
    assert AuditEvent.objects.get(seq=2).payload is None
    assert verify_chain().ok
