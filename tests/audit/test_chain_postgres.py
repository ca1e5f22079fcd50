"""The audit chain on PostgreSQL: concurrent writers, database guards, tamper detection, sealing."""

from __future__ import annotations

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.selectors import verify_chain
from audit.services import record_event, seal_pending
from audit.tasks import seal_pending_task
from tests.audit.factories import write_events

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TABLE = AuditEvent._meta.db_table


def _tamper(sql: str, params: list[object]) -> None:
    """Change rows behind the app's back, as a database superuser could."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER audit_event_append_only")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER audit_event_append_only")


def test_concurrent_writers_make_one_gap_free_chain() -> None:
    threads_count, per_thread = 8, 40
    start = threading.Barrier(threads_count)
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            start.wait()
            for index in range(per_thread):
                # Many small transactions, each one state change with its event;
                # the inline after-commit sealer runs (or yields) after each commit.
                with transaction.atomic():
                    record_event(
                        "system.updated",
                        actor=None,
                        object_type="aisystem",
                        object_id=worker,
                        data={"worker": worker, "index": index},
                    )
                if index % 10 == 9:
                    # Some writers also sweep like beat does, waiting for the lock.
                    seal_pending(wait=True)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(worker,)) for worker in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    seal_pending()
    total = threads_count * per_thread
    assert AuditEvent.objects.filter(seq__isnull=True).count() == 0
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, total + 1))
    prev_hashes = list(AuditEvent.objects.values_list("prev_hash", flat=True))
    assert len(set(prev_hashes)) == total  # no fork: no two events chain onto the same predecessor
    result = verify_chain()
    assert result.ok, result.problem
    assert result.events == total
    assert result.head_hash == AuditEvent.objects.get(seq=total).hash


def test_update_and_delete_are_refused_by_the_database() -> None:
    write_events(3)
    event = AuditEvent.objects.get(seq=2)
    refused = [
        (f"UPDATE {TABLE} SET reason = %s WHERE id = %s", ["rewritten", event.pk]),
        (f"UPDATE {TABLE} SET hash = %s WHERE id = %s", ["0" * 64, event.pk]),
        (f"UPDATE {TABLE} SET seq = 99 WHERE id = %s", [event.pk]),
        # A purge that also touches something else is no purge.
        (f"UPDATE {TABLE} SET payload = NULL, reason = 'x' WHERE id = %s", [event.pk]),
        (f"DELETE FROM {TABLE} WHERE id = %s", [event.pk]),
        (f"DELETE FROM {TABLE}", []),
    ]
    for sql, params in refused:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    assert AuditEvent.objects.count() == 3
    assert AuditEvent.objects.get(seq=2).reason == event.reason
    assert verify_chain().ok


def test_unsealed_event_cannot_be_rewritten_before_sealing(settings: object) -> None:
    settings.HITL_AUDIT_SEAL_ON_COMMIT = False  # type: ignore[attr-defined]
    (event,) = write_events(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET action = 'case.decided' WHERE id = %s", [event.pk])
    # Sealing itself is the one permitted update of an unsealed row.
    assert seal_pending() == 1
    assert verify_chain().ok


def test_truncate_is_refused_unless_the_test_bypass_is_on() -> None:
    write_events(2)
    with connection.cursor() as cursor:
        cursor.execute("SET hitl.allow_truncate = off")
        try:
            with pytest.raises(DatabaseError, match="TRUNCATE refused"), transaction.atomic():
                cursor.execute(f"TRUNCATE {TABLE}")
        finally:
            cursor.execute("SET hitl.allow_truncate = on")
    assert AuditEvent.objects.count() == 2


def test_verify_names_the_first_altered_event() -> None:
    write_events(5)
    _tamper(f"UPDATE {TABLE} SET reason = %s WHERE seq = 3", ["quietly rewritten"])
    result = verify_chain()
    assert result.ok is False
    assert result.first_bad_seq == 3
    assert result.events == 2
    assert result.head_hash == AuditEvent.objects.get(seq=2).hash
    assert "hash" in result.problem

    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit", stdout=out)
    assert exit_info.value.code == 1
    assert "ok: false" in out.getvalue()
    assert "first bad seq: 3" in out.getvalue()


def test_verify_detects_a_rewritten_payload_and_a_deleted_event() -> None:
    write_events(4)
    _tamper(f"UPDATE {TABLE} SET payload = %s WHERE seq = 4", ['{"data":{"n":999}}'])
    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "payload" in result.problem

    _tamper(f"DELETE FROM {TABLE} WHERE seq = 2", [])
    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "gap" in result.problem


def test_purging_a_payload_is_allowed_and_the_chain_still_verifies() -> None:
    write_events(3)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET payload = NULL WHERE seq = 2")
    purged = AuditEvent.objects.get(seq=2)
    assert purged.payload is None
    assert purged.payload_sha256  # the hash stays and anchors the chain
    result = verify_chain()
    assert result.ok, result.problem
    assert result.events == 3
    # A purged payload cannot come back (that would be a rewrite).
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET payload = '{{}}' WHERE seq = 2")


def test_events_are_sealed_inline_right_after_commit() -> None:
    with transaction.atomic():
        event = record_event("system.halted", actor=None, object_type="aisystem", object_id=1, reason="stop")
        event.refresh_from_db()
        assert event.seq is None  # not part of the chain before the transaction commits
    event.refresh_from_db()
    assert event.seq == 1
    assert event.hash and event.prev_hash == "0" * 64
    assert event.sealed_at is not None


def test_rolled_back_events_leave_no_gap() -> None:
    write_events(1)
    with pytest.raises(RuntimeError, match="business failure"), transaction.atomic():
        record_event("system.updated", actor=None, object_type="aisystem", object_id=2)
        raise RuntimeError("business failure")
    write_events(1)
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == [1, 2]
    assert verify_chain().ok


def test_beat_task_seals_what_inline_sealing_left(settings: object) -> None:
    settings.HITL_AUDIT_SEAL_ON_COMMIT = False  # type: ignore[attr-defined]
    write_events(3)
    assert AuditEvent.objects.filter(seq__isnull=True).count() == 3
    seal_pending_task.delay()
    assert AuditEvent.objects.filter(seq__isnull=True).count() == 0
    assert verify_chain().events == 3
    # Idempotent: a second run finds nothing to do.
    assert seal_pending_task() == 0


def test_record_event_refuses_to_run_outside_a_transaction() -> None:
    with pytest.raises(RuntimeError, match="transaction"):
        record_event("system.updated", actor=None, object_type="aisystem", object_id=1)
