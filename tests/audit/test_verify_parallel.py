"""Chain verification split into segments between signed checkpoints, walked by worker processes.

The parallel walk must give the serial walk's ``VerifyResult`` to the message and the
counts: on an intact chain, and on chains broken in the first, a middle and the last
segment, at a boundary, by a gap, a truncation or a forged checkpoint. Where worker
processes cannot be started or die (or inside a transaction) it walks serially; in a daemonic
process (a Celery prefork child: the nightly task) it walks in parallel.

Real worker processes (spawned, on the test database, importing the test's snapshot):
the rows must be committed, hence ``transaction=True``.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from typing import Any

import billiard
import pytest
from django.db import connection, transaction
from django.utils import timezone

import audit.selectors as selectors
from audit import chain_workers
from audit.canonical import sha256_hex
from audit.models import AuditEvent, Checkpoint
from audit.selectors import VerifyResult, verify_chain
from audit.services import seal_pending
from audit.signing import checkpoint_statement, public_key, sign
from audit.witness import witness_checkpoint
from tests.audit.evidence_helpers import TABLE, audit_key_fixture, tamper  # noqa: F401
from tests.audit.factories import write_events

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("audit_key")]

EVENTS = 50
BOUNDARIES = (10, 20, 30, 40)  # the checkpoints the walk is split at; 41..50 is the tail


@pytest.fixture(name="parallel")
def parallel_fixture(settings: Any, monkeypatch: pytest.MonkeyPatch) -> list[selectors._Stretch | None]:
    """Walk in parallel from 1 event on, segments of 10; the list collects what each parallel walk returned."""
    settings.HITL_AUDIT_VERIFY_PARALLEL_MIN_EVENTS = 1
    settings.HITL_AUDIT_VERIFY_WORKERS = 2
    monkeypatch.setattr(selectors, "VERIFY_SEGMENT_MIN_EVENTS", 10)
    walks: list[selectors._Stretch | None] = []
    walk_segments = selectors._walk_segments

    def recorded(**kwargs: Any) -> selectors._Stretch | None:
        walks.append(walk_segments(**kwargs))
        return walks[-1]

    monkeypatch.setattr(selectors, "_walk_segments", recorded)
    return walks


def _chain(*, witnessed: bool = False) -> None:
    write_events(EVENTS)
    seal_pending()
    key = public_key()
    for seq in BOUNDARIES:
        digest = AuditEvent.objects.get(seq=seq).hash
        signed_at = timezone.now()
        checkpoint = Checkpoint.objects.create(
            seq=seq, hash=digest, signed_at=signed_at, key_fingerprint=key.fingerprint, public_key=key.hex,
            signature=sign(checkpoint_statement(seq=seq, hash=digest, signed_at=signed_at)),
        )
        if witnessed:
            assert witness_checkpoint(checkpoint)


def _serial(settings: Any) -> VerifyResult:
    settings.HITL_AUDIT_VERIFY_WORKERS = 1
    try:
        return verify_chain()
    finally:
        settings.HITL_AUDIT_VERIFY_WORKERS = 2


def _same_both_ways(settings: Any, walks: list[Any], **kwargs: Any) -> VerifyResult:
    """Verify in parallel (checking that it was) and serially; the two results must be equal."""
    parallel = verify_chain(**kwargs)
    assert walks and walks[-1] is not None, "the walk was not split"
    settings.HITL_AUDIT_VERIFY_WORKERS = 1
    try:
        serial = verify_chain(**kwargs)
    finally:
        settings.HITL_AUDIT_VERIFY_WORKERS = 2
    assert parallel == serial
    return parallel


def _tamper_checkpoint(sql: str, params: list[Any]) -> None:
    table = Checkpoint._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        try:
            cursor.execute(sql.format(table=table), params)
        finally:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def test_an_intact_chain_gives_the_serial_result(settings: Any, parallel: list[Any]) -> None:
    _chain()
    result = _same_both_ways(settings, parallel)
    assert (result.ok, result.events, result.checkpoints, result.last_checkpoint_seq) == (True, EVENTS, 4, 40)
    assert result.head_hash == AuditEvent.objects.get(seq=EVENTS).hash
    # The segments were the ones between the checkpoints.
    assert selectors._segment_bounds(0, None, 2) == [
        (seq, AuditEvent.objects.get(seq=seq).hash) for seq in BOUNDARIES
    ]
    # A stretch (the checkpoint service's after/up-to form) too.
    start = AuditEvent.objects.get(seq=5)
    part = _same_both_ways(settings, parallel, after_seq=5, after_hash=start.hash, up_to_seq=45)
    assert (part.ok, part.events, part.checkpoints, part.last_checkpoint_seq) == (True, 40, 4, 40)


@pytest.mark.parametrize("seq", [3, 25, 45], ids=["first-segment", "middle-segment", "last-segment"])
def test_a_tampered_payload_is_named_in_any_segment(settings: Any, parallel: list[Any], seq: int) -> None:
    _chain()
    tamper(f"UPDATE {TABLE} SET payload = %s WHERE seq = %s", ['{"data":{"n":999}}', seq])
    result = _same_both_ways(settings, parallel)
    assert (result.ok, result.first_bad_seq, result.events) == (False, seq, seq - 1)
    assert result.problem == "payload does not match its hash"
    assert result.checkpoints == (seq - 1) // 10


@pytest.mark.parametrize("seq", [30, 41], ids=["boundary", "tail-start"])
def test_a_changed_event_at_or_around_a_boundary(settings: Any, parallel: list[Any], seq: int) -> None:
    _chain()
    forged = '{"data":{"n":999}}'
    tamper(f"UPDATE {TABLE} SET payload = %s, payload_sha256 = %s WHERE seq = %s", [forged, sha256_hex(forged), seq])
    result = _same_both_ways(settings, parallel)
    assert (result.ok, result.first_bad_seq, result.problem) == (False, seq, "event hash does not match its contents")


def test_the_first_of_several_breaks_is_named(settings: Any, parallel: list[Any]) -> None:
    _chain()
    tamper(f"UPDATE {TABLE} SET actor_name = %s WHERE seq IN (17, 33, 48)", ["someone-else"])
    result = _same_both_ways(settings, parallel)
    assert (result.first_bad_seq, result.events, result.checkpoints) == (17, 16, 1)


@pytest.mark.parametrize("deleted", [[20], [11]], ids=["boundary", "segment-start"])
def test_a_gap_is_named_as_the_serial_walk_names_it(settings: Any, parallel: list[Any], deleted: list[int]) -> None:
    _chain()
    tamper(f"DELETE FROM {TABLE} WHERE seq = ANY(%s)", [deleted])
    result = _same_both_ways(settings, parallel)
    assert (result.ok, result.first_bad_seq) == (False, deleted[0])
    assert result.problem == f"sequence gap: expected {deleted[0]}, found {deleted[0] + 1}"


def test_a_truncated_chain_is_named(settings: Any, parallel: list[Any]) -> None:
    _chain()
    tamper(f"DELETE FROM {TABLE} WHERE seq >= 36")
    result = _same_both_ways(settings, parallel)
    assert (result.ok, result.first_bad_seq, result.events) == (False, 36, 35)
    assert "chain truncated: it ends at seq 35 but a signed checkpoint covers seq 40" in result.problem


@pytest.mark.parametrize("seq", [30])
def test_a_forged_checkpoint_hash_fails_where_the_serial_walk_fails(
    settings: Any, parallel: list[Any], seq: int
) -> None:
    _chain()
    # The next segment starts from the forged hash; the segment ending there must catch it first.
    _tamper_checkpoint("UPDATE {table} SET hash = %s WHERE seq = %s", ["f" * 64, seq])
    result = _same_both_ways(settings, parallel)
    assert (result.ok, result.first_bad_seq, result.events) == (False, seq, seq - 1)
    assert "invalid signature" in result.problem


def test_a_rewritten_history_re_signed_by_an_untrusted_key_fails(settings: Any, parallel: list[Any]) -> None:
    _chain()
    _tamper_checkpoint("UPDATE {table} SET key_fingerprint = %s WHERE seq = 30", ["0" * 64])
    result = _same_both_ways(settings, parallel)
    assert (result.first_bad_seq, result.checkpoints, result.last_checkpoint_seq) == (30, 2, 20)
    assert "untrusted key" in result.problem


def test_a_checkpoint_whose_hash_differs_from_the_chain(settings: Any, parallel: list[Any]) -> None:
    _chain()
    # Re-signed (with the trusted key) over a different hash: the signature holds, the chain does not match.
    forged, signed_at = "e" * 64, timezone.now()
    signature = sign(checkpoint_statement(seq=20, hash=forged, signed_at=signed_at))
    _tamper_checkpoint("UPDATE {table} SET hash = %s, signed_at = %s, signature = %s WHERE seq = 20",
                       [forged, signed_at, signature])
    result = _same_both_ways(settings, parallel)
    assert (result.first_bad_seq, result.events, result.checkpoints) == (20, 19, 1)
    assert result.problem == (
        "chain hash at seq 20 differs from the signed checkpoint: history after seq 10 was rewritten"
    )


def _in_a_daemonic_process(conn: Any, walks: list[Any]) -> None:
    """Verify in a daemonic child as Celery's prefork pool makes them; send back what happened."""
    try:
        result = verify_chain()
        # ``walks`` is the child's copy of the recording list: did its walk split?
        conn.send((multiprocessing.current_process().daemon, bool(walks) and walks[-1] is not None, result))
    except BaseException as exc:  # reported to the test, which fails on it
        conn.send((None, None, repr(exc)))
    finally:
        connection.close()


