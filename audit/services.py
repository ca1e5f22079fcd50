"""Writing the audit trail: the one event function, and the sealer that chains events.

Design (see docs/ARCHITECTURE.md): sequence numbers drawn at insert commit out
of order, and a global lock held until commit would cap ingest at the disk's
commit rate. So events are inserted unsealed in the business transaction, and a
single sealer, serialised by an advisory lock, later gives committed events a
gap-free ``seq`` and their hashes in the order they became visible.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

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
SEAL_REQUEST_INTERVAL_S = 0.1

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


def bulk_record_events(specs: list[dict[str, Any]]) -> list[AuditEvent]:
    """Record many events with one INSERT (batch ingest); same rules as ``record_event``."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit events are written inside the state change's own transaction")
    request_id = current_request_id()
    default_actor = current_actor()
    now = timezone.now()
    rows: list[AuditEvent] = []
    for spec in specs:
        action = spec["action"]
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}: add it to audit.catalogue")
        actor = spec.get("actor", _UNSET)
        actor = default_actor if actor is _UNSET else actor
        actor_type, actor_id, actor_name = _actor_fields(actor)
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
        rows.append(
            AuditEvent(
                at=spec.get("at") or now,
                actor_type=actor_type,
                actor_id=actor_id,
                actor_name=actor_name[:150],
                action=action,
                object_type=object_type,
                object_id="" if object_id is None else str(object_id),
                object_label=(object_label or "")[:255],
                system_id=spec.get("system_id"),
                case_id=spec.get("case_id"),
                request_id=request_id[:80],
                reason=spec.get("reason") or "",
                payload=payload_text,
                payload_sha256=sha256_hex(payload_text),
            )
        )
    created = AuditEvent.objects.bulk_create(rows)
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


_last_seal_request = 0.0


def _seal_after_commit() -> None:
    """Get the just-committed events sealed soon, without slowing the request much.

    ``inline`` (SQLite, embedded broker): seal here, in the committing process.
    ``task`` (PostgreSQL with a real broker): hand sealing to a worker, at most
    ten requests a second per process; the sealing statements and their second
    commit then leave the request path, and beat's one-second sweep bounds the lag.
    """
    global _last_seal_request
    try:
        if settings.HITL_AUDIT_SEAL_MODE == "task":
            now = time.monotonic()
            # Eager (unit-test) mode seals every time, so tests see sealed events at once.
            if now - _last_seal_request < SEAL_REQUEST_INTERVAL_S and not settings.CELERY_TASK_ALWAYS_EAGER:
                return
            _last_seal_request = now
            from audit.tasks import seal_pending_task
            from hitl_portal.queueing import enqueue

            enqueue(seal_pending_task)
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


def _seal_batch() -> int:
    # A sealed event always has its seq and hash; the columns are nullable only until sealing.
    sealed = AuditEvent.objects.sealed().order_by("-seq").values_list("seq", "hash")
    head = cast("tuple[int, str] | None", sealed.first())
    seq, prev_hash = head if head else (0, GENESIS_HASH)
    pending = list(AuditEvent.objects.filter(seq__isnull=True).order_by("id")[:SEAL_BATCH])
    if not pending:
        return 0
    now = timezone.now()
    updates: list[tuple[int, str, str, Any, int]] = []
    for event in pending:
        seq += 1
        event.seq = seq
        event.prev_hash = prev_hash
        event.hash = event_hash(event.envelope())
        updates.append((seq, prev_hash, event.hash, now, event.pk))
        prev_hash = event.hash
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        # The one permitted UPDATE of an event (the database trigger allows it
        # only on an unsealed row, and only of these four columns).
        cursor.executemany(
            f"UPDATE {table} SET seq = %s, prev_hash = %s, hash = %s, sealed_at = %s WHERE id = %s AND seq IS NULL",
            updates,
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
