"""Tampering with the stored chain on PostgreSQL, as a database superuser could: each is detected,
with the first bad sequence number named, by the selector, the API and the command."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from audit.canonical import event_hash, sha256_hex
from audit.models import AuditEvent
from audit.selectors import verify_chain
from audit.services import checkpoint_sign, seal_pending
from tests.audit.evidence_helpers import TABLE, audit_key_fixture, tamper  # noqa: F401
from tests.audit.factories import write_events

pytestmark = [pytest.mark.postgres, pytest.mark.django_db, pytest.mark.usefixtures("audit_key")]


def _chain(count: int) -> None:
    write_events(count)
    seal_pending()


def _assert_broken_at(seq: int, fragment: str, api_client_for: Any) -> None:
    result = verify_chain()
    assert result.ok is False
    assert result.first_bad_seq == seq, result.problem
    assert fragment in result.problem
    # The same in small chunks (rows then arrive through the prefetching thread, which
    # must stop cleanly when the walk ends early).
    small = verify_chain(chunk_size=2)
    assert (small.first_bad_seq, small.problem) == (seq, result.problem)
    body = api_client_for("compliance_officer").get("/api/v1/audit/verify/").json()
    assert (body["ok"], body["first_bad_seq"]) == (False, seq)
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit", stdout=out)
    assert exit_info.value.code == 1
    assert f"first bad seq: {seq}" in out.getvalue()


def test_a_changed_row_is_detected(api_client_for: Any) -> None:
    _chain(6)
    tamper(f"UPDATE {TABLE} SET actor_name = %s WHERE seq = 4", ["someone-else"])
    _assert_broken_at(4, "event hash does not match", api_client_for)


def test_a_changed_payload_with_a_recomputed_payload_hash_is_detected(api_client_for: Any) -> None:
    _chain(5)
    forged = '{"data":{"n":999}}'
    tamper(f"UPDATE {TABLE} SET payload = %s, payload_sha256 = %s WHERE seq = 3", [forged, sha256_hex(forged)])
    _assert_broken_at(3, "event hash does not match", api_client_for)


def test_a_deleted_row_is_detected(api_client_for: Any) -> None:
    _chain(6)
    tamper(f"DELETE FROM {TABLE} WHERE seq = 3")
    _assert_broken_at(3, "sequence gap", api_client_for)


def test_two_swapped_rows_are_detected(api_client_for: Any) -> None:
    _chain(6)
    # seq is unique (not deferrable): swap through a free value.
    tamper(f"UPDATE {TABLE} SET seq = -3 WHERE seq = 3")
    tamper(f"UPDATE {TABLE} SET seq = 3 WHERE seq = 4")
    tamper(f"UPDATE {TABLE} SET seq = 4 WHERE seq = -3")
    assert AuditEvent.objects.get(seq=3).object_id == "4"  # really swapped
    _assert_broken_at(3, "prev_hash", api_client_for)


def test_a_truncated_tail_after_a_checkpoint_is_detected(api_client_for: Any) -> None:
    _chain(6)
    checkpoint = checkpoint_sign()
    assert checkpoint is not None and checkpoint.seq == 6
    _chain(2)
    # Every link of the remaining chain is intact: only the signed checkpoint shows the cut.
    tamper(f"DELETE FROM {TABLE} WHERE seq >= 5")
    result = verify_chain()
    assert result.events == 4
    _assert_broken_at(5, "truncated", api_client_for)


def test_history_rewritten_with_recomputed_hashes_is_caught_by_the_checkpoint(api_client_for: Any) -> None:
    _chain(5)
    checkpoint = checkpoint_sign()
    assert checkpoint is not None and checkpoint.seq == 5
    # Rewrite seq 2 and re-chain everything after it, as an attacker with write access would.
    tamper(f"UPDATE {TABLE} SET reason = %s WHERE seq = 2", ["nothing to see here"])
    prev = AuditEvent.objects.get(seq=1).hash
    for event in AuditEvent.objects.filter(seq__gte=2).order_by("seq"):
        envelope = {**event.envelope(), "prev_hash": prev}
        new_hash = event_hash(envelope)
        tamper(f"UPDATE {TABLE} SET prev_hash = %s, hash = %s WHERE id = %s", [prev, new_hash, event.pk])
        prev = new_hash
    # Without the checkpoint the forgery would pass.
    assert verify_chain(check_checkpoints=False).ok
    _assert_broken_at(5, "differs from the signed checkpoint", api_client_for)


def test_an_intact_chain_verifies_in_any_chunk_size() -> None:
    _chain(7)
    checkpoint_sign()
    _chain(4)
    whole = verify_chain()
    assert whole.ok and whole.events == 12 and whole.checkpoints == 1
    for chunk_size in (1, 2, 5, 11, 12, 13):
        assert verify_chain(chunk_size=chunk_size) == whole
