"""Reading the audit trail: sealed events, chain verification with signed checkpoints,
export ranges, legal holds and the Art. 12(3) record of remote biometric identification."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import queue
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, islice
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import CharField, F, Func, QuerySet

from audit.canonical import GENESIS_HASH, envelope_text
from audit.models import AuditEvent, Checkpoint

logger = logging.getLogger(__name__)

VERIFY_FIELDS = (
    "seq", "at", "actor_type", "actor_id", "actor_name", "action", "object_type", "object_id",
    "object_label", "system_id", "case_id", "request_id", "reason", "payload", "payload_sha256",
    "prev_hash", "hash",
)

_UTC = dt.UTC
# PostgreSQL formats the event time as ``audit.canonical.normalize`` does, so a million
# rows need no datetime parsing and re-formatting in Python (most of the cost otherwise).
AT_TEXT_TEMPLATE = """to_char((%(expressions)s AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def read_snapshot() -> AbstractContextManager[Any]:
    """Where long streamed reads run: a read transaction on PostgreSQL, nothing on SQLite.

    Outside a transaction Django declares its server-side cursors ``WITH HOLD``, and
    PostgreSQL then materialises the whole result before the first row (a million
    events: hundreds of megabytes written to a temporary file); inside one the rows
    stream as they are read, from one snapshot. SQLite's transactions here are
    ``IMMEDIATE`` (they would hold the write lock for the whole walk), and it reads
    in-process anyway.
    """
    return transaction.atomic() if connection.vendor == "postgresql" else nullcontext()


_END = object()


def prefetched(rows: Iterator[tuple], *, batch: int, depth: int = 2) -> Iterator[tuple]:
    """Rows of a streamed query, fetched one chunk ahead by a helper thread.

    Verification alternates between waiting for PostgreSQL and hashing in Python;
    with the next chunk in flight while this one is hashed, the two overlap (the
    thread waits on the socket with the GIL released). At most ``depth`` chunks are
    held. The query starts here, in the calling thread, so it runs on that thread's
    connection and transaction; the helper only fetches from the open cursor, and
    is stopped and joined before this generator ends, so the connection is never
    used by two threads at once after it.
    """
    first = next(rows, None)  # rows are tuples, never None
    if first is None:
        return
    ahead = _fetched_ahead(_batches(rows, batch), depth)
    yield first
    for chunk in ahead:
        yield from chunk


def _batches(rows: Iterator[tuple], size: int) -> Iterator[list[tuple]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def _fetched_ahead(chunks_of: Iterator[list[tuple]], depth: int = 2) -> Iterator[list[tuple]]:
    """The chunks of ``chunks_of``, produced by a helper thread while the caller uses the previous ones.

    At most ``depth`` chunks are held; an error in the helper is raised here; the
    helper is stopped and joined before this generator ends (``prefetched``,
    ``_prefetched_chunks``).
    """
    chunks: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks_of:
                if not put(chunk):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    helper = threading.Thread(target=produce, name="audit-prefetch", daemon=True)
    helper.start()
    try:
        while True:
            item = chunks.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        helper.join()


def event_rows(
    queryset: QuerySet[AuditEvent], fields: tuple[str, ...], *, chunk_size: int, prefetch: bool = False
) -> Iterator[tuple]:
    """``values_list(*fields)`` streamed, with ``at`` as the canonical time text (not a datetime).

    ``prefetch`` (PostgreSQL): fetch the next chunk while the caller works on this one.
    """
    if connection.vendor == "postgresql" and "at" in fields:
        names = tuple("at_text" if name == "at" else name for name in fields)
        at_text = Func(F("at"), template=AT_TEXT_TEMPLATE, output_field=CharField())
        rows = queryset.annotate(at_text=at_text).values_list(*names).iterator(chunk_size=chunk_size)
        return prefetched(rows, batch=chunk_size) if prefetch else rows
    index = fields.index("at") if "at" in fields else None
    rows = queryset.values_list(*fields).iterator(chunk_size=chunk_size)
    if index is None:
        return rows
    return ((*row[:index], event_time_text(row[index]), *row[index + 1:]) for row in rows)


def sealed_events() -> QuerySet[AuditEvent]:
    """Events readers may see: sealed ones, in chain order."""
    return AuditEvent.objects.filter(seq__isnull=False).order_by("seq")


def event_time_text(value: dt.datetime) -> str:
    """``audit.canonical.normalize`` for the event time."""
    if value.tzinfo is not _UTC and value.tzinfo is not None:
        value = value.astimezone(_UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events: int
    head_hash: str | None
    first_bad_seq: int | None
    problem: str = ""
    checkpoints: int = 0
    last_checkpoint_seq: int | None = None
    # The external witness (audit.witness): its kind ("file", "syslog", "http" or "none"),
    # whether the chain was compared with it, how many checkpoints it holds and the last one.
    witness: str = "none"
    witness_checked: bool = False
    witnessed_checkpoints: int = 0
    last_witnessed_seq: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head_hash": self.head_hash,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }

    def as_report(self) -> dict[str, object]:
        """``as_dict`` plus the checkpoint and witness figures (API and nightly task)."""
        return {
            **self.as_dict(),
            "checkpoints": self.checkpoints,
            "last_checkpoint_seq": self.last_checkpoint_seq,
            "witness": self.witness,
            "witness_checked": self.witness_checked,
            "witnessed_checkpoints": self.witnessed_checkpoints,
            "last_witnessed_seq": self.last_witnessed_seq,
        }


@dataclass
class _CheckpointCursor:
    """Walks the signed checkpoints alongside the events (both in ``seq`` order, both streamed)."""

    rows: Iterator[tuple[int, str, dt.datetime, str, str]]
    trusted: dict[str, bytes]
    current: tuple[int, str, dt.datetime, str, str] | None = None
    verified: int = 0
    last_seq: int | None = None
    problem: str = ""

    def advance(self) -> None:
        self.current = next(self.rows, None)
        if self.current is not None:
            self.problem = self._signature_problem(self.current)

    def _signature_problem(self, row: tuple[int, str, dt.datetime, str, str]) -> str:
        from audit.signing import checkpoint_statement, verify_signature

        seq, hash_, signed_at, signature, fingerprint = row
        key = self.trusted.get(fingerprint)
        if key is None:
            return f"checkpoint at seq {seq} is signed by an untrusted key (fingerprint {fingerprint[:16]}…)"
        if not verify_signature(key, checkpoint_statement(seq=seq, hash=hash_, signed_at=signed_at), signature):
            return f"checkpoint at seq {seq} has an invalid signature"
        return ""


def _checkpoint_cursor(
    after_seq: int, up_to_seq: int | None, chunk_size: int, trusted: dict[str, bytes] | None = None
) -> _CheckpointCursor:
    from audit.signing import trusted_public_keys

    queryset = Checkpoint.objects.filter(seq__gt=after_seq).order_by("seq")
    if up_to_seq is not None:
        queryset = queryset.filter(seq__lte=up_to_seq)
    rows = queryset.values_list("seq", "hash", "signed_at", "signature", "key_fingerprint").iterator(
        chunk_size=chunk_size
    )
    cursor = _CheckpointCursor(rows=rows, trusted=trusted_public_keys() if trusted is None else trusted)
    cursor.advance()
    return cursor


@dataclass
class _WitnessView:
    """What the external witness holds, keyed by seq, compared with the chain during the walk.

    Per witnessed checkpoint only its hash (32 bytes) and a digest of its signature are
    kept: a year of one checkpoint a minute is about 100 MB at most.
    """

    kind: str
    readable: bool
    heads: dict[int, bytes] = field(default_factory=dict)
    records: int = 0
    last_seq: int | None = None
    problem: str = ""
    problem_seq: int | None = None

    @staticmethod
    def key(hash_: str, signature: str) -> bytes:
        try:
            raw = bytes.fromhex(hash_)
        except ValueError:
            raw = hash_.encode("utf-8")
        return raw + hashlib.sha256(signature.encode("utf-8")).digest()[:8]


def _load_witness() -> _WitnessView:
    """Read the configured witness; a problem (unreadable, two heads for one seq) is kept for the walk."""
    from audit.witness import WitnessUnavailable, current_witness

    witness = current_witness()
    if witness is None:
        return _WitnessView(kind="none", readable=False)
    view = _WitnessView(kind=witness.kind, readable=witness.readable)
    if not witness.readable:
        return view
    try:
        for record in witness.records():
            key = _WitnessView.key(record.hash, record.signature)
            known = view.heads.get(record.seq)
            view.records += 1
            if known is None:
                view.heads[record.seq] = key
            elif known[:-8] != key[:-8] and not view.problem:
                view.problem = (
                    f"the witness holds two different signed heads for seq {record.seq}: the chain was rewritten "
                    "and signed again after it was witnessed"
                )
                view.problem_seq = record.seq
            if view.last_seq is None or record.seq > view.last_seq:
                view.last_seq = record.seq
    except WitnessUnavailable as exc:
        view.problem = f"witness unreadable: {exc}"
    return view


def _witness_record_problem(seq: int) -> str:
    """Why a witnessed checkpoint has no row in the database (its signature decides which words)."""
    from audit.signing import checkpoint_statement, trusted_public_keys, verify_signature
    from audit.witness import WitnessUnavailable, current_witness

    witness = current_witness()
    try:
        record = next((r for r in witness.records() if r.seq == seq), None) if witness is not None else None
    except WitnessUnavailable:
        record = None
    if record is not None:
        key = trusted_public_keys().get(record.key_fingerprint)
        statement = checkpoint_statement(seq=record.seq, hash=record.hash, signed_at=record.signed_at)
        if key is None or not verify_signature(key, statement, record.signature):
            return f"the witness holds a checkpoint at seq {seq} that no trusted key signed: the witness was written to"
    return f"the signed checkpoint at seq {seq} held by the witness is missing from the database"


# Verification is split into segments between signed checkpoints, walked by worker
# processes, when the stretch to walk has at least this many events (below it the
# processes' start, about a second each, costs more than they save).
VERIFY_PARALLEL_MIN_EVENTS = 1_000_000
# A segment is never shorter than this, and each worker gets about four of them (so
# one slow segment does not leave the other cores idle at the end).
VERIFY_SEGMENT_MIN_EVENTS = 250_000
VERIFY_SEGMENTS_PER_WORKER = 4

_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+$")


def verify_chain(
    *,
    chunk_size: int = 5000,
    after_seq: int = 0,
    after_hash: str = GENESIS_HASH,
    up_to_seq: int | None = None,
    check_checkpoints: bool = True,
    check_witness: bool | None = None,
) -> VerifyResult:
    """Walk the sealed chain in constant memory; name the first bad event.

    Checks, for each event in ``seq`` order: no gap, ``prev_hash`` equals the
    previous event's hash, the payload (unless purged) matches its SHA-256, and the
    stored hash is the hash of the envelope. With ``check_checkpoints``, each signed
    checkpoint must carry a valid signature by a trusted key and match the chain's
    hash at its ``seq``; a chain that ends before the last checkpoint was cut short
    (its first missing ``seq`` is named).

    ``after_seq``/``after_hash`` start the walk after a trusted point (a verified
    checkpoint) and ``up_to_seq`` stops it early: the checkpoint service verifies only
    what it is about to sign over.

    ``check_witness`` (default: on for a whole-chain walk with checkpoints) compares
    the chain with the external witness (``audit.witness``): the chain must reach every
    witnessed head, carry its hash there, and the database must still hold each
    witnessed checkpoint. A readable witness that cannot be read fails verification
    (it could not vouch for the tail); a write-only one (syslog) is reported as unchecked.

    A long walk on PostgreSQL (``HITL_AUDIT_VERIFY_PARALLEL_MIN_EVENTS``, default a
    million events) is split at signed checkpoints into segments that worker processes
    walk side by side (``HITL_AUDIT_VERIFY_WORKERS``, default one per core), all reading
    one snapshot; the result is the serial walk's, to the message and the counts. Inside
    a transaction, on SQLite, under an embedding server, or when a worker cannot start
    or dies, the walk is serial.
    """
    if check_witness is None:
        check_witness = check_checkpoints and after_seq == 0 and up_to_seq is None
    witness = _load_witness() if check_witness else None
    walk = partial(_walk_chain, chunk_size=chunk_size, after_seq=after_seq, after_hash=after_hash,
                   up_to_seq=up_to_seq, check_checkpoints=check_checkpoints, witness=witness)
    workers = _parallel_workers()
    if workers > 1:
        # One REPEATABLE READ transaction: every statement of this walk, and the
        # workers that import its snapshot (``pg_export_snapshot``), see the same rows.
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return walk(workers=workers)
    with read_snapshot():
        return walk(workers=1)


def _parallel_workers() -> int:
    """How many processes may walk segments here: 1 means walk serially."""
    from django.conf import settings

    if connection.vendor != "postgresql" or connection.in_atomic_block:
        # Inside a caller's transaction (the checkpoint service) its isolation level is
        # fixed and its own writes would be invisible to other connections.
        return 1
    if "python" not in os.path.basename(sys.executable or "").lower():
        # Spawning runs sys.executable: under an embedding server (uWSGI, mod_wsgi) that
        # is the server itself, not an interpreter.
        return 1
    configured = getattr(settings, "HITL_AUDIT_VERIFY_WORKERS", None)
    if configured:
        return max(1, int(configured))
    # The cores this process may run on (a container's CPU set), else all of them.
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass
class _Stretch:
    """What a walk over a stretch of the chain (all of it, or one segment) found.

    ``next_seq`` is the seq it expected next where it stopped; ``matched`` the
    witnessed checkpoints it found in the database with the witness's signature.
    """

    count: int
    head: str | None
    next_seq: int
    verified: int
    last_checkpoint_seq: int | None
    matched: list[int]
    failed: bool = False
    bad_seq: int | None = None
    problem: str = ""


def _walk_chain(
    *, chunk_size: int, after_seq: int, after_hash: str, up_to_seq: int | None, check_checkpoints: bool,
    witness: _WitnessView | None, workers: int = 1,
) -> VerifyResult:
    witnessed = witness.heads if witness is not None and witness.readable else {}
    witness_fields: dict[str, Any] = {}
    if witness is not None:
        witness_fields = {
            "witness": witness.kind,
            "witness_checked": witness.readable and not witness.problem,
            "witnessed_checkpoints": len(witness.heads),
            "last_witnessed_seq": witness.last_seq,
        }

    def result(stretch: _Stretch, seq: int | None = None, problem: str = "", *, ok: bool = False) -> VerifyResult:
        return VerifyResult(ok, stretch.count, stretch.head, seq, problem, stretch.verified,
                            stretch.last_checkpoint_seq, **witness_fields)

    if witness is not None and witness.problem:
        return result(_Stretch(0, None, after_seq + 1, 0, None, []), witness.problem_seq, witness.problem)
    stretch = None
    if workers > 1:
        stretch = _walk_segments(chunk_size=chunk_size, after_seq=after_seq, after_hash=after_hash,
                                 up_to_seq=up_to_seq, check_checkpoints=check_checkpoints, witnessed=witnessed,
                                 workers=workers)
    if stretch is None:
        stretch = _walk_segment(after_seq=after_seq, after_hash=after_hash, up_to_seq=up_to_seq, stop_seq=None,
                                check_checkpoints=check_checkpoints, witnessed=witnessed, chunk_size=chunk_size)
    if stretch.failed:
        return result(stretch, stretch.bad_seq, stretch.problem)
    expected_seq = stretch.next_seq
    if witnessed and witness is not None and witness.last_seq is not None and witness.last_seq >= expected_seq:
        return result(
            stretch, expected_seq,
            f"chain truncated: it ends at seq {expected_seq - 1} but the witness holds a signed checkpoint at "
            f"seq {witness.last_seq}",
        )
    unmatched = set(witnessed).difference(stretch.matched)
    if unmatched:
        first = min(unmatched)
        return result(stretch, first, _witness_record_problem(first))
    return result(stretch, ok=True)


def _walk_segment(
    *, after_seq: int, after_hash: str, up_to_seq: int | None, stop_seq: int | None, check_checkpoints: bool,
    witnessed: dict[int, bytes], chunk_size: int, trusted: dict[str, bytes] | None = None,
) -> _Stretch:
    """The walk itself, from the event after ``after_seq`` (whose hash is ``after_hash``).

    With ``stop_seq`` (a segment that a later one continues) it returns as soon as the
    event at ``stop_seq`` has passed every check, without the end-of-chain checks; the
    query is not bounded there, so a gap or the end of the chain before ``stop_seq``
    reads exactly as in a walk of the whole chain.
    """
    checkpoints = _checkpoint_cursor(after_seq, up_to_seq, chunk_size, trusted) if check_checkpoints else None
    matched: list[int] = []
    expected_seq = after_seq + 1
    prev_hash = after_hash
    sha256 = hashlib.sha256
    canonical = envelope_text
    witness_key = _WitnessView.key
    # -1: no (further) checkpoint; compared with each seq, so kept in a local.
    next_checkpoint = checkpoints.current[0] if checkpoints is not None and checkpoints.current is not None else -1
    stop = -1 if stop_seq is None else stop_seq

    def stretch(seq: int | None = None, problem: str = "") -> _Stretch:
        count = expected_seq - after_seq - 1
        return _Stretch(
            count, prev_hash if count else None, expected_seq,
            checkpoints.verified if checkpoints else 0, checkpoints.last_seq if checkpoints else None,
            matched, bool(problem), seq, problem,
        )

    rows = _chain_rows(after_seq, up_to_seq, chunk_size)
    try:
        for (seq, at, actor_type, actor_id, actor_name, action, object_type, object_id, object_label,
             system_id, case_id, request_id, reason, payload, payload_sha256, stored_prev, stored_hash) in rows:
            if seq != expected_seq:
                return stretch(expected_seq if seq > expected_seq else seq,
                               f"sequence gap: expected {expected_seq}, found {seq}")
            if stored_prev != prev_hash:
                return stretch(seq, "prev_hash does not match the previous event's hash")
            if payload is not None and sha256(payload.encode("utf-8")).hexdigest() != payload_sha256:
                return stretch(seq, "payload does not match its hash")
            text = canonical(seq, at, actor_type, actor_id, actor_name, action, object_type, object_id,
                             object_label, system_id, case_id, request_id, reason, payload_sha256, stored_prev)
            if sha256(text.encode("utf-8")).hexdigest() != stored_hash:
                return stretch(seq, "event hash does not match its contents")
            if witnessed and seq in witnessed and witnessed[seq][:-8] != witness_key(stored_hash, "")[:-8]:
                return stretch(seq, f"chain hash at seq {seq} differs from the checkpoint the witness holds: "
                                    "history up to it was rewritten")
            if seq == next_checkpoint and checkpoints is not None and checkpoints.current is not None:
                if checkpoints.problem:
                    return stretch(seq, checkpoints.problem)
                if checkpoints.current[1] != stored_hash:
                    since = checkpoints.last_seq if checkpoints.last_seq is not None else after_seq
                    return stretch(
                        seq,
                        f"chain hash at seq {seq} differs from the signed checkpoint: history after seq {since} "
                        "was rewritten",
                    )
                checkpoints.verified += 1
                checkpoints.last_seq = seq
                if seq in witnessed and witnessed[seq] == witness_key(stored_hash, checkpoints.current[3]):
                    matched.append(seq)
                checkpoints.advance()
                next_checkpoint = checkpoints.current[0] if checkpoints.current is not None else -1
            prev_hash = stored_hash
            expected_seq += 1
            if seq == stop:
                return stretch()
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()
    if checkpoints is not None and checkpoints.current is not None:
        cp_seq = checkpoints.current[0]
        if checkpoints.problem:
            return stretch(cp_seq, checkpoints.problem)
        return stretch(
            expected_seq,
            f"chain truncated: it ends at seq {expected_seq - 1} but a signed checkpoint covers seq {cp_seq}",
        )
    return stretch()


VERIFY_SQL = (
    "SELECT seq, " + AT_TEXT_TEMPLATE % {"expressions": "at"} + ", actor_type, actor_id, actor_name, action, "
    "object_type, object_id, object_label, system_id, case_id, request_id, reason, payload, payload_sha256, "
    "prev_hash, hash FROM {table} WHERE seq IS NOT NULL AND seq > %s{bound} ORDER BY seq"
)


def _chain_rows(after_seq: int, up_to_seq: int | None, chunk_size: int) -> Iterator[tuple]:
    """The events after ``after_seq`` (up to ``up_to_seq``) as ``VERIFY_FIELDS`` tuples, ``at`` as text.

    On PostgreSQL straight from a psycopg server-side cursor, a chunk at a time, the
    next chunk fetched on a helper thread while this one is checked: Django's iterator
    costs about a microsecond an event more, a tenth of the walk. Inside the caller's
    transaction, so the cursor is declared without ``WITH HOLD`` and streams.
    """
    queryset = sealed_events().filter(seq__gt=after_seq)
    if up_to_seq is not None:
        queryset = queryset.filter(seq__lte=up_to_seq)
    if connection.vendor != "postgresql":
        return event_rows(queryset, VERIFY_FIELDS, chunk_size=chunk_size)
    connection.ensure_connection()
    raw = connection.connection
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    sql = VERIFY_SQL.replace("{table}", table).replace("{bound}", "" if up_to_seq is None else " AND seq <= %s")
    params = [after_seq] if up_to_seq is None else [after_seq, up_to_seq]
    cursor = raw.cursor(name=f"audit_verify_{threading.get_ident()}_{after_seq}")
    cursor.execute(sql, params)
    return chain.from_iterable(_prefetched_chunks(cursor, chunk_size))


def _prefetched_chunks(cursor: Any, chunk_size: int, depth: int = 2) -> Iterator[list[tuple]]:
    """``cursor.fetchmany(chunk_size)`` lists, the next ones fetched by a helper thread (``_fetched_ahead``).

    The helper only fetches from this open cursor, and is stopped and joined (and the
    cursor closed, in this thread) before the generator ends.
    """
    try:
        yield from _fetched_ahead(iter(lambda: cursor.fetchmany(chunk_size), []), depth)
    finally:
        cursor.close()


def _segment_bounds(after_seq: int, up_to_seq: int | None, workers: int) -> list[tuple[int, str]]:
    """Signed checkpoints to split the walk at: ``(seq, hash)``, in order; empty to walk serially.

    About ``VERIFY_SEGMENTS_PER_WORKER`` segments a worker, each the latest checkpoint
    before an even split point: a handful of index probes, whatever the number of
    checkpoints. A boundary need not be verified first: the segment ending there
    checks its signature and the chain's hash at it, and a later segment counts only
    when every earlier one passed (see ``_walk_segments``).
    """
    from django.conf import settings

    heads = sealed_events().filter(seq__gt=after_seq)
    if up_to_seq is not None:
        heads = heads.filter(seq__lte=up_to_seq)
    head = heads.order_by("-seq").values_list("seq", flat=True).first()
    size = 0 if head is None else head - after_seq
    minimum = getattr(settings, "HITL_AUDIT_VERIFY_PARALLEL_MIN_EVENTS", VERIFY_PARALLEL_MIN_EVENTS)
    if head is None or size < max(minimum, 2):
        return []
    pieces = max(2, min(workers * VERIFY_SEGMENTS_PER_WORKER, size // VERIFY_SEGMENT_MIN_EVENTS))
    bounds: list[tuple[int, str]] = []
    low = after_seq
    for k in range(1, pieces):
        target = after_seq + size * k // pieces
        if target <= low:
            continue
        found = (Checkpoint.objects.filter(seq__gt=low, seq__lte=target).order_by("-seq")
                 .values_list("seq", "hash").first())
        if found is not None and found[0] < head:
            bounds.append(found)
            low = found[0]
    return bounds


def _walk_segments(
    *, chunk_size: int, after_seq: int, after_hash: str, up_to_seq: int | None, check_checkpoints: bool,
    witnessed: dict[int, bytes], workers: int,
) -> _Stretch | None:
    """The walk split at signed checkpoints, segments on worker processes; None: walk serially.

    Each segment starts from its checkpoint's signed hash and must pass the event at
    the next boundary with that checkpoint's hash (it checks the signature and the
    hash there, as the serial walk does). When it does, the serial walk would have
    reached the boundary in exactly the state the next segment starts from, so the
    segments' findings add up to the serial walk's: the first failing segment (in
    seq order) holds the first problem, and the counts are those of the segments
    before it plus its own. Later segments are then ignored (and not started).

    The workers are child processes started with ``subprocess`` (``audit.chain_workers``):
    they inherit no connection or thread, can be started from any thread, and, unlike
    ``multiprocessing``'s, from a daemonic process too (the nightly Celery task). Each
    imports this transaction's snapshot, so all read the rows this walk began with.
    """
    from audit import chain_workers
    from audit.signing import trusted_public_keys

    bounds = _segment_bounds(after_seq, up_to_seq, workers) if check_checkpoints else []
    if not bounds:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
    if not _SNAPSHOT_ID.match(snapshot):  # pasted into SET TRANSACTION SNAPSHOT, which takes no parameters
        return None
    starts = [(after_seq, after_hash), *bounds]
    stops: list[int | None] = [seq for seq, _ in bounds]
    stops.append(None)
    trusted = trusted_public_keys()
    settings_dict = {key: connection.settings_dict.get(key)
                     for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")}
    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE", "hitl_portal.settings")
    init = {"settings_module": settings_module, "settings_dict": settings_dict, "snapshot": snapshot}
    segments = [
        {"after_seq": start_seq, "after_hash": start_hash, "up_to_seq": up_to_seq, "stop_seq": stop,
         "check_checkpoints": check_checkpoints, "chunk_size": chunk_size, "trusted": trusted,
         # Only the witnessed heads this segment can meet: the last one takes the rest.
         "witnessed": {seq: key for seq, key in witnessed.items()
                       if seq > start_seq and (stop is None or seq <= stop)}}
        for (start_seq, start_hash), stop in zip(starts, stops, strict=True)
    ]
    merged = _Stretch(0, None, after_seq + 1, 0, None, [])
    parts = chain_workers.walk_segments(init, segments, workers=workers)
    try:
        for part in parts:
            merged = _Stretch(
                merged.count + part.count, part.head if part.count else merged.head, part.next_seq,
                merged.verified + part.verified,
                part.last_checkpoint_seq if part.last_checkpoint_seq is not None else merged.last_checkpoint_seq,
                [*merged.matched, *part.matched], part.failed, part.bad_seq, part.problem,
            )
            if part.failed:
                break  # closing ``parts`` stops the workers still walking later segments
    except chain_workers.WorkerLost as exc:
        # A worker could not be started or died (out of memory, killed): the serial walk,
        # in this same transaction and snapshot, gives the answer instead.
        logger.warning("audit chain verification: worker processes failed (%s); walking serially", exc)
        return None
    finally:
        parts.close()
    return merged


# --- Checkpoints and export ranges --------------------------------------------------------


def latest_checkpoint() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-seq").first()


def chain_head() -> tuple[int, str] | None:
    """``(seq, hash)`` of the last sealed event, or None for an empty chain."""
    # A sealed event always has its seq and hash; the columns are nullable only until sealing.
    return cast("tuple[int, str] | None", sealed_events().order_by("-seq").values_list("seq", "hash").first())


@dataclass(frozen=True)
class ExportRange:
    """A contiguous stretch of the chain to export (empty when ``count`` is 0)."""

    first_seq: int | None
    last_seq: int | None
    count: int
    first_prev_hash: str | None = None
    first_hash: str | None = None
    last_hash: str | None = None
    requested: dict[str, Any] = field(default_factory=dict)


def export_range(
    *,
    from_seq: int | None = None,
    to_seq: int | None = None,
    from_time: dt.datetime | None = None,
    to_time: dt.datetime | None = None,
) -> ExportRange:
    """Resolve a requested export (by ``seq`` and/or time) to a contiguous ``seq`` range.

    ``from_seq``/``to_seq`` are inclusive; ``from_time`` is inclusive and ``to_time``
    exclusive (``[from, to)``). A time bound selects the first/last sealed event in
    the window, and everything between them is exported, so the file is one unbroken
    stretch of the chain that verifies on its own; an event sealed inside that
    stretch but stamped just outside the window is included rather than cut out.
    """
    requested = {
        "from_seq": from_seq,
        "to_seq": to_seq,
        "from_time": from_time,
        "to_time": to_time,
    }
    events = sealed_events()
    if from_seq is not None:
        events = events.filter(seq__gte=from_seq)
    if to_seq is not None:
        events = events.filter(seq__lte=to_seq)
    if from_time is not None:
        events = events.filter(at__gte=from_time)
    if to_time is not None:
        events = events.filter(at__lt=to_time)
    first = events.order_by("seq").values_list("seq", "prev_hash", "hash").first()
    last = events.order_by("-seq").values_list("seq", "hash").first()
    if first is None or last is None:
        return ExportRange(None, None, 0, requested=requested)
    count = sealed_events().filter(seq__gte=first[0], seq__lte=last[0]).count()
    return ExportRange(first[0], last[0], count, first[1], first[2], last[1], requested)


def checkpoints_in(first_seq: int, last_seq: int) -> QuerySet[Checkpoint]:
    """The signed checkpoints an export of ``[first_seq, last_seq]`` covers."""
    return Checkpoint.objects.filter(seq__gte=first_seq, seq__lte=last_seq).order_by("seq")