def test_a_daemonic_process_walks_in_parallel(settings: Any, parallel: list[Any]) -> None:
    """The nightly task runs in a Celery prefork child: daemonic, with billiard's process object."""
    _chain()
    tamper(f"UPDATE {TABLE} SET reason = %s WHERE seq = 33", ["changed"])
    expected = _serial(settings)
    connection.close()  # the child opens its own connection, not a copy of this one
    context = billiard.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_in_a_daemonic_process, args=(sender, parallel), daemon=True)
    child.start()
    try:
        assert receiver.poll(120), "the daemonic child did not answer"
        daemonic, split, result = receiver.recv()
    finally:
        child.join(30)
    assert daemonic is True, result
    assert split is True, "the daemonic process walked serially"
    assert result == expected and result.first_bad_seq == 33
    assert child.exitcode == 0


def test_an_embedding_server_walks_serially(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.HITL_AUDIT_VERIFY_WORKERS = 2
    assert selectors._parallel_workers() == 2
    monkeypatch.setattr(selectors.sys, "executable", "/usr/sbin/uwsgi")
    assert selectors._parallel_workers() == 1


def test_when_workers_cannot_start_the_walk_is_serial(
    settings: Any, parallel: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _chain()
    tamper(f"UPDATE {TABLE} SET reason = %s WHERE seq = 27", ["changed"])
    expected = _serial(settings)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise OSError(11, "Resource temporarily unavailable")  # fork refused: the process limit

    monkeypatch.setattr(chain_workers.subprocess, "Popen", refused)
    result = verify_chain()
    assert parallel == [None]  # the parallel walk gave up, the serial one answered
    assert result == expected and result.first_bad_seq == 27


@pytest.mark.parametrize("dies", ["at_start", "mid_walk", "garbled_answer", "huge_header"])
def test_when_a_worker_dies_the_walk_is_serial(
    settings: Any, parallel: list[Any], monkeypatch: pytest.MonkeyPatch, dies: str
) -> None:
    _chain()
    tamper(f"UPDATE {TABLE} SET reason = %s WHERE seq = 27", ["changed"])
    expected = _serial(settings)
    # A worker killed (out of memory) after taking its first segment, or one that cannot set up.
    # Or one whose answer cannot be read (it then waits for the end of its input, as a live worker does).
    program = {
        "at_start": "import sys; sys.stdin.buffer.read(4); sys.exit(3)",
        "mid_walk": "import os, sys; from audit import chain_workers as w; w._receive(sys.stdin.buffer); "
                    "w._receive(sys.stdin.buffer); os.kill(os.getpid(), 9)",
        "garbled_answer": "import os, sys; from audit import chain_workers as w; w._receive(sys.stdin.buffer); "
                          "w._receive(sys.stdin.buffer); os.write(int(sys.argv[1]), b'\\x00\\x00\\x00\\x03abc'); "
                          "sys.stdin.buffer.read()",
        # A length no answer has (text where a frame was expected): refused, not awaited.
        "huge_header": "import os, sys; from audit import chain_workers as w; w._receive(sys.stdin.buffer); "
                       "w._receive(sys.stdin.buffer); os.write(int(sys.argv[1]), b'Hello from startup'); "
                       "sys.stdin.buffer.read()",
    }[dies]
    monkeypatch.setattr(chain_workers, "_worker_command", lambda: [sys.executable, "-c", program])
    started = _record_workers(monkeypatch)
    result = verify_chain()
    assert parallel == [None]
    assert result == expected and result.first_bad_seq == 27
    assert started and all(process.poll() is not None for process in started)  # none left behind


def test_what_a_worker_prints_does_not_reach_its_answers(
    settings: Any, parallel: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _chain()
    tamper(f"UPDATE {TABLE} SET reason = %s WHERE seq = 27", ["changed"])
    # As a sitecustomize, a .pth file or a chatty library would, before and during the walk.
    program = ("import runpy, sys; print('noise'); sys.stdout.flush(); "
               "runpy.run_module('audit.chain_workers', run_name='__main__')")
    monkeypatch.setattr(chain_workers, "_worker_command", lambda: [sys.executable, "-c", program])
    result = _same_both_ways(settings, parallel)
    assert result.first_bad_seq == 27


def test_workers_are_stopped_when_an_early_segment_fails(
    settings: Any, parallel: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _chain()
    tamper(f"UPDATE {TABLE} SET reason = %s WHERE seq = 3", ["changed"])
    started = _record_workers(monkeypatch)
    result = _same_both_ways(settings, parallel)
    assert result.first_bad_seq == 3
    assert len(started) == 2 and all(process.poll() is not None for process in started)


def _record_workers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The worker processes the walks start (to check that none outlives its walk)."""
    started: list[Any] = []
    popen = chain_workers.subprocess.Popen

    def recorded(*args: Any, **kwargs: Any) -> Any:
        started.append(popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(chain_workers.subprocess, "Popen", recorded)
    return started


def test_inside_a_transaction_the_walk_is_serial(settings: Any, parallel: list[Any]) -> None:
    _chain()
    expected = _serial(settings)
    with transaction.atomic():
        assert selectors._parallel_workers() == 1
        assert verify_chain() == expected
    assert parallel == []


def test_the_witness_is_compared_across_segments(settings: Any, parallel: list[Any]) -> None:
    _chain(witnessed=True)
    result = _same_both_ways(settings, parallel)
    assert (result.ok, result.witness_checked, result.witnessed_checkpoints, result.last_witnessed_seq) == (
        True, True, 4, 40)
    # A witnessed checkpoint gone from the database (the split then skips it).
    _tamper_checkpoint("DELETE FROM {table} WHERE seq = %s", [30])
    result = _same_both_ways(settings, parallel)
    assert (result.ok, result.first_bad_seq, result.events) == (False, 30, EVENTS)
    assert result.problem == "the signed checkpoint at seq 30 held by the witness is missing from the database"


def test_the_workers_read_the_snapshot_the_walk_began_with(
    settings: Any, parallel: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _chain()
    segment_bounds = selectors._segment_bounds

    def then_more_events(*args: Any) -> list[tuple[int, str]]:
        found = segment_bounds(*args)

        # Committed by another connection after the walk's snapshot was taken, before
        # the workers start: no worker may see them (the last segment is unbounded).
        def write() -> None:
            try:
                write_events(5)
                seal_pending()
            finally:
                connection.close()

        writer = threading.Thread(target=write)
        writer.start()
        writer.join()
        return found

    monkeypatch.setattr(selectors, "_segment_bounds", then_more_events)
    result = verify_chain()
    assert parallel and parallel[-1] is not None
    assert (result.ok, result.events, result.head_hash) == (True, EVENTS, AuditEvent.objects.get(seq=EVENTS).hash)
    assert AuditEvent.objects.filter(seq__isnull=False).count() == EVENTS + 5
