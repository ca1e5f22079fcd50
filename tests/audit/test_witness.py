"""The external witness of signed checkpoints (``audit.witness``), and verification against it.

Tampering runs as a PostgreSQL superuser would: triggers disabled, rows deleted. What the
database alone can no longer show (a cut tail together with the checkpoints that vouched
for it, or an emptied chain) the witness still shows.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection

from audit.canonical import event_hash
from audit.models import AuditEvent, Checkpoint
from audit.selectors import verify_chain
from audit.services import checkpoint_sign, seal_pending
from audit.signing import checkpoint_statement, public_key, verify_signature
from audit.witness import FILE_NAME, WitnessUnavailable, current_witness, parse_record
from tests.audit.evidence_helpers import TABLE, audit_key_fixture  # noqa: F401
from tests.audit.factories import write_events

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("audit_key")]
CHECKPOINT_TABLE = Checkpoint._meta.db_table


def _chain(count: int) -> None:
    write_events(count)
    seal_pending(request_checkpoint=False)


def _checkpoint(capture: Any) -> Checkpoint:
    """Sign a checkpoint and run its after-commit step (the witness write) as a real commit would."""
    with capture(execute=True):
        checkpoint = checkpoint_sign()
    assert checkpoint is not None
    return checkpoint


def _witness_file() -> Path:
    return Path(django_settings.HITL_AUDIT_WITNESS.removeprefix("file://")) / FILE_NAME


def _superuser_sql(table: str, sql: str, params: list[Any] | None = None) -> None:
    """Run SQL with the table's guard triggers off, as a database superuser could."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        try:
            cursor.execute(sql, params or [])
        finally:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def _assert_fails(seq: int, fragment: str, api_client_for: Any) -> None:
    """The selector, the API and the command all fail, naming ``seq`` and the witness."""
    result = verify_chain()
    assert result.ok is False, result
    assert result.first_bad_seq == seq, result.problem
    assert fragment in result.problem
    body = api_client_for("compliance_officer").get("/api/v1/audit/verify/").json()
    assert (body["ok"], body["first_bad_seq"], body["problem"]) == (False, seq, result.problem)
    assert body["witness"] == "file" and body["witnessed_checkpoints"] >= 1
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit", stdout=out)
    assert exit_info.value.code == 1
    assert f"first bad seq: {seq}" in out.getvalue()
    assert "witness" in out.getvalue()


def test_each_checkpoint_is_appended_to_the_witness_file_signed(django_capture_on_commit_callbacks: Any) -> None:
    _chain(3)
    first = _checkpoint(django_capture_on_commit_callbacks)
    _chain(2)
    second = _checkpoint(django_capture_on_commit_callbacks)
    lines = _witness_file().read_text().splitlines()
    assert len(lines) == 2
    records = [parse_record(line) for line in lines]
    assert [(r.seq, r.hash) for r in records if r] == [(first.seq, first.hash), (second.seq, second.hash)]
    for record in records:
        assert record is not None
        statement = checkpoint_statement(seq=record.seq, hash=record.hash, signed_at=record.signed_at)
        assert verify_signature(public_key().raw, statement, record.signature)


def test_a_checkpoint_rolled_back_is_not_witnessed() -> None:
    # Inside the test's transaction nothing commits, so nothing may reach the witness.
    _chain(2)
    assert checkpoint_sign() is not None
    assert not _witness_file().exists()


def test_an_intact_chain_verifies_against_the_witness(
    django_capture_on_commit_callbacks: Any, api_client_for: Any
) -> None:
    _chain(4)
    checkpoint = _checkpoint(django_capture_on_commit_callbacks)
    _chain(3)
    result = verify_chain()
    assert result.ok, result.problem
    assert (result.witness, result.witness_checked, result.witnessed_checkpoints, result.last_witnessed_seq) == (
        "file", True, 1, checkpoint.seq
    )
    body = api_client_for("compliance_officer").get("/api/v1/audit/verify/").json()
    assert body["ok"] is True
    assert (body["witness"], body["witness_checked"], body["last_witnessed_seq"]) == ("file", True, checkpoint.seq)
    # The fields that were there before are all still there.
    assert {"ok", "events", "head_hash", "first_bad_seq", "problem", "checkpoints", "last_checkpoint_seq"} <= set(body)


def test_without_a_witness_verification_says_so(settings: Any, django_capture_on_commit_callbacks: Any) -> None:
    settings.HITL_AUDIT_WITNESS = "none"
    _chain(2)
    _checkpoint(django_capture_on_commit_callbacks)
    result = verify_chain()
    assert result.ok and result.witness == "none" and result.witness_checked is False


