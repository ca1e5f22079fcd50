"""Writing the audit trail: the one event function, and the sealer that chains events.

Design (see docs/ARCHITECTURE.md): sequence numbers drawn at insert commit out
of order, and a global lock held until commit would cap ingest at the disk's
commit rate. So events are inserted unsealed in the business transaction, and a
single sealer, serialised by an advisory lock, later gives committed events a
gap-free ``seq`` and their hashes in the order they became visible.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from typing import Any, cast, overload

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.canonical import GENESIS_HASH, canonical_json, event_hash, normalize, sha256_hex
from audit.catalogue import ACTIONS
from audit.models import ActorType, AuditEvent, Checkpoint
from audit.signals import chain_broken
from hitl_portal.actors import SYSTEM_USERNAME, Actor, current_actor, current_request_id
from hitl_portal.roles import INTEGRATION, user_role

logger = logging.getLogger(__name__)

# Any constant works; it names the sealer's advisory lock in pg_locks.
SEALER_LOCK_KEY = 0x48_49_54_4C_5345  # "HITLSE"
SEAL_BATCH = 2000

_UNSET: Any = object()


def _actor_fields(actor: Actor) -> tuple[str, int | None, str]:
    if actor is None:
        return ActorType.SYSTEM, None, "system"
    username = actor.get_username()
    if username == SYSTEM_USERNAME:
        return ActorType.SYSTEM, actor.pk, username
    if user_role(actor) == INTEGRATION:
        return ActorType.INTEGRATION, actor.pk, username
    return ActorType.USER, actor.pk, username


def record_event(
    action: str,
    *,
    actor: Actor = _UNSET,
    obj: Any = None,
    object_type: str | None = None,
    object_id: Any = None,
    object_label: str | None = None,
    system_id: int | None = None,
    case_id: int | None = None,
    data: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    at: Any = None,
) -> AuditEvent:
    """Record one audit event in the caller's transaction (the one function for it).

    ``actor`` defaults to the acting user bound to this request or task; ``None``
    means the system. The event is unsealed until the sealer runs after commit.
    """
    return bulk_record_events([
        dict(
            action=action, actor=actor, obj=obj, object_type=object_type, object_id=object_id,
            object_label=object_label, system_id=system_id, case_id=case_id, data=data,
            before=before, after=after, reason=reason, at=at,
        )
    ])[0]


# The columns an event is inserted with (the seal columns stay NULL until sealing).
INSERT_COLUMNS: tuple[str, ...] = (
    "at", "actor_type", "actor_id", "actor_name", "action", "object_type", "object_id", "object_label",
    "system_id", "case_id", "request_id", "reason", "payload", "payload_sha256",
)
# PostgreSQL: up to this many events go in one multi-row INSERT; more go by COPY (batch ingest).
COPY_FROM_EVENTS = 64


class RecordedEvents(Sequence[AuditEvent]):
    """The events just inserted, as ``AuditEvent`` instances built only when a caller reads one.

    Most callers never read them: building 2,000 model instances per batch of 1,000
    cases would cost more than inserting the rows.
    """

    def __init__(self, rows: list[tuple[Any, ...]], ids: list[int], alias: str) -> None:
        self._rows = rows
        self._ids = ids
        self._alias = alias

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> AuditEvent: ...

    @overload
    def __getitem__(self, index: slice) -> list[AuditEvent]: ...

    def __getitem__(self, index: int | slice) -> AuditEvent | list[AuditEvent]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        event = AuditEvent(id=self._ids[index], **dict(zip(INSERT_COLUMNS, self._rows[index], strict=True)))
        event._state.adding = False
        event._state.db = self._alias
        return event


@functools.cache
def _values_sql(count: int) -> str:
    """``INSERT … VALUES (…), (…) RETURNING id`` for ``count`` events, built once per process."""
    row = "(" + ", ".join(["%s"] * len(INSERT_COLUMNS)) + ")"
    return (f"INSERT INTO {AuditEvent._meta.db_table} ({', '.join(INSERT_COLUMNS)}) VALUES "
            + ", ".join([row] * count) + " RETURNING id")


_COPY_SQL = f"COPY {AuditEvent._meta.db_table} (id, {', '.join(INSERT_COLUMNS)}) FROM STDIN"
_NEXT_IDS_SQL = (f"SELECT nextval(pg_get_serial_sequence('{AuditEvent._meta.db_table}', 'id'))"
                 " FROM generate_series(1, %s)")


def _insert_rows_pg(rows: list[tuple[Any, ...]]) -> list[int]:
    """PostgreSQL: the rows in one multi-row INSERT, or (many) by COPY with ids drawn first; their ids.

    The ids come from the table's own sequence either way, so the sealer's order
    (by id, among committed events) is the same as with any other insert. ``COPY``
    bypasses Django's cursor wrapper, so its errors are mapped explicitly.
    """
    with connection.cursor() as cursor:
        if len(rows) <= COPY_FROM_EVENTS:
            cursor.execute(_values_sql(len(rows)), [value for row in rows for value in row])
            return [r[0] for r in cursor.fetchall()]
        cursor.execute(_NEXT_IDS_SQL, [len(rows)])
        ids = [r[0] for r in cursor.fetchall()]
        with connection.wrap_database_errors, cursor.copy(_COPY_SQL) as copy:
            for pk, row in zip(ids, rows, strict=True):
                copy.write_row((pk, *row))
    return ids


def bulk_record_events(specs: list[dict[str, Any]]) -> Sequence[AuditEvent]:
    """Record many events with one statement (batch ingest); same rules as ``record_event``.

    Rows are built as tuples (no model instances); on PostgreSQL they go in one
    multi-row INSERT built once per row count, or by ``COPY`` for a batch.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit events are written inside the state change's own transaction")
    request_id = current_request_id()[:80]
    default_actor = current_actor()
    rows: list[tuple[Any, ...]] = []
    # Most batches have one actor: resolve its fields (and role) once.
    actors: dict[int, tuple[str, int | None, str]] = {}
    for spec in specs:
        action = spec["action"]
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}: add it to audit.catalogue")
        actor = spec.get("actor", _UNSET)
        actor = default_actor if actor is _UNSET else actor
        fields = actors.get(id(actor))
        if fields is None:
            kind, pk, name = _actor_fields(actor)
            # Plain str: a database driver may write an enum member by its name, not its value.
            fields = actors[id(actor)] = (str(kind), pk, name[:150])
        actor_type, actor_id, actor_name = fields
        obj = spec.get("obj")
        payload: dict[str, Any] = {}
        for key in ("data", "before", "after"):
            if spec.get(key) is not None:
                payload[key] = spec[key]
        payload_text = canonical_json(payload)
        object_type = spec.get("object_type") or (obj._meta.model_name if obj is not None else "")
        object_id = spec.get("object_id")
        if object_id is None and obj is not None:
            object_id = obj.pk
        object_label = spec.get("object_label")
        if object_label is None and obj is not None:
            object_label = str(obj)
        rows.append((
            spec.get("at"),
            actor_type,
            actor_id,
            actor_name,
            action,
            object_type,
            "" if object_id is None else str(object_id),
            (object_label or "")[:255],
            spec.get("system_id"),
            spec.get("case_id"),
            request_id,
            spec.get("reason") or "",
            payload_text,
            sha256_hex(payload_text),
        ))
    if not rows:
        return []
    # Stamped when written, after the rows were built (a batch's 2,000 take a while).
    now = timezone.now()
    rows = [row if row[0] else (now, *row[1:]) for row in rows]
    if connection.vendor == "postgresql":
        ids = _insert_rows_pg(rows)
        _schedule_seal()
        return RecordedEvents(rows, ids, connection.alias)
    created = AuditEvent.objects.bulk_create(
        [AuditEvent(**dict(zip(INSERT_COLUMNS, row, strict=True))) for row in rows]
    )
    _schedule_seal()
    return created


