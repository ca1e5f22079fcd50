"""``Idempotency-Key`` for integrations (Stripe semantics).

- The key is scoped to the integration (user). Its row holds the request's
  fingerprint (SHA-256 of the canonical JSON body and the path) and the response
  (status and body), and is inserted **in the same transaction** as the cases the
  request created: either both exist or neither does.
- Same key, same body → the stored response again (same code and body), nothing
  created. Same key, different body → 422 ``idempotency_key_reused``.
- Two requests racing with one key: the second blocks on a unique index (the
  case's ``(system, external_id)`` or the key's own) until the first commits, then
  rolls back and replays the stored response.
- Rejected (4xx) requests store nothing, so the client can fix and retry.
- Keys are kept ``HITL_IDEMPOTENCY_KEEP_HOURS`` (48 h by default, never under 24 h);
  ``idempotency_purge`` deletes older ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection
from django.utils import timezone

from hitl_portal.errors import Conflict, Unprocessable
from reviews.models import IdempotencyKey

KEY_MAX_LENGTH = 255
MIN_KEEP_HOURS = 24


class IdempotencyKeyReused(Unprocessable):
    """422: the key was already used with a different request body."""

    default_detail = "This Idempotency-Key was already used with a different request body."
    default_code = "idempotency_key_reused"


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: Any
    replayed: bool = False


# ``remember(status_code, body)``: call inside the write transaction to store the response.
Remember = Callable[[int, Any], None]


def key_problem(key: str) -> str | None:
    """Why a header value cannot be a key (``None`` when it can): 1-255 printable ASCII characters."""
    if not key or len(key) > KEY_MAX_LENGTH:
        return f"must be 1 to {KEY_MAX_LENGTH} characters"
    if not all(" " < ch <= "~" for ch in key):
        return "must be printable ASCII without spaces"
    return None


def request_fingerprint(*, path: str, body: Any) -> str:
    """SHA-256 of the canonical JSON of the request (path and body)."""
    canonical = json.dumps(
        {"path": path, "body": body}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def idempotency_lookup(*, user: Any, key: str, fingerprint: str) -> StoredResponse | None:
    """The stored response for this key, or ``None``; 422 when the key went with another body."""
    row = (
        IdempotencyKey.objects.filter(integration=user, key=key)
        .values_list("fingerprint", "status_code", "response_body")
        .first()
    )
    if row is None:
        return None
    stored_fingerprint, status_code, body = row
    if stored_fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return StoredResponse(status_code=status_code, body=body, replayed=True)


def idempotency_store(*, user: Any, key: str, fingerprint: str, status_code: int, body: Any) -> None:
    """Store a successful response, inside the transaction that made it (4xx are never stored)."""
    if status_code >= 400:
        return
    if not connection.in_atomic_block:
        raise RuntimeError("an idempotency key is stored in the transaction of the write it answers")
    IdempotencyKey.objects.create(
        integration=user, key=key, fingerprint=fingerprint, status_code=status_code, response_body=body
    )


def run_idempotent(
    *, user: Any, key: str | None, fingerprint: str, execute: Callable[[Remember | None], StoredResponse]
) -> StoredResponse:
    """Run a write once per key.

    ``execute(remember)`` performs the write and returns the response; when a key
    was given, it must call ``remember(status_code, body)`` inside its transaction.
    Losing a race shows up as an ``IntegrityError`` (the key row) or a duplicate
    ``Conflict`` (the case row) once the winner committed: then the winner's stored
    response is replayed.
    """
    if not key:
        return execute(None)
    stored = idempotency_lookup(user=user, key=key, fingerprint=fingerprint)
    if stored is not None:
        return stored

    def remember(status_code: int, body: Any) -> None:
        idempotency_store(user=user, key=key, fingerprint=fingerprint, status_code=status_code, body=body)

    try:
        return execute(remember)
    except (IntegrityError, Conflict):
        stored = idempotency_lookup(user=user, key=key, fingerprint=fingerprint)
        if stored is not None:
            return stored
        raise


def idempotency_purge(*, older_than: dt.timedelta | None = None, now: dt.datetime | None = None) -> int:
    """Delete keys older than the retention (never less than 24 h). Returns how many."""
    keep_hours = max(MIN_KEEP_HOURS, int(settings.HITL_IDEMPOTENCY_KEEP_HOURS))
    keep = older_than if older_than is not None else dt.timedelta(hours=keep_hours)
    keep = max(keep, dt.timedelta(hours=MIN_KEEP_HOURS))
    cutoff = (now or timezone.now()) - keep
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
