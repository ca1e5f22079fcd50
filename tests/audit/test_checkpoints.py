"""Signed checkpoints: signing, idempotence, verification (signatures, keys), the key file and the public page."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.models import AuditEvent, Checkpoint
from audit.selectors import verify_chain
from audit.services import checkpoint_sign, seal_pending
from audit.signing import checkpoint_statement, parse_public_key, public_key, sign, signing_key
from audit.tasks import checkpoint_task
from tests.audit.evidence_helpers import TEST_KEY_PEM, audit_key_fixture, new_private_pem  # noqa: F401
from tests.audit.factories import write_events

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("audit_key")]


def _payload(event: AuditEvent) -> dict[str, Any]:
    return json.loads(event.payload)


def test_checkpoint_signs_the_head_and_records_the_signature_in_the_chain() -> None:
    write_events(4)
    checkpoint = checkpoint_sign(actor=None)
    assert checkpoint is not None
    head = AuditEvent.objects.get(seq=4)
    assert (checkpoint.seq, checkpoint.hash) == (4, head.hash)
    key = public_key()
    assert checkpoint.public_key == key.hex and checkpoint.key_fingerprint == key.fingerprint
    # Anyone with the public key can check the statement (here with the cryptography package).
    statement = checkpoint_statement(seq=4, hash=head.hash, signed_at=checkpoint.signed_at)
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint.public_key)).verify(
        bytes.fromhex(checkpoint.signature), statement
    )
    assert json.loads(statement) == {
        "type": "hitl-audit-checkpoint/1", "seq": 4, "hash": head.hash,
        "signed_at": checkpoint.signed_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    event = AuditEvent.objects.get(action="audit.checkpoint_signed")
    assert event.actor_type == "system"
    assert (event.object_type, event.object_id) == ("checkpoint", str(checkpoint.pk))
    data = _payload(event)["data"]
    assert data["seq"] == 4 and data["signature"] == checkpoint.signature and data["events_verified"] == 4


def test_checkpoint_is_idempotent_and_skips_an_idle_chain() -> None:
    assert checkpoint_sign() is None  # empty chain: nothing to vouch for
    write_events(2)
    first = checkpoint_sign()
    assert first is not None and first.seq == 2
    seal_pending()
    # Only the checkpoint's own event arrived since: nothing new to sign.
    assert checkpoint_sign() is None
    forced = checkpoint_sign(force=True)
    assert forced is not None and forced.seq == 3
    write_events(1)
    later = checkpoint_sign()
    assert later is not None and later.seq == 5
    assert Checkpoint.objects.count() == 3
    assert AuditEvent.objects.filter(action="audit.checkpoint_signed").count() == 3
    seal_pending()
    result = verify_chain()
    assert result.ok, result.problem
    assert result.checkpoints == 3 and result.last_checkpoint_seq == 5


def test_beat_task_and_command_sign_checkpoints() -> None:
    write_events(2)
    assert checkpoint_task.delay().get() == 2
    assert checkpoint_task() is None
    write_events(1)
    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    assert "checkpoint signed at seq 4" in out.getvalue()
    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    assert "nothing new to sign" in out.getvalue()


def test_a_forged_checkpoint_signature_fails_verification() -> None:
    write_events(3)
    seal_pending()
    head = AuditEvent.objects.get(seq=3)
    key = public_key()
    signed_at = timezone.now()
    genuine = sign(checkpoint_statement(seq=3, hash=head.hash, signed_at=signed_at))
    forged = ("00" if genuine[:2] != "00" else "11") + genuine[2:]
    Checkpoint.objects.create(seq=3, hash=head.hash, signed_at=signed_at, signature=forged,
                              key_fingerprint=key.fingerprint, public_key=key.hex)
    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "invalid signature" in result.problem
    assert result.events == 2


def test_a_checkpoint_signed_by_an_unknown_key_fails_until_that_key_is_trusted(settings: Any) -> None:
    write_events(2)
    other_pem = new_private_pem()
    settings.HITL_AUDIT_SIGNING_KEY = other_pem
    old_key = public_key()
    checkpoint_sign()
    settings.HITL_AUDIT_SIGNING_KEY = TEST_KEY_PEM  # the key was rotated
    seal_pending()
    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "untrusted key" in result.problem
    # Publishing the retired key keeps its checkpoints verifiable.
    settings.HITL_AUDIT_RETIRED_PUBLIC_KEYS = [old_key.pem]
    assert verify_chain().ok


def test_checkpoint_refuses_to_sign_when_the_last_checkpoint_was_forged() -> None:
    from audit.services import ChainBroken

    write_events(2)
    seal_pending()
    head = AuditEvent.objects.get(seq=2)
    key = public_key()
    Checkpoint.objects.create(seq=2, hash=head.hash, signed_at=timezone.now(), signature="ab" * 64,
                              key_fingerprint=key.fingerprint, public_key=key.hex)
    write_events(1)
    with pytest.raises(ChainBroken, match="seq 2"):
        checkpoint_sign()
    assert Checkpoint.objects.count() == 1
    assert checkpoint_task() is None  # the beat task logs and signs nothing


def test_checkpoints_are_append_only() -> None:
    write_events(1)
    checkpoint = checkpoint_sign()
    assert checkpoint is not None
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            # The test set-up's bypass row lets the runner empty tables; remove it
            # (rolled back with the test) to see production's guard.
            cursor.execute("DELETE FROM audit_guard_bypass")
    for sql in ("UPDATE audit_checkpoint SET hash = 'x' WHERE id = %s", "DELETE FROM audit_checkpoint WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [checkpoint.pk])
    assert Checkpoint.objects.get(pk=checkpoint.pk).hash == checkpoint.hash


# --- The key ----------------------------------------------------------------------------------


def test_embedded_default_generates_a_private_key_file_readable_by_its_owner_only(
    settings: Any, tmp_path: Path
) -> None:
    settings.HITL_AUDIT_SIGNING_KEY = None
    settings.HITL_AUDIT_SIGNING_KEY_FILE = tmp_path / "keys" / "audit.pem"
    key = signing_key()
    path = settings.HITL_AUDIT_SIGNING_KEY_FILE
    assert path.exists()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in path.read_bytes()
    # The same key next time (read back, not generated again).
    assert signing_key().public_key().public_bytes_raw() == key.public_key().public_bytes_raw()


def test_production_never_invents_a_signing_key(settings: Any, tmp_path: Path) -> None:
    settings.HITL_AUDIT_SIGNING_KEY = None
    settings.HITL_AUDIT_SIGNING_KEY_FILE = tmp_path / "missing.pem"
    settings.PRODUCTION = True
    with pytest.raises(ImproperlyConfigured, match="HITL_AUDIT_SIGNING_KEY"):
        signing_key()
    assert not (tmp_path / "missing.pem").exists()


def test_a_key_that_is_not_ed25519_is_refused(settings: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    settings.HITL_AUDIT_SIGNING_KEY = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(ImproperlyConfigured, match="not an Ed25519 key"):
        signing_key()


def test_public_key_parses_from_pem_hex_and_base64() -> None:
    key = public_key()
    assert parse_public_key(key.pem) == key.raw
    assert parse_public_key(key.hex) == key.raw
    assert parse_public_key(key.base64) == key.raw
    with pytest.raises(ValueError):
        parse_public_key("abcd")


# --- The public page --------------------------------------------------------------------------


def test_public_key_page_is_public_and_hides_checkpoints_from_anonymous_visitors(client: Any) -> None:
    write_events(1)
    checkpoint_sign()
    key = public_key()
    response = client.get("/audit/public-key/")
    assert response.status_code == 200
    body = response.content.decode()
    assert key.hex in body and key.fingerprint in body and "BEGIN PUBLIC KEY" in body
    assert "Recent checkpoints" not in body
    pem = client.get("/audit/public-key/?format=pem")
    assert pem.status_code == 200
    loaded = serialization.load_pem_public_key(pem.content)
    assert loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == key.raw
    assert client.get("/audit/public-key/?format=hex").content.decode().strip() == key.hex
    assert client.post("/audit/public-key/").status_code == 405


@pytest.mark.parametrize(("role", "sees"), [("compliance_officer", True), ("admin", True), ("manager", False),
                                            ("reviewer", False)])
def test_public_key_page_lists_recent_checkpoints_for_officers(client: Any, make_user: Any, role: str,
                                                               sees: bool) -> None:
    write_events(1)
    checkpoint = checkpoint_sign()
    assert checkpoint is not None
    client.force_login(make_user(role))
    body = client.get("/audit/public-key/").content.decode()
    assert ("Recent checkpoints" in body) is sees
    assert (checkpoint.hash in body) is sees


def test_verify_api_reports_checkpoints(api_client_for: Any) -> None:
    write_events(2)
    checkpoint_sign()
    seal_pending()
    body = api_client_for("compliance_officer").get("/api/v1/audit/verify/").json()
    assert body["ok"] is True
    assert body["checkpoints"] == 1 and body["last_checkpoint_seq"] == 2
    assert body["events"] == 3


# --- The verifier's fast canonical encoding ------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        {"actor_name": 'quote " and backslash \\', "reason": "line\nbreak\ttab\x00nul\x1f",
         "object_label": "漢字 ä 🙂"},
        {"actor_id": None, "case_id": None, "system_id": None, "reason": ""},
        {"actor_id": 2**62, "case_id": 0, "system_id": 7, "object_id": "0042", "request_id": "\u2028\u2029"},
        {"actor_id": -5, "case_id": 2**63 - 1, "system_id": None, "seq": 2**40, "at": "\x7f\x1b"},
        {"prev_hash": None, "reason": None},  # impossible in a sealed row: the slow path must still agree
    ],
)
def test_fast_envelope_encoding_matches_canonical_json(values: dict[str, Any]) -> None:
    from audit.canonical import ENVELOPE_FIELDS, canonical_json, envelope_text

    envelope = {
        "seq": 12, "at": "2026-01-02T03:04:05.000006Z", "actor_type": "user", "actor_id": 3, "actor_name": "ana",
        "action": "case.decided", "object_type": "case", "object_id": "9", "object_label": "1:app-9",
        "system_id": 1, "case_id": 9, "request_id": "r-1", "reason": "why", "payload_sha256": "ab" * 32,
        "prev_hash": "cd" * 32, **values,
    }
    assert envelope_text(*(envelope[name] for name in ENVELOPE_FIELDS)) == canonical_json(envelope)
