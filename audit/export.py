"""Exporting the chain as JSON Lines that verify offline (``tools/verify_audit_export.py``).

File format ``hitl-audit-export/1``, one JSON object per line, UTF-8:

1. a **manifest** (``"record": "manifest"``): the range (first/last seq, what was
   asked for), the count, the first event's ``prev_hash`` and the first and last
   hashes, the signed checkpoints inside the range (each with its signature), the
   public key, when it was generated, and ``signature``: the portal's Ed25519
   signature of the manifest without that member (``audit.signing``);
2. one line per event (``"record": "event"``), in ``seq`` order, with every
   envelope field exactly as hashed (``at`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``),
   the stored ``hash``, and ``payload``: the canonical JSON text as stored (a
   string, hashed as its UTF-8 bytes), or null once purged (or, in a purge
   archive, when the purge did not remove it);
3. a purge archive (``records.retention``) then adds ``case`` and ``history``
   records: the personal data and history rows the purge erased.

An export is one unbroken stretch of the chain, so it verifies on its own from
its first event's ``prev_hash``. Rows are streamed from a server-side cursor and
written as they come: memory stays flat however long the range.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from django.db import transaction
from django.utils import timezone

from audit.canonical import ENVELOPE_FIELDS, normalize
from audit.selectors import ExportRange, checkpoints_in, event_rows, read_snapshot, sealed_events
from audit.services import record_event
from audit.signing import EXPORT_FORMAT, manifest_statement, public_key, sign
from hitl_portal.actors import Actor

EXPORT_FIELDS = (*ENVELOPE_FIELDS, "hash", "payload")
# Lines are sent to the client in blocks of about this size (fewer, larger writes).
STREAM_BLOCK_BYTES = 64 * 1024

_encode_line = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def json_line(record: dict[str, Any]) -> str:
    """One JSON Lines record (compact, UTF-8, newline-terminated)."""
    return _encode_line(normalize(record)) + "\n"


def build_manifest(rng: ExportRange, *, kind: str = "export", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The signed first line of an export of ``rng``."""
    checkpoints: list[dict[str, Any]] = []
    if rng.count:
        checkpoints = [
            {
                "seq": cp.seq,
                "hash": cp.hash,
                "signed_at": normalize(cp.signed_at),
                "signature": cp.signature,
                "key_fingerprint": cp.key_fingerprint,
            }
            for cp in checkpoints_in(rng.first_seq, rng.last_seq).iterator()  # type: ignore[arg-type]
        ]
    key = public_key()
    manifest: dict[str, Any] = {
        "record": "manifest",
        "format": EXPORT_FORMAT,
        "kind": kind,
        "generated_at": normalize(timezone.now()),
        "range": {"first_seq": rng.first_seq, "last_seq": rng.last_seq, "requested": normalize(rng.requested)},
        "count": rng.count,
        "first_prev_hash": rng.first_prev_hash,
        "first_hash": rng.first_hash,
        "last_hash": rng.last_hash,
        "checkpoints": checkpoints,
        "public_key": {"algorithm": "Ed25519", "raw_hex": key.hex, "fingerprint_sha256": key.fingerprint},
        "hashing": (
            "payload_sha256 = SHA-256 of the payload text (UTF-8); hash = SHA-256 of the canonical JSON "
            "(sorted keys, separators ',' ':', no ASCII escaping) of the envelope fields: "
            + ", ".join(ENVELOPE_FIELDS)
        ),
        **normalize(extra or {}),
    }
    manifest["signature"] = sign(manifest_statement(manifest))
    return manifest


def iter_event_lines(
    rng: ExportRange,
    *,
    chunk_size: int = 2000,
    keep_payload: Callable[[int], bool] | None = None,
) -> Iterator[str]:
    """The event lines of ``rng`` in ``seq`` order, streamed.

    ``keep_payload(event_id)`` (a purge archive) says whose payload to include;
    the others are written as null, as a purged payload is.
    """
    if not rng.count:
        return
    fields = ("id", *EXPORT_FIELDS)
    queryset = sealed_events().filter(seq__gte=rng.first_seq, seq__lte=rng.last_seq)
    encode = _encode_line
    # A read transaction for the whole stream (see ``read_snapshot``): rows flow as they
    # are written out instead of being materialised on the server first.
    with read_snapshot():
        for row in event_rows(queryset, fields, chunk_size=chunk_size):
            record = dict(zip(fields, row, strict=True))
            event_id = record.pop("id")
            if keep_payload is not None and not keep_payload(event_id):
                record["payload"] = None
            yield '{"record":"event",' + encode(record)[1:] + "\n"


def iter_export(rng: ExportRange, *, manifest: dict[str, Any], chunk_size: int = 2000) -> Iterator[str]:
    """The whole export: manifest line, then the events."""
    yield json_line(manifest)
    yield from iter_event_lines(rng, chunk_size=chunk_size)


def blocks(lines: Iterable[str], *, size: int = STREAM_BLOCK_BYTES) -> Iterator[bytes]:
    """Group lines into byte blocks of about ``size`` for the HTTP response."""
    buffer: list[str] = []
    length = 0
    for line in lines:
        buffer.append(line)
        length += len(line)
        if length >= size:
            yield "".join(buffer).encode("utf-8")
            buffer.clear()
            length = 0
    if buffer:
        yield "".join(buffer).encode("utf-8")


def write_lines(lines: Iterable[str], handle: IO[bytes]) -> tuple[str, int]:
    """Write lines to a binary file; returns the file's SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    for block in blocks(lines):
        handle.write(block)
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def export_recorded(
    *,
    actor: Actor,
    rng: ExportRange,
    manifest: dict[str, Any],
    destination: str,
    sha256: str | None = None,
    size: int | None = None,
) -> None:
    """Record ``audit.exported``: who exported which stretch of the chain, to where."""
    with transaction.atomic():
        record_event(
            "audit.exported",
            actor=actor,
            object_type="auditevent",
            object_id=f"{rng.first_seq}-{rng.last_seq}" if rng.count else "",
            object_label=f"seq {rng.first_seq}–{rng.last_seq}" if rng.count else "empty range",
            data={
                "first_seq": rng.first_seq,
                "last_seq": rng.last_seq,
                "count": rng.count,
                "last_hash": rng.last_hash,
                "requested": rng.requested,
                "checkpoints": len(manifest["checkpoints"]),
                "manifest_signature": manifest["signature"],
                "destination": destination,
                "sha256": sha256,
                "bytes": size,
            },
        )


def export_to_file(*, actor: Actor, rng: ExportRange, path: Path, chunk_size: int = 2000) -> tuple[str, int]:
    """Write an export of ``rng`` to ``path`` (atomically: a temporary name, then renamed) and record it."""
    manifest = build_manifest(rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as handle:
            sha256, size = write_lines(iter_export(rng, manifest=manifest, chunk_size=chunk_size), handle)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    export_recorded(actor=actor, rng=rng, manifest=manifest, destination=str(path), sha256=sha256, size=size)
    return sha256, size


__all__ = [
    "blocks",
    "build_manifest",
    "export_recorded",
    "export_to_file",
    "iter_event_lines",
    "iter_export",
    "json_line",
    "write_lines",
]