def _schedule_seal() -> None:
    """Seal right after this transaction commits (once per transaction)."""
    if not settings.HITL_AUDIT_SEAL_ON_COMMIT:
        return
    # Entries are (savepoint ids, callback, robust); the stubs still list two items.
    if any(entry[1] is _seal_after_commit for entry in connection.run_on_commit):
        return
    transaction.on_commit(_seal_after_commit)


# One leading seal request per interval for all web processes, and one trailing request
# when the interval is taken (``_request_seal``): in Redis beside the broker's queue.
SEAL_LEAD_KEY = "hitl:audit:seal-lead"
SEAL_TRAIL_KEY = "hitl:audit:seal-trail"
# KEYS: lead, trail; ARGV: interval ms. Returns 0: publish now (this process leads the
# interval); n > 0: publish a trailing request n ms from now (when the lead's interval
# ends); -n: another process's trailing request runs n ms from now, nothing to publish.
_SEAL_SCRIPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 1 then ttl = 1 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ttl) then return ttl end
return -ttl
"""
# The trailing key lives exactly as long as the lead it trails: its request runs when the lead
# expires, so a trail key outliving it would make the next interval's commits believe in a
# trailing request that already ran (the benchmark found events left unsealed that way).
# Until this (epoch seconds) a seal request this process knows of will still start after
# any commit made now: no need to ask Redis again.
_covered_until = 0.0
_last_seal_request = 0.0
_seal_script: Any = None


def _seal_coordinator() -> Any:
    """The Redis script that coordinates seal requests across processes, or None (broker not Redis)."""
    global _seal_script
    if _seal_script is None:
        url = settings.CELERY_BROKER_URL or ""
        if not url.startswith(("redis://", "rediss://")):
            _seal_script = False
        else:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
            _seal_script = client.register_script(_SEAL_SCRIPT)
    return _seal_script or None


def _request_seal() -> None:
    """Ask the worker to seal soon after this commit: at most one request per interval, none dropped.

    A request published now may already be running when a later commit lands, so
    within the interval a *trailing* request is published once, due when the
    interval ends: every committed event is sealed by a request that starts after
    its commit, within about ``HITL_AUDIT_SEAL_REQUEST_INTERVAL_MS`` plus the sealing time,
    however the traffic stops. With a Redis broker all web processes share one
    leading and one trailing request per interval (a single script round trip,
    skipped while this process knows a later request is due); otherwise each
    process keeps its own.
    """
    global _covered_until, _last_seal_request
    from audit.tasks import seal_pending_task
    from hitl_portal.queueing import enqueue

    now = time.time()
    if now < _covered_until:
        return
    interval_ms = settings.HITL_AUDIT_SEAL_REQUEST_INTERVAL_MS
    script = _seal_coordinator()
    if script is not None:
        import redis

        try:
            verdict = int(script(keys=[SEAL_LEAD_KEY, SEAL_TRAIL_KEY], args=[interval_ms]))
        except redis.RedisError:
            logger.warning("seal coordination unavailable; publishing a seal request", exc_info=True)
            verdict = 0
    else:
        # This process alone: lead an interval, or trail the one it leads.
        elapsed_ms = int((time.monotonic() - _last_seal_request) * 1000)
        verdict = 0 if elapsed_ms >= interval_ms else interval_ms - elapsed_ms
        if verdict == 0:
            _last_seal_request = time.monotonic()
    if verdict == 0:
        enqueue(seal_pending_task)
        return
    delay_s = abs(verdict) / 1000
    if verdict > 0:
        enqueue(seal_pending_task, countdown=delay_s)
    # The known request starts after ``delay_s``; a few ms of margin for the clocks of the hosts.
    _covered_until = now + max(delay_s - 0.005, 0.0)


def _seal_after_commit() -> None:
    """Get the just-committed events sealed soon, without slowing the request much.

    ``inline`` (SQLite, embedded broker): seal here, in the committing process.
    ``task`` (PostgreSQL with a real broker): hand sealing to the worker
    (``_request_seal``: one request per interval for all processes, and a trailing
    one so that no event waits for the next request); the sealing statements and
    their second commit leave the request path. Beat's one-second sweep remains the
    safety net (a lost message, a broker down).
    """
    try:
        if settings.HITL_AUDIT_SEAL_MODE == "task":
            if settings.CELERY_TASK_ALWAYS_EAGER:
                # Eager (unit-test) mode seals every time, so tests see sealed events at once.
                from audit.tasks import seal_pending_task
                from hitl_portal.queueing import enqueue

                enqueue(seal_pending_task)
                return
            _request_seal()
        else:
            seal_pending(wait=False)
    except Exception:  # the beat sweeper seals whatever is left; never fail the request
        logger.exception("audit sealing after commit failed; beat will retry")


def seal_pending(*, wait: bool = True, max_events: int | None = None, request_checkpoint: bool = True) -> int:
    """Seal committed, unsealed events in the order they became visible.

    On PostgreSQL one sealer at a time holds an advisory lock; with ``wait=False``
    a busy sealer is left to finish (it loops until nothing is left, and beat
    sweeps what arrives just after). On SQLite writers are serialised anyway.
    With ``request_checkpoint``, a checkpoint is asked for once
    ``HITL_AUDIT_CHECKPOINT_EVENTS`` events were sealed since the last one.
    Returns how many events were sealed.
    """
    sealed = _seal_loop(wait=wait, max_events=max_events)
    if sealed and request_checkpoint:
        _request_checkpoint_if_due()
    return sealed


_last_checkpoint_request = 0.0
CHECKPOINT_REQUEST_INTERVAL_S = 2.0


def _request_checkpoint_if_due() -> None:
    """Queue a checkpoint when the unsigned tail reached ``HITL_AUDIT_CHECKPOINT_EVENTS`` events.

    Beat signs one every ``HITL_AUDIT_CHECKPOINT_SECONDS``; under heavy ingest this
    keeps the unsigned (and unwitnessed) tail short too. Published without retries:
    with the broker down, beat's own schedule catches up. At most one request every
    two seconds per process; a surplus checkpoint task finds nothing new and does nothing.
    """
    global _last_checkpoint_request
    threshold = settings.HITL_AUDIT_CHECKPOINT_EVENTS
    if threshold <= 0:
        return
    now = time.monotonic()
    if now - _last_checkpoint_request < CHECKPOINT_REQUEST_INTERVAL_S:
        return
    head = AuditEvent.objects.filter(seq__isnull=False).order_by("-seq").values_list("seq", flat=True).first() or 0
    last = Checkpoint.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    if head - last < threshold:
        return
    _last_checkpoint_request = now
    from audit.tasks import checkpoint_task
    from hitl_portal.queueing import enqueue

    # With the broker down, beat signs the next checkpoint on its own schedule.
    enqueue(checkpoint_task)


def _seal_loop(*, wait: bool, max_events: int | None) -> int:
    sealed = 0
    while True:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    if wait:
                        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEALER_LOCK_KEY])
                    else:
                        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEALER_LOCK_KEY])
                        if not cursor.fetchone()[0]:
                            return sealed
                    # A lost seal is recomputed from the durable unsealed row, so
                    # the sealer need not wait for its own fsync.
                    cursor.execute("SET LOCAL synchronous_commit = off")
            count = _seal_batch()
        sealed += count
        if count < SEAL_BATCH or (max_events is not None and sealed >= max_events):
            return sealed


# The envelope's stored columns, in ``ENVELOPE_FIELDS`` order without seq and prev_hash.
_SEAL_READ_COLUMNS = ("id", "at", "actor_type", "actor_id", "actor_name", "action", "object_type", "object_id",
                      "object_label", "system_id", "case_id", "request_id", "reason", "payload_sha256")


def _seal_batch() -> int:
    # A sealed event always has its seq and hash; the columns are nullable only until sealing.
    sealed = AuditEvent.objects.sealed().order_by("-seq").values_list("seq", "hash")
    head = cast("tuple[int, str] | None", sealed.first())
    seq, prev_hash = head if head else (0, GENESIS_HASH)
    table = AuditEvent._meta.db_table
    # Rows as tuples (with the ORM's conversions), not model instances: a sealer keeping up
    # with batch ingest hashes thousands of events a second.
    pending = list(
        AuditEvent.objects.filter(seq__isnull=True).order_by("id").values_list(*_SEAL_READ_COLUMNS)[:SEAL_BATCH]
    )
    if not pending:
        return 0
    now = timezone.now()
    ids: list[int] = []
    seqs: list[int] = []
    prevs: list[str] = []
    hashes: list[str] = []
    for row in pending:
        seq += 1
        envelope = dict(zip(_SEAL_READ_COLUMNS[1:], row[1:], strict=True))
        envelope["seq"] = seq
        envelope["at"] = normalize(envelope["at"])
        envelope["prev_hash"] = prev_hash
        digest = event_hash(envelope)
        ids.append(row[0])
        seqs.append(seq)
        prevs.append(prev_hash)
        hashes.append(digest)
        prev_hash = digest
    with connection.cursor() as cursor:
        # The one permitted UPDATE of an event (the database trigger allows it
        # only on an unsealed row, and only of these four columns).
        if connection.vendor == "postgresql":
            # One statement for the whole batch instead of one per event.
            cursor.execute(
                f"UPDATE {table} e SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash, sealed_at = %s "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[]) AS v(id, seq, prev_hash, hash) "
                "WHERE e.id = v.id AND e.seq IS NULL",
                [now, ids, seqs, prevs, hashes],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET seq = %s, prev_hash = %s, hash = %s, sealed_at = %s WHERE id = %s AND seq IS NULL",
                [(q, p, h, now, pk) for pk, q, p, h in zip(ids, seqs, prevs, hashes, strict=True)],
            )
    return len(pending)


def payload_of(event: AuditEvent) -> dict[str, Any] | None:
    """The event's payload as data (None once purged)."""
    import json

    return None if event.payload is None else json.loads(event.payload)


