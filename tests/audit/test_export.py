"""Export: the API and the command stream JSON Lines that the stdlib-only verifier checks offline."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.models import AuditEvent
from audit.services import checkpoint_sign, seal_pending
from audit.signing import manifest_statement, public_key, verify_signature
from tests.audit.evidence_helpers import (  # noqa: F401
    audit_key_fixture,
    media_root_fixture,
    new_private_pem,
    read_lines,
    run_verifier,
    write_public_key,
)
from tests.audit.factories import write_events

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("audit_key")]

EXPORT_URL = "/api/v1/audit/export/"


def _chain(count: int) -> None:
    write_events(count)
    seal_pending()


def _download(client: Any, tmp_path: Path, name: str = "export.jsonl", **params: Any) -> Path:
    response = client.get(EXPORT_URL, params)
    assert response.status_code == 200, response.content
    assert response.streaming
    assert response["Content-Type"].startswith("application/x-ndjson")
    path = tmp_path / name
    path.write_bytes(b"".join(response.streaming_content))
    return path


@pytest.fixture
def officer(api_client_for: Any) -> Any:
    return api_client_for("compliance_officer")


def test_export_is_a_signed_manifest_then_every_event(officer: Any, tmp_path: Path) -> None:
    _chain(5)
    checkpoint = checkpoint_sign()
    _chain(2)
    total = AuditEvent.objects.sealed().count()
    path = _download(officer, tmp_path)
    lines = read_lines(path)
    manifest, events = lines[0], lines[1:]
    assert manifest["record"] == "manifest" and manifest["format"] == "hitl-audit-export/1"
    assert manifest["count"] == len(events) == total
    assert manifest["range"]["first_seq"] == 1 and manifest["range"]["last_seq"] == total
    assert manifest["first_prev_hash"] == "0" * 64
    assert manifest["first_hash"] == events[0]["hash"] and manifest["last_hash"] == events[-1]["hash"]
    assert manifest["generated_at"].endswith("Z")
    assert manifest["public_key"]["raw_hex"] == public_key().hex
    assert manifest["checkpoints"] == [{
        "seq": checkpoint.seq, "hash": checkpoint.hash, "signed_at": manifest["checkpoints"][0]["signed_at"],
        "signature": checkpoint.signature, "key_fingerprint": checkpoint.key_fingerprint,
    }]
    assert verify_signature(public_key().raw, manifest_statement(manifest), manifest["signature"])
    stored = AuditEvent.objects.get(seq=3)
    assert events[2]["seq"] == 3 and events[2]["record"] == "event"
    assert events[2]["payload"] == stored.payload  # the text as stored, as a string
    assert events[2]["hash"] == stored.hash and events[2]["at"].endswith("Z")


def test_export_is_audited(officer: Any, tmp_path: Path) -> None:
    _chain(3)
    total = AuditEvent.objects.sealed().count()
    _download(officer, tmp_path)
    event = AuditEvent.objects.get(action="audit.exported")
    assert event.actor_id == officer.user.pk and event.actor_type == "user"
    data = json.loads(event.payload)["data"]
    assert (data["first_seq"], data["last_seq"], data["count"], data["destination"]) == (1, total, total, "api")


def test_offline_verifier_accepts_the_export_with_the_published_key(officer: Any, tmp_path: Path) -> None:
    _chain(6)
    checkpoint_sign()
    _chain(3)
    total = AuditEvent.objects.sealed().count()
    path = _download(officer, tmp_path)
    keys = write_public_key(tmp_path)
    for key in (str(keys["pem"]), str(keys["hex"]), str(keys["base64"])):
        result = run_verifier(path, "--key", key)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith(f"OK: {total} events (seq 1–{total}), 1 checkpoints matched")
        assert "signatures verified" in result.stdout
    unsigned = run_verifier(path, "--no-signatures")
    assert unsigned.returncode == 0
    assert "signatures not checked (--no-signatures)" in unsigned.stdout


def test_one_changed_byte_fails_and_names_the_line(officer: Any, tmp_path: Path) -> None:
    _chain(6)
    path = _download(officer, tmp_path)
    data = bytearray(path.read_bytes())
    lines = data.split(b"\n")
    # Change one byte of the 4th event's object label (line 5 of the file).
    target = lines[4]
    at = target.index(b'"object_label":"') + len(b'"object_label":"')
    target[at:at + 1] = b"Y" if target[at:at + 1] != b"Y" else b"Z"
    lines[4] = target
    path.write_bytes(b"\n".join(lines))
    result = run_verifier(path, "--key", str(write_public_key(tmp_path)["pem"]))
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL at line 5, seq 4: event hash does not match its contents")


def test_a_changed_payload_byte_and_a_removed_line_fail(officer: Any, tmp_path: Path) -> None:
    _chain(4)
    path = _download(officer, tmp_path)
    original = path.read_bytes()
    lines = original.split(b"\n")
    assert b'\\"n\\":0' in lines[2]  # seq 2: the first written event
    lines[2] = lines[2].replace(b'\\"n\\":0', b'\\"n\\":1', 1)
    path.write_bytes(b"\n".join(lines))
    result = run_verifier(path, "--no-signatures")
    assert result.returncode == 1 and "line 3, seq 2: payload does not match" in result.stdout
    # An event removed from the middle: the gap is named.
    lines = original.split(b"\n")
    del lines[2]
    path.write_bytes(b"\n".join(lines))
    result = run_verifier(path, "--no-signatures")
    assert result.returncode == 1 and "line 3, seq 3: sequence gap: expected seq 2" in result.stdout
    # The tail cut off: the manifest's count no longer matches; the first missing seq is named.
    lines = original.split(b"\n")
    total = AuditEvent.objects.sealed().count()
    path.write_bytes(b"\n".join(lines[:-2]) + b"\n")
    result = run_verifier(path, "--no-signatures")
    assert result.returncode == 1
    assert f"seq {total}: the manifest announces {total} events" in result.stdout


def test_a_forged_checkpoint_signature_in_an_export_fails(officer: Any, tmp_path: Path) -> None:
    _chain(3)
    checkpoint_sign()
    path = _download(officer, tmp_path)
    lines = path.read_text(encoding="utf-8").split("\n")
    manifest = json.loads(lines[0])
    signature = manifest["checkpoints"][0]["signature"]
    manifest["checkpoints"][0]["signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    lines[0] = json.dumps(manifest, ensure_ascii=False, separators=(",", ":"))
    path.write_text("\n".join(lines), encoding="utf-8")
    key = str(write_public_key(tmp_path)["pem"])
    result = run_verifier(path, "--key", key)
    assert result.returncode == 1
    # The manifest is signed as a whole, so its signature fails first.
    assert "line 1" in result.stdout and "signature" in result.stdout
    # A forger who re-signs the manifest with their own key still fails against the published key.
    forger = new_private_pem()
    from cryptography.hazmat.primitives import serialization

    forger_key = serialization.load_pem_private_key(forger.encode(), password=None)
    manifest["signature"] = forger_key.sign(manifest_statement(manifest)).hex()
    lines[0] = json.dumps(manifest, ensure_ascii=False, separators=(",", ":"))
    path.write_text("\n".join(lines), encoding="utf-8")
    result = run_verifier(path, "--key", key)
    assert result.returncode == 1 and "manifest's signature does not verify" in result.stdout


def test_a_checkpoint_that_disagrees_with_the_events_fails(officer: Any, tmp_path: Path, settings: Any) -> None:
    _chain(3)
    seq = checkpoint_sign().seq
    path = _download(officer, tmp_path)
    lines = path.read_text(encoding="utf-8").split("\n")
    manifest = json.loads(lines[0])
    manifest["checkpoints"][0]["hash"] = "f" * 64
    manifest.pop("signature")
    lines[0] = json.dumps(manifest)
    path.write_text("\n".join(lines), encoding="utf-8")
    result = run_verifier(path, "--no-signatures")
    assert result.returncode == 1
    assert f"line {seq + 1}, seq {seq}: the event differs from the signed checkpoint" in result.stdout


def test_an_export_that_starts_mid_chain_verifies_from_its_first_prev_hash(officer: Any, tmp_path: Path) -> None:
    _chain(8)
    checkpoint_sign()
    path = _download(officer, tmp_path, **{"from": "3", "to": "6"})
    lines = read_lines(path)
    assert [line["seq"] for line in lines[1:]] == [3, 4, 5, 6]
    assert lines[0]["first_prev_hash"] == AuditEvent.objects.get(seq=2).hash
    assert lines[0]["checkpoints"] == []  # the checkpoint (seq 8) is outside the range
    result = run_verifier(path, "--key", str(write_public_key(tmp_path)["hex"]))
    assert result.returncode == 0, result.stdout
    assert "4 events (seq 3–6)" in result.stdout


def test_export_by_time_range(officer: Any, tmp_path: Path) -> None:
    _chain(3)
    first = AuditEvent.objects.get(seq=1).at
    path = _download(officer, tmp_path, **{"from": first.isoformat(), "to": "2999-01-01"})
    assert read_lines(path)[0]["count"] == AuditEvent.objects.sealed().count()
    empty = _download(officer, tmp_path, name="empty.jsonl", **{"from": "2999-01-01T00:00:00Z"})
    lines = read_lines(empty)
    assert len(lines) == 1 and lines[0]["count"] == 0
    assert run_verifier(empty, "--no-signatures").returncode == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-45"}, "to"),
        ({"from": "9", "to": "3"}, "to"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "to"),
        ({"from": "1" * 30}, "from"),
        ({"from": "a\x00b"}, "from"),
    ],
)
def test_bad_range_is_a_400_naming_the_field(officer: Any, params: dict[str, str], field: str) -> None:
    response = officer.get(EXPORT_URL, params)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize("role", ["compliance_officer", "admin"])
def test_export_allowed_roles(api_client_for: Any, role: str) -> None:
    response = api_client_for(role).get(EXPORT_URL)
    assert response.status_code == 200
    assert json.loads(b"".join(response.streaming_content).split(b"\n")[0])["record"] == "manifest"


@pytest.mark.parametrize("role", ["manager", "reviewer", "integration"])
def test_export_denied_roles(api_client_for: Any, role: str) -> None:
    response = api_client_for(role).get(EXPORT_URL)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_export_unauthenticated(anon_client: Any) -> None:
    assert anon_client.get(EXPORT_URL).status_code == 401


def test_export_streams_with_bounded_queries(officer: Any, django_assert_max_num_queries: Any) -> None:
    _chain(30)
    response = officer.get(EXPORT_URL)
    # Consuming the stream costs a fixed number of queries whatever the row count
    # (the rows arrive in chunks from one cursor on PostgreSQL).
    with django_assert_max_num_queries(6 if connection.vendor == "postgresql" else 3):
        body = b"".join(response.streaming_content)
    assert body.count(b"\n") == 1 + AuditEvent.objects.sealed().count()


# --- The command ------------------------------------------------------------------------------


def test_export_command_writes_a_file_and_records_its_digest(media_root: Path, tmp_path: Path) -> None:
    _chain(4)
    checkpoint_sign()
    out = StringIO()
    call_command("export_audit", stdout=out)
    text = out.getvalue()
    assert "exported 4 events to" in text  # the checkpoint's own event is not sealed yet
    path = Path(text.split("exported 4 events to ", 1)[1].split("\n", 1)[0])
    assert path.parent == media_root / "audit-exports"
    import hashlib

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert f"sha256: {digest}" in text
    event = AuditEvent.objects.get(action="audit.exported")
    data = json.loads(event.payload)["data"]
    assert data["sha256"] == digest and data["destination"] == str(path) and event.actor_type == "system"
    result = run_verifier(path, "--key", str(write_public_key(tmp_path)["pem"]))
    assert result.returncode == 0, result.stdout


def test_export_command_range_to_a_given_file(tmp_path: Path) -> None:
    _chain(5)
    target = tmp_path / "part.jsonl"
    call_command("export_audit", "--from", "2", "--to", "4", "--output", str(target), stdout=StringIO())
    assert [line["seq"] for line in read_lines(target)[1:]] == [2, 3, 4]
    assert run_verifier(target, "--no-signatures").returncode == 0
    with pytest.raises(CommandError, match="from"):
        call_command("export_audit", "--from", "soon", stdout=StringIO())


def test_purged_payloads_still_verify(officer: Any, tmp_path: Path) -> None:
    _chain(3)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {AuditEvent._meta.db_table} SET payload = NULL WHERE seq = 2")
    path = _download(officer, tmp_path)
    assert read_lines(path)[2]["payload"] is None
    result = run_verifier(path, "--no-signatures")
    assert result.returncode == 0, result.stdout
    assert "1 payloads purged or omitted" in result.stdout


def test_export_command_streams_to_standard_output(capsysbinary: Any) -> None:
    _chain(2)
    call_command("export_audit", "--output", "-")
    lines = capsysbinary.readouterr().out.decode("utf-8").splitlines()
    assert json.loads(lines[0])["count"] == 2 and len(lines) == 3
    assert json.loads(AuditEvent.objects.get(action="audit.exported").payload)["data"]["destination"] == "stdout"


def test_the_verifier_refuses_to_run_without_a_key_unless_told(officer: Any, tmp_path: Path) -> None:
    _chain(3)
    path = _download(officer, tmp_path)
    result = run_verifier(path)
    assert result.returncode == 2
    assert "--key" in result.stderr and "--no-signatures" in result.stderr
    assert "OK" not in result.stdout
    assert run_verifier(path, "--no-signatures").returncode == 0


def test_the_verifier_compares_an_export_with_the_witness(
    officer: Any, tmp_path: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from audit.witness import FILE_NAME

    _chain(4)
    with django_capture_on_commit_callbacks(execute=True):
        checkpoint = checkpoint_sign()
    assert checkpoint is not None
    _chain(2)
    witness = Path(settings.HITL_AUDIT_WITNESS.removeprefix("file://")) / FILE_NAME
    key = str(write_public_key(tmp_path)["pem"])
    path = _download(officer, tmp_path)
    result = run_verifier(path, "--key", key, "--witness", str(witness))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "witness: 1 witnessed checkpoints matched" in result.stdout
    # An export that stops before the witnessed head says so.
    early = _download(officer, tmp_path, "early.jsonl", to=str(checkpoint.seq - 1))
    result = run_verifier(early, "--key", key, "--witness", str(witness))
    assert result.returncode == 0 and f"up to seq {checkpoint.seq}" in result.stdout
    # A forged witness line is refused with the key.
    forged = witness.read_text().replace(checkpoint.signature, "00" * 64)
    bad = tmp_path / "bad-witness.jsonl"
    bad.write_text(forged)
    result = run_verifier(path, "--key", key, "--witness", str(bad))
    assert result.returncode == 1 and "FAIL at the witness" in result.stdout and "invalid signature" in result.stdout
    # An export whose event differs from the witnessed head fails at that event.
    lines = path.read_text(encoding="utf-8").split("\n")
    record = json.loads(lines[checkpoint.seq])
    assert record["seq"] == checkpoint.seq
    witness_other = tmp_path / "other-witness.jsonl"
    witness_other.write_text(witness.read_text().replace(checkpoint.hash, "ab" * 32))
    result = run_verifier(path, "--no-signatures", "--witness", str(witness_other))
    assert result.returncode == 1 and "differs from the witnessed checkpoint" in result.stdout
