"""The external witness: every signed checkpoint is also written outside the database.

A database superuser can delete events *and* the checkpoint rows that vouch for
them; the signatures alone cannot show what is gone. So each checkpoint is also
handed to a witness the database cannot reach (the Certificate Transparency
idea), and verification compares the chain with what the witness holds: a chain
shorter than, diverging from, or missing a witnessed head fails.

``HITL_AUDIT_WITNESS`` picks the witness:

- ``file:///path/to/dir`` — one JSON line per checkpoint appended to
  ``audit-witness.jsonl`` in that directory, opened with ``O_APPEND`` and fsynced
  (a path ending in ``.jsonl`` names the file itself). Put it on storage the
  database host's superuser cannot rewrite (another machine's mount, a WORM
  volume, a log shipper's spool). Readable: verification compares.
- ``syslog:`` (local ``/dev/log``) or ``syslog://host:514`` (UDP) — one message per
  checkpoint, for a central log store. Write-only: verification reports that it
  could not compare.
- ``https://…`` (or ``http://…``) — each checkpoint POSTed as JSON; a ``GET`` of the
  same URL must return the records received (JSON Lines or a JSON array).
  ``HITL_AUDIT_WITNESS_TOKEN`` is sent as a bearer token when set.
- ``none`` — no witness (not recommended: the tail of the chain is then only as
  safe as the database).

The embedded default is ``file://HITL_VAR_DIR/audit-witness``.

A record is the checkpoint's signed statement plus its signature:
``{"type": "hitl-audit-checkpoint/1", "seq", "hash", "signed_at", "signature",
"key_fingerprint"}``; anyone with the public key can check it.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from audit.canonical import canonical_json, normalize
from audit.signing import CHECKPOINT_TYPE

logger = logging.getLogger(__name__)

FILE_NAME = "audit-witness.jsonl"
HTTP_TIMEOUT_S = 5.0


class WitnessUnavailable(Exception):
    """The witness could not be written or read (verification then cannot vouch for the tail)."""


@dataclass(frozen=True)
class WitnessRecord:
    """One witnessed checkpoint."""

    seq: int
    hash: str
    signed_at: str
    signature: str
    key_fingerprint: str


class Witness(Protocol):
    kind: str
    readable: bool

    def append(self, record: dict[str, Any]) -> None: ...

    def records(self) -> Iterator[WitnessRecord]: ...


def checkpoint_record(checkpoint: Any) -> dict[str, Any]:
    """What the witness keeps of a checkpoint: its signed statement and signature."""
    return {
        "type": CHECKPOINT_TYPE,
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "signed_at": normalize(checkpoint.signed_at),
        "signature": checkpoint.signature,
        "key_fingerprint": checkpoint.key_fingerprint,
    }


def parse_record(line: str) -> WitnessRecord | None:
    """A witness line → record; None for a blank line. Malformed lines raise ``ValueError``."""
    text = line.strip()
    if not text:
        return None
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("type") != CHECKPOINT_TYPE:
        raise ValueError(f"not a {CHECKPOINT_TYPE} record")
    seq = data.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError("a witness record needs a positive integer seq")
    names = ("hash", "signed_at", "signature", "key_fingerprint")
    fields = {name: value for name in names if isinstance(value := data.get(name), str)}
    if len(fields) != len(names):
        raise ValueError("a witness record needs hash, signed_at, signature and key_fingerprint")
    return WitnessRecord(seq=seq, **fields)


class FileWitness:
    """An append-only JSON Lines file (``O_APPEND``: each record is one write at the end)."""

    kind = "file"
    readable = True

    def __init__(self, path: Path) -> None:
        self.path = path if path.suffix == ".jsonl" else path / FILE_NAME

    def append(self, record: dict[str, Any]) -> None:
        line = (canonical_json(record) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise WitnessUnavailable(f"cannot append to the witness file {self.path}: {exc}") from exc

    def records(self) -> Iterator[WitnessRecord]:
        try:
            handle = self.path.open(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise WitnessUnavailable(f"cannot read the witness file {self.path}: {exc}") from exc
        with handle:
            for number, line in enumerate(handle, start=1):
                try:
                    record = parse_record(line)
                except ValueError as exc:
                    raise WitnessUnavailable(f"witness file line {number} is not a checkpoint record: {exc}") from exc
                if record is not None:
                    yield record


class SyslogWitness:
    """Syslog (local socket or UDP to a collector): write-only, so verification cannot compare."""

    kind = "syslog"
    readable = False

    def __init__(self, address: str | tuple[str, int]) -> None:
        self.address = address

    def append(self, record: dict[str, Any]) -> None:
        try:
            handler = logging.handlers.SysLogHandler(
                address=self.address, facility=logging.handlers.SysLogHandler.LOG_AUTH, socktype=socket.SOCK_DGRAM
            )
        except OSError as exc:
            raise WitnessUnavailable(f"cannot reach syslog at {self.address}: {exc}") from exc
        try:
            message = logging.LogRecord(
                "hitl.audit.witness", logging.WARNING, __file__, 0,
                "hitl-audit-witness: %s", (canonical_json(record),), None,
            )
            handler.emit(message)
        finally:
            handler.close()

    def records(self) -> Iterator[WitnessRecord]:
        raise WitnessUnavailable("a syslog witness cannot be read back")


class HttpWitness:
    """An HTTP endpoint: POST each record; GET returns all records (JSON Lines or a JSON array)."""

    kind = "http"
    readable = True

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.token = token

    def _request(self, method: str, body: bytes | None = None) -> urllib.request.Request:
        headers = {"Accept": "application/json, application/x-ndjson"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return urllib.request.Request(self.url, data=body, headers=headers, method=method)  # noqa: S310 (http(s) only)

    def append(self, record: dict[str, Any]) -> None:
        request = self._request("POST", canonical_json(record).encode("utf-8"))
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310 (configured URL)
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise WitnessUnavailable(f"the witness endpoint refused the checkpoint: {exc}") from exc

    def records(self) -> Iterator[WitnessRecord]:
        try:
            with urllib.request.urlopen(self._request("GET"), timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
                text = response.read().decode("utf-8")
        except (urllib.error.URLError, OSError, ValueError, UnicodeDecodeError) as exc:
            raise WitnessUnavailable(f"cannot read the witness endpoint: {exc}") from exc
        try:
            stripped = text.lstrip()
            if stripped.startswith("["):
                lines = [json.dumps(item) for item in json.loads(stripped)]
            else:
                lines = text.splitlines()
            for line in lines:
                record = parse_record(line)
                if record is not None:
                    yield record
        except ValueError as exc:
            raise WitnessUnavailable(f"the witness endpoint returned no checkpoint records: {exc}") from exc


def witness_from_url(url: str, *, token: str | None = None) -> Witness | None:
    """The witness a ``HITL_AUDIT_WITNESS`` value names (None for ``none``)."""
    value = (url or "").strip()
    if value.lower() in {"", "none"}:
        return None
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme == "file":
        if parsed.netloc not in {"", "localhost"}:
            raise ImproperlyConfigured("HITL_AUDIT_WITNESS: a file witness is file:///absolute/path")
        return FileWitness(Path(urllib.parse.unquote(parsed.path)))
    if parsed.scheme == "syslog":
        if parsed.hostname:
            return SyslogWitness((parsed.hostname, parsed.port or 514))
        return SyslogWitness(parsed.path or "/dev/log")
    if parsed.scheme in {"http", "https"} and parsed.hostname:
        return HttpWitness(value, token)
    raise ImproperlyConfigured(
        "HITL_AUDIT_WITNESS must be file:///dir, syslog:, syslog://host:port, https://… or none"
    )


def current_witness() -> Witness | None:
    """The configured witness."""
    return witness_from_url(settings.HITL_AUDIT_WITNESS, token=settings.HITL_AUDIT_WITNESS_TOKEN)


def witness_checkpoint(checkpoint: Any) -> bool:
    """Hand a committed checkpoint to the witness; False (logged) when it could not be written.

    Called after the checkpoint's transaction commits, so the witness never holds a
    checkpoint the database rolled back. A failed write is not retried here: the
    next checkpoint (a minute later at most) is witnessed, and it vouches for
    everything before it.
    """
    witness = current_witness()
    if witness is None:
        return False
    try:
        witness.append(checkpoint_record(checkpoint))
    except WitnessUnavailable:
        logger.exception("checkpoint at seq %s was not witnessed", checkpoint.seq)
        return False
    return True


__all__ = [
    "FileWitness",
    "HttpWitness",
    "SyslogWitness",
    "Witness",
    "WitnessRecord",
    "WitnessUnavailable",
    "checkpoint_record",
    "current_witness",
    "parse_record",
    "witness_checkpoint",
    "witness_from_url",
]