@pytest.mark.postgres
def test_deleting_the_tail_and_its_checkpoints_fails_against_the_witness(
    django_capture_on_commit_callbacks: Any, api_client_for: Any
) -> None:
    _chain(5)
    first = _checkpoint(django_capture_on_commit_callbacks)
    _chain(4)
    second = _checkpoint(django_capture_on_commit_callbacks)
    _chain(2)
    # The superuser cuts everything after the first checkpoint, and the second checkpoint
    # with it: every remaining link and checkpoint in the database is intact.
    _superuser_sql(TABLE, f"DELETE FROM {TABLE} WHERE seq > %s", [first.seq])
    _superuser_sql(CHECKPOINT_TABLE, f"DELETE FROM {CHECKPOINT_TABLE} WHERE seq > %s", [first.seq])
    assert verify_chain(check_witness=False).ok  # the database alone is fooled
    _assert_fails(first.seq + 1, f"the witness holds a signed checkpoint at seq {second.seq}", api_client_for)


@pytest.mark.postgres
def test_deleting_the_events_after_the_last_checkpoint_fails_against_the_witness(
    django_capture_on_commit_callbacks: Any, api_client_for: Any
) -> None:
    _chain(6)
    checkpoint = _checkpoint(django_capture_on_commit_callbacks)
    _chain(3)
    # Only the events are cut, down into the signed part: the checkpoint row is gone too
    # (as a careful attacker would do), so only the witness still knows seq 6.
    _superuser_sql(TABLE, f"DELETE FROM {TABLE} WHERE seq >= %s", [checkpoint.seq - 1])
    _superuser_sql(CHECKPOINT_TABLE, f"DELETE FROM {CHECKPOINT_TABLE}")
    assert verify_chain(check_witness=False).ok
    _assert_fails(checkpoint.seq - 1, f"ends at seq {checkpoint.seq - 2}", api_client_for)


@pytest.mark.postgres
def test_deleting_all_events_and_checkpoints_fails_against_the_witness(
    django_capture_on_commit_callbacks: Any, api_client_for: Any
) -> None:
    _chain(4)
    checkpoint = _checkpoint(django_capture_on_commit_callbacks)
    _superuser_sql(TABLE, f"DELETE FROM {TABLE}")
    _superuser_sql(CHECKPOINT_TABLE, f"DELETE FROM {CHECKPOINT_TABLE}")
    assert AuditEvent.objects.count() == 0 and Checkpoint.objects.count() == 0
    assert verify_chain(check_witness=False).ok  # an empty chain is "intact" by itself
    _assert_fails(1, f"the witness holds a signed checkpoint at seq {checkpoint.seq}", api_client_for)


@pytest.mark.postgres
def test_a_rewritten_history_re_signed_diverges_from_the_witness(
    django_capture_on_commit_callbacks: Any, api_client_for: Any
) -> None:
    _chain(5)
    checkpoint = _checkpoint(django_capture_on_commit_callbacks)
    # Rewrite seq 2, re-chain everything after it and drop the checkpoint that would show it.
    _superuser_sql(TABLE, f"UPDATE {TABLE} SET reason = %s WHERE seq = 2", ["nothing to see here"])
    prev = AuditEvent.objects.get(seq=1).hash
    for event in AuditEvent.objects.filter(seq__gte=2).order_by("seq"):
        new_hash = event_hash({**event.envelope(), "prev_hash": prev})
        _superuser_sql(TABLE, f"UPDATE {TABLE} SET prev_hash = %s, hash = %s WHERE id = %s", [prev, new_hash, event.pk])
        prev = new_hash
    _superuser_sql(CHECKPOINT_TABLE, f"DELETE FROM {CHECKPOINT_TABLE}")
    assert verify_chain(check_witness=False).ok
    _assert_fails(checkpoint.seq, "differs from the checkpoint the witness holds", api_client_for)


@pytest.mark.postgres
def test_a_deleted_checkpoint_row_is_missing_a_witnessed_head(
    django_capture_on_commit_callbacks: Any, api_client_for: Any
) -> None:
    _chain(3)
    checkpoint = _checkpoint(django_capture_on_commit_callbacks)
    _chain(2)
    _superuser_sql(CHECKPOINT_TABLE, f"DELETE FROM {CHECKPOINT_TABLE}")
    _assert_fails(checkpoint.seq, "held by the witness is missing from the database", api_client_for)


def test_a_forged_witness_line_is_named(django_capture_on_commit_callbacks: Any) -> None:
    _chain(3)
    checkpoint = _checkpoint(django_capture_on_commit_callbacks)
    _chain(3)
    head = AuditEvent.objects.order_by("-seq").first()
    assert head is not None
    forged = {"type": "hitl-audit-checkpoint/1", "seq": head.seq, "hash": head.hash,
              "signed_at": "2026-01-01T00:00:00.000000Z", "signature": "00" * 64,
              "key_fingerprint": checkpoint.key_fingerprint}
    with _witness_file().open("a") as handle:
        handle.write(json.dumps(forged) + "\n")
    result = verify_chain()
    assert result.ok is False and result.first_bad_seq == head.seq
    assert "no trusted key signed" in result.problem