# --- Signed checkpoints ------------------------------------------------------------------

# Names the checkpointer's advisory lock (one checkpoint at a time).
CHECKPOINT_LOCK_KEY = 0x48_49_54_4C_4350  # "HITLCP"


class ChainBroken(Exception):
    """The chain does not verify: nothing may be signed over it."""

    def __init__(self, result: Any) -> None:
        super().__init__(f"audit chain broken at seq {result.first_bad_seq}: {result.problem}")
        self.result = result


def checkpoint_sign(*, actor: Actor = None, force: bool = False) -> Checkpoint | None:
    """Sign a checkpoint of the chain head (seq, hash, time) with the portal's Ed25519 key.

    Seals pending events first, then verifies what the new checkpoint will vouch
    for: the events after the previous checkpoint, starting from its (signed) hash,
    so a checkpoint never blesses a rewritten chain (``ChainBroken`` instead).
    Returns None when there is nothing new to sign: an empty chain, or nothing
    after the previous checkpoint but that checkpoint's own event (unless
    ``force``), so an idle portal does not sign a checkpoint every ten minutes.
    Records ``audit.checkpoint_signed`` with the signature in its payload, which
    anchors the checkpoint in the chain it signs, and after commit hands the
    checkpoint to the external witness (``audit.witness``).
    """
    from audit.selectors import chain_head, latest_checkpoint, verify_chain
    from audit.signing import checkpoint_statement, public_key, sign
    from audit.witness import witness_checkpoint

    seal_pending(wait=True, request_checkpoint=False)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHECKPOINT_LOCK_KEY])
        head = chain_head()
        if head is None:
            return None
        head_seq, head_hash = head
        last = latest_checkpoint()
        if last is not None:
            if head_seq <= last.seq:
                if head_seq < last.seq:
                    raise ChainBroken(verify_chain())
                return None
            news = AuditEvent.objects.filter(seq__gt=last.seq).exclude(action="audit.checkpoint_signed")
            if not force and not news.exists():
                return None
        # Verify from the previous checkpoint on: first that checkpoint itself (its
        # signature, and the event at its seq still carrying its hash), then every
        # event after it up to the head about to be signed.
        start_seq, start_hash = (last.seq, last.hash) if last is not None else (0, GENESIS_HASH)
        if last is not None:
            previous = verify_chain(after_seq=last.seq - 1, after_hash=_prev_hash_of(last.seq), up_to_seq=last.seq)
            if not previous.ok:
                raise ChainBroken(previous)
        result = verify_chain(after_seq=start_seq, after_hash=start_hash, up_to_seq=head_seq)
        if not result.ok:
            raise ChainBroken(result)
        key = public_key()
        signed_at = timezone.now()
        signature = sign(checkpoint_statement(seq=head_seq, hash=head_hash, signed_at=signed_at))
        checkpoint = Checkpoint.objects.create(
            seq=head_seq,
            hash=head_hash,
            signed_at=signed_at,
            signature=signature,
            key_fingerprint=key.fingerprint,
            public_key=key.hex,
        )
        record_event(
            "audit.checkpoint_signed",
            actor=actor,
            obj=checkpoint,
            data={
                "seq": head_seq,
                "hash": head_hash,
                "signed_at": signed_at,
                "signature": signature,
                "key_fingerprint": key.fingerprint,
                "events_verified": result.events,
            },
        )
        # Outside the database, once committed: the witness never holds a checkpoint
        # that was rolled back (a rolled-back one would read as "missing" later).
        transaction.on_commit(lambda: witness_checkpoint(checkpoint))
    return checkpoint


