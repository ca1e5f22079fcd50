"""Reading the audit trail: sealed events only, and chain verification."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from audit.canonical import GENESIS_HASH, event_hash, normalize, sha256_hex
from audit.models import AuditEvent

VERIFY_FIELDS = (
    "seq", "at", "actor_type", "actor_id", "actor_name", "action", "object_type", "object_id",
    "object_label", "system_id", "case_id", "request_id", "reason", "payload", "payload_sha256",
    "prev_hash", "hash",
)


def sealed_events() -> QuerySet[AuditEvent]:
    """Events readers may see: sealed ones, in chain order."""
    return AuditEvent.objects.filter(seq__isnull=False).order_by("seq")


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events: int
    head_hash: str | None
    first_bad_seq: int | None
    problem: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head_hash": self.head_hash,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


def verify_chain(*, chunk_size: int = 5000) -> VerifyResult:
    """Walk the sealed chain in constant memory; name the first bad event.

    Checks, for each event in ``seq`` order: no gap, ``prev_hash`` equals the
    previous event's hash, the payload (unless purged) matches its SHA-256, and the
    stored hash is the hash of the envelope.
    """
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    rows = sealed_events().values_list(*VERIFY_FIELDS).iterator(chunk_size=chunk_size)
    for row in rows:
        record = dict(zip(VERIFY_FIELDS, row, strict=True))
        seq = record["seq"]
        problem = ""
        if seq != expected_seq:
            problem = f"sequence gap: expected {expected_seq}, found {seq}"
            seq = expected_seq if seq > expected_seq else seq
        elif record["prev_hash"] != prev_hash:
            problem = "prev_hash does not match the previous event's hash"
        elif record["payload"] is not None and sha256_hex(record["payload"]) != record["payload_sha256"]:
            problem = "payload does not match its hash"
        else:
            envelope = {**record, "at": normalize(record["at"])}
            if event_hash(envelope) != record["hash"]:
                problem = "event hash does not match its contents"
        if problem:
            return VerifyResult(False, count, prev_hash if count else None, seq, problem)
        prev_hash = record["hash"]
        expected_seq += 1
        count += 1
    return VerifyResult(True, count, prev_hash if count else None, None)