def test_an_unreadable_witness_fails_verification(settings: Any, django_capture_on_commit_callbacks: Any) -> None:
    _chain(2)
    _checkpoint(django_capture_on_commit_callbacks)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.HITL_AUDIT_WITNESS = f"http://127.0.0.1:{port}/witness"
    result = verify_chain()
    assert result.ok is False and result.first_bad_seq is None
    assert result.problem.startswith("witness unreadable")


class _WitnessEndpoint(BaseHTTPRequestHandler):
    """A minimal HTTP witness: POST appends, GET returns JSON Lines."""

    received: list[bytes] = []
    authorizations: list[str | None] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(body)
        type(self).authorizations.append(self.headers.get("Authorization"))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        body = b"\n".join(type(self).received) + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def http_witness(settings: Any) -> Iterator[type[_WitnessEndpoint]]:
    _WitnessEndpoint.received = []
    _WitnessEndpoint.authorizations = []
    server = HTTPServer(("127.0.0.1", 0), _WitnessEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.HITL_AUDIT_WITNESS = f"http://127.0.0.1:{server.server_port}/witness"
    settings.HITL_AUDIT_WITNESS_TOKEN = "witness-secret"
    try:
        yield _WitnessEndpoint
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.postgres
def test_an_http_witness_receives_checkpoints_and_is_compared(
    http_witness: type[_WitnessEndpoint], django_capture_on_commit_callbacks: Any
) -> None:
    _chain(3)
    checkpoint = _checkpoint(django_capture_on_commit_callbacks)
    assert len(http_witness.received) == 1
    assert json.loads(http_witness.received[0])["seq"] == checkpoint.seq
    assert http_witness.authorizations == ["Bearer witness-secret"]
    result = verify_chain()
    assert result.ok and (result.witness, result.witness_checked, result.last_witnessed_seq) == (
        "http", True, checkpoint.seq
    )
    _superuser_sql(TABLE, f"DELETE FROM {TABLE} WHERE seq >= %s", [checkpoint.seq])
    _superuser_sql(CHECKPOINT_TABLE, f"DELETE FROM {CHECKPOINT_TABLE}")
    result = verify_chain()
    assert result.ok is False and result.first_bad_seq == checkpoint.seq
    assert "witness holds a signed checkpoint" in result.problem


def test_a_syslog_witness_gets_each_checkpoint_but_cannot_be_compared(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as collector:
        collector.bind(("127.0.0.1", 0))
        collector.settimeout(5)
        settings.HITL_AUDIT_WITNESS = f"syslog://127.0.0.1:{collector.getsockname()[1]}"
        _chain(2)
        checkpoint = _checkpoint(django_capture_on_commit_callbacks)
        message = collector.recv(65536).decode("utf-8")
    assert "hitl-audit-witness:" in message
    assert json.loads(message.split("hitl-audit-witness: ", 1)[1].rstrip("\x00"))["hash"] == checkpoint.hash
    result = verify_chain()
    assert result.ok and (result.witness, result.witness_checked) == ("syslog", False)
    with pytest.raises(WitnessUnavailable):
        list(current_witness().records())  # type: ignore[union-attr]


def test_a_witness_that_cannot_be_written_does_not_undo_the_checkpoint(
    settings: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the witness directory should be")
    settings.HITL_AUDIT_WITNESS = f"file://{blocker}"
    _chain(2)
    checkpoint = _checkpoint(django_capture_on_commit_callbacks)
    assert Checkpoint.objects.filter(pk=checkpoint.pk).exists()


def test_the_sealer_asks_for_a_checkpoint_after_enough_events(settings: Any) -> None:
    settings.HITL_AUDIT_CHECKPOINT_EVENTS = 5
    import audit.services as services

    services._last_checkpoint_request = 0.0
    write_events(3)
    seal_pending()
    assert Checkpoint.objects.count() == 0  # 3 < 5
    services._last_checkpoint_request = 0.0
    write_events(3)
    seal_pending()  # 6 unsigned events: the sealer queued a checkpoint (run eagerly here)
    assert list(Checkpoint.objects.values_list("seq", flat=True)) == [6]


def test_beat_signs_a_checkpoint_every_minute() -> None:
    assert django_settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]["schedule"] == 60.0
    assert django_settings.HITL_AUDIT_CHECKPOINT_EVENTS == 1000