def _prev_hash_of(seq: int) -> str:
    """The stored ``prev_hash`` of the event at ``seq`` (genesis when there is none)."""
    value = AuditEvent.objects.filter(seq=seq).values_list("prev_hash", flat=True).first()
    return value or GENESIS_HASH


def chain_verification_record(*, result: Any, actor: Actor = _UNSET) -> Any:
    """Record a verification (``audit.verified``) and, when the chain is broken, announce it.

    The ledger does not know the incident register (a higher floor): a broken
    chain is announced with ``audit.signals.chain_broken`` inside this same
    transaction, and the register files the incident (once per break). Returns
    what the first receiver returned (the incident filed), or None.
    """
    with transaction.atomic():
        record_event(
            "audit.verified",
            actor=actor,
            object_type="auditevent",
            object_id="" if result.ok else str(result.first_bad_seq),
            object_label="audit chain",
            data=result.as_report(),
        )
        if result.ok:
            return None
        responses = chain_broken.send(
            sender=chain_verification_record, result=result, actor=current_actor() if actor is _UNSET else actor
        )
    return next((response for _receiver, response in responses if response is not None), None)


__all__ = [
    "ChainBroken",
    "bulk_record_events",
    "chain_verification_record",
    "checkpoint_sign",
    "normalize",
    "payload_of",
    "record_event",
    "seal_pending",
]
