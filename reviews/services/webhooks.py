"""Signed webhooks: enqueue on decided / auto-accepted, deliver with retries kept in a table.

Flow (api-v1 "Webhooks"):

1. ``webhooks_enqueue`` runs inside the transaction in which cases reached
   ``decided`` or ``auto_accepted``. It freezes the exact JSON body (what was
   decided *then*) in a ``WebhookDelivery`` row and schedules ONE Celery task for
   all rows on commit, so no task ever runs before its rows exist and no delivery
   ever runs inside a web request.
2. ``webhooks_deliver`` (the task) and ``webhooks_sweep`` (beat, every few
   seconds) send due pending rows. A row is *claimed* before it is sent: a short
   transaction (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite
   serialises writers) pushes ``next_attempt_at`` forward by a lease, so two
   workers never send the same delivery at once and no row lock is held while
   the network is slow. A worker that dies mid-send leaves the row due again
   after the lease (at-least-once; receivers dedupe by ``X-HITL-Delivery``).
3. Each attempt is logged (``WebhookAttempt``). 2xx → delivered (audited);
   otherwise exponential backoff ``min(base · 2^(attempts-1), cap)`` until
   ``max attempts``, then failed (audited). Retries wait in the table for the
   sweeper, never as long countdowns on the broker.

The body is signed at send time with the integration's *current* webhook secret,
so a rotated secret takes effect for pending retries too. Two signatures travel
with every request:

- Standard Webhooks (the spec Svix and Argilla follow, verifiable with its
  official libraries): ``webhook-id`` (the delivery's uuid, the same on every
  retry), ``webhook-timestamp`` (Unix seconds of this attempt) and
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``
  keyed by the base64-decoded secret (``signing_key``);
- the original ``X-HITL-Delivery`` and ``X-HITL-Signature: sha256=<hex HMAC of
  the raw body>`` keyed by the secret's text, for receivers written before.

Where a webhook may go is decided by ``reviews.services.webhook_guard`` (SSRF):
the host is resolved at send time, non-public addresses are refused unless the
operator allow-listed them (``HITL_WEBHOOK_ALLOW``), and the connection goes to
the checked address. A receiver's reply body is never read into the attempt log
or the audit trail: only its status code and sanitised reason phrase are kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone

from audit.services import record_event
from hitl_portal.actors import Actor
from reviews.models import (
    Case,
    CaseStatus,
    DeliveryStatus,
    IntegrationProfile,
    WebhookAttempt,
    WebhookDelivery,
)
from reviews.services.webhook_guard import (
    ALLOWED_SCHEMES,
    DestinationRefused,
    callback_url_problem,
    webhook_session,
)

logger = logging.getLogger(__name__)

EVENT_DECIDED = "case.decided"
EVENT_AUTO_ACCEPTED = "case.auto_accepted"
_EVENT_FOR_STATUS: dict[str, str] = {CaseStatus.DECIDED: EVENT_DECIDED, CaseStatus.AUTO_ACCEPTED: EVENT_AUTO_ACCEPTED}

USER_AGENT = "hitl-portal-webhooks/1"
# Kept short in the audit trail and the admin: an error is a category, never a receiver's page.
MAX_ERROR_CHARS = 300
MAX_REASON_CHARS = 60
SECRET_PREFIX = "whsec_"


def webhook_timeout() -> float:
    """Seconds to wait for a receiver (connect + response)."""
    return float(settings.HITL_WEBHOOK_TIMEOUT_SECONDS)


def max_attempts() -> int:
    """Attempts before a delivery gives up (status failed)."""
    return int(settings.HITL_WEBHOOK_MAX_ATTEMPTS)


def backoff_delay(attempts: int) -> timedelta:
    """Wait before the next attempt after ``attempts`` failed ones: ``min(base · 2^(attempts-1), cap)``."""
    base = float(settings.HITL_WEBHOOK_BACKOFF_BASE_SECONDS)
    cap = float(settings.HITL_WEBHOOK_BACKOFF_CAP_SECONDS)
    exponent = max(attempts - 1, 0)
    # Beyond 2^20 the cap has long applied; avoid building huge floats.
    seconds = cap if exponent > 20 else min(base * (2**exponent), cap)
    return timedelta(seconds=seconds)


def _lease() -> timedelta:
    # Longer than one send (timeout) with a wide margin: only a dead worker lets it lapse.
    return timedelta(seconds=webhook_timeout() + 55)


def sign(body: bytes, secret: str) -> str:
    """The legacy ``X-HITL-Signature`` header value: ``sha256=<hex HMAC-SHA256(body, secret text)>``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signing_key(secret: str) -> bytes:
    """The Standard Webhooks key: the base64 decoding of the secret after its ``whsec_`` prefix.

    Secrets issued now are ``whsec_`` + standard base64 of 32 random bytes, exactly
    what the spec's libraries decode. Secrets issued before used the URL-safe
    alphabet (``-``, ``_``, no padding): they are decoded with that alphabet, which
    yields the same 32 random bytes they were made from (receivers whose library
    insists on the standard alphabet translate ``-``→``+`` and ``_``→``/``, or rotate).
    A secret that is no base64 at all (set by hand) is keyed by its UTF-8 text.
    """
    text = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    text = text.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    return key or secret.encode("utf-8")


def sign_standard(*, msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def _case_representation(case: Case) -> dict[str, Any]:
    # Imported late: the selector module imports services of its own.
    from reviews.selectors.cases import case_representation

    return case_representation(case)


def render_body(*, event: str, case: Case) -> str:
    """The exact JSON text that is stored, signed and sent (compact, stable key order)."""
    payload = {"event": event, "case": _case_representation(case)}
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


# --- Enqueue ----------------------------------------------------------------------


def webhooks_enqueue(*, cases: Iterable[Case]) -> list[WebhookDelivery]:
    """Create a delivery for every case with a ``callback_url``; one task for all, on commit.

    Call it inside the transaction in which the cases reached ``decided`` or
    ``auto_accepted`` (the rows roll back with it). Cases without a callback URL,
    or in any other status, are skipped without a query. The body is rendered now,
    so it reflects what was decided in this transaction.
    """
    wanted = [case for case in cases if case.callback_url and case.status in _EVENT_FOR_STATUS]
    if not wanted:
        return []
    # One query per relation for the whole batch instead of per case (no N+1); already
    # cached relations (the ingest and decision services attach them) cost nothing.
    prefetch_related_objects(wanted, "system", "intervention_point", "decisions__reviewer")
    now = timezone.now()
    rows = [
        WebhookDelivery(
            case=case,
            integration_id=case.submitted_by_id,
            event=_EVENT_FOR_STATUS[case.status],
            url=case.callback_url,
            body=render_body(event=_EVENT_FOR_STATUS[case.status], case=case),
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
            created_at=now,
        )
        for case in wanted
    ]
    created = WebhookDelivery.objects.bulk_create(rows)
    ids = [row.pk for row in created]
    transaction.on_commit(lambda: _schedule_delivery(ids))
    return created


def _schedule_delivery(delivery_ids: list[int]) -> None:
    """Hand the ids to the worker; if the broker is down the sweeper still finds the rows."""
    from hitl_portal.queueing import enqueue
    from reviews.tasks_webhooks import deliver_webhooks

    # Once, no retry loop: a committed request never waits for (or fails on) the broker.
    enqueue(deliver_webhooks, delivery_ids)


# --- Claiming ---------------------------------------------------------------------


def _claim(*, now: datetime, delivery_id: int | None = None) -> tuple[WebhookDelivery, datetime] | None:
    """Claim one due pending delivery (the given one, or the next due) by pushing out its lease.

    Returns the row and its lease stamp, or None when nothing is due / another
    worker holds it. The transaction is short: the HTTP call happens after commit.
    """
    lease_until = now + _lease()
    with transaction.atomic():
        qs = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        if delivery_id is not None:
            qs = qs.filter(pk=delivery_id)
        qs = qs.order_by("next_attempt_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        delivery = qs.select_related("case").first()
        if delivery is None:
            return None
        # Compare-and-set: on SQLite (no row locks) the IMMEDIATE transaction already
        # serialises us, and the conditional UPDATE makes the claim explicit anyway.
        claimed = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.PENDING, next_attempt_at=delivery.next_attempt_at
        ).update(next_attempt_at=lease_until)
        if not claimed:
            return None
        delivery.next_attempt_at = lease_until
    return delivery, lease_until


# --- Sending ----------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    """The outcome of one HTTP attempt."""

    status_code: int | None
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")


def _reason(text: str) -> str:
    """A receiver's reason phrase, reduced to short printable ASCII (it is receiver-controlled)."""
    return _UNPRINTABLE.sub(" ", text or "").strip()[:MAX_REASON_CHARS]


def _post(*, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
    """One POST through the SSRF guard; the reply's body is never read, only its status line."""
    started = time.monotonic()
    status: int | None = None
    error = ""
    session = webhook_session(timeout=webhook_timeout(), user_agent=USER_AGENT)
    try:
        response = session.post(url, data=body, headers=headers, stream=True, allow_redirects=False)
        try:
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status} {_reason(response.reason)}".strip()
        finally:
            response.close()
    except DestinationRefused as exc:
        error = f"refused: {exc}"
    except requests.Timeout:
        error = "timed out"
    except requests.exceptions.SSLError:
        error = "TLS error"
    except requests.ConnectionError as exc:
        error = f"connection error: {_connection_reason(exc)}"
    except (requests.RequestException, OSError, ValueError) as exc:
        error = f"request error: {type(exc).__name__}"
    finally:
        session.close()
    duration_ms = int((time.monotonic() - started) * 1000)
    return SendResult(status_code=status, error=error[:MAX_ERROR_CHARS], duration_ms=duration_ms)


def _connection_reason(exc: requests.ConnectionError) -> str:
    """A category of the failure (resolution, refusal, reset), not the library's nested repr."""
    text = str(exc).lower()
    if "could not resolve" in text or "name or service" in text or "resolve" in text:
        return "could not resolve the host"
    if "refused" in text:
        return "connection refused"
    if "reset" in text or "aborted" in text:
        return "connection reset"
    return "could not connect"


def _current_secret(delivery: WebhookDelivery) -> str | None:
    if delivery.integration_id is None:
        return None
    return (
        IntegrationProfile.objects.filter(user_id=delivery.integration_id)
        .values_list("webhook_secret", flat=True)
        .first()
    ) or None


def _send(delivery: WebhookDelivery) -> SendResult:
    """One attempt: refuse what may not be sent, else POST the stored body with both signatures."""
    scheme = urlsplit(delivery.url).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        return SendResult(None, f"refused: callback URL scheme {scheme!r} is not http or https", 0)
    # Rows stored before submission was checked (or written directly) get the same refusals.
    problem = callback_url_problem(delivery.url)
    if problem:
        return SendResult(None, f"refused: {problem}", 0)
    secret = _current_secret(delivery)
    if secret is None:
        return SendResult(None, "refused: the submitting account has no integration webhook secret", 0)
    body = delivery.body.encode("utf-8")
    msg_id = str(delivery.uuid)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard(msg_id=msg_id, timestamp=timestamp, body=body, secret=secret),
        "X-HITL-Delivery": msg_id,
        "X-HITL-Signature": sign(body, secret),
    }
    return _post(url=delivery.url, body=body, headers=headers)


def _is_permanent(result: SendResult) -> bool:
    # Retrying cannot fix a refused scheme or a missing secret: give up at once.
    return result.status_code is None and result.error.startswith("refused:")


def _audit_data(delivery: WebhookDelivery, result: SendResult) -> dict[str, Any]:
    # The URL may carry the integration's tokens or identifiers: only its host is kept.
    return {
        "delivery": str(delivery.uuid),
        "event": delivery.event,
        "attempts": delivery.attempts,
        "status_code": result.status_code,
        "error": result.error,
        "host": urlsplit(delivery.url).hostname or "",
    }


def _record(*, delivery: WebhookDelivery, lease_until: datetime, result: SendResult, now: datetime) -> str:
    """Log the attempt and move the delivery on (delivered / retry later / failed).

    If an admin re-requested the delivery while it was in flight (the lease stamp
    changed), the attempt is logged but the new schedule is left alone, except a
    success, which is a success whoever asked for it.
    """
    with transaction.atomic():
        current = WebhookDelivery.objects.select_for_update().select_related("case").get(pk=delivery.pk)
        WebhookAttempt.objects.create(
            delivery=current,
            attempted_at=now,
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
        )
        ours = current.status == DeliveryStatus.PENDING and current.next_attempt_at == lease_until
        if not ours and not (result.ok and current.status == DeliveryStatus.PENDING):
            return current.status
        current.attempts += 1
        current.last_status_code = result.status_code
        current.last_error = result.error
        fields = ["attempts", "last_status_code", "last_error", "status", "next_attempt_at", "delivered_at"]
        if result.ok:
            current.status = DeliveryStatus.DELIVERED
            current.delivered_at = now
            action = "webhook.delivered"
        elif _is_permanent(result) or current.attempts >= max_attempts():
            current.status = DeliveryStatus.FAILED
            action = "webhook.failed"
        else:
            current.next_attempt_at = now + backoff_delay(current.attempts)
            action = None
        current.save(update_fields=fields)
        if action is not None:
            record_event(
                action,
                actor=None,
                obj=current,
                object_label=f"webhook {current.uuid}",
                system_id=current.case.system_id,
                case_id=current.case_id,
                data=_audit_data(current, result),
            )
        return current.status


def _attempt(*, now: datetime, delivery_id: int | None = None) -> tuple[int, str] | None:
    claim = _claim(now=now, delivery_id=delivery_id)
    if claim is None:
        return None
    delivery, lease_until = claim
    result = _send(delivery)
    status = _record(delivery=delivery, lease_until=lease_until, result=result, now=now)
    return delivery.pk, status


# --- Entry points used by the tasks -------------------------------------------------


def webhooks_deliver(*, delivery_ids: Iterable[int], now: datetime | None = None, budget_seconds: float = 240.0) -> int:
    """Send the given deliveries if they are still pending and due; returns how many were attempted.

    Idempotent: delivered, failed, not-yet-due or in-flight rows are skipped, so a
    re-run task (``acks_late``) never sends a delivered row again. Stops after
    ``budget_seconds`` (below the task time limit); the sweeper sends the rest.
    """
    started = time.monotonic()
    attempted = 0
    for delivery_id in sorted(set(delivery_ids)):
        if time.monotonic() - started > budget_seconds:
            logger.info("webhook delivery budget spent; leaving the rest to the sweeper")
            break
        if _attempt(now=now or timezone.now(), delivery_id=delivery_id) is not None:
            attempted += 1
    return attempted


def webhooks_sweep(*, now: datetime | None = None, batch: int | None = None, budget_seconds: float = 60.0) -> int:
    """Send due pending deliveries (oldest due first), at most ``batch`` of them; returns the count.

    Run by beat every few seconds. Several sweepers may run at once: each claims
    rows another does not hold. With ``now`` given (tests), every attempt uses it
    as the clock, so a retry is driven by passing a later ``now``, not by sleeping.
    """
    limit = batch if batch is not None else int(settings.HITL_WEBHOOK_SWEEP_BATCH)
    started = time.monotonic()
    attempted = 0
    while attempted < limit and time.monotonic() - started <= budget_seconds:
        if _attempt(now=now or timezone.now()) is None:
            break
        attempted += 1
    return attempted


# --- Admin: redeliver ---------------------------------------------------------------


@transaction.atomic
def webhook_redeliver(*, actor: Actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again (same body and ``X-HITL-Delivery``, signed with the current secret).

    Resets it to pending with a fresh attempt budget, due now; the attempt log is
    kept. Audited as ``webhook.redelivery_requested``; the task is enqueued on commit.
    """
    current = WebhookDelivery.objects.select_for_update().select_related("case").get(pk=delivery.pk)
    before = {"status": current.status, "attempts": current.attempts}
    now = timezone.now()
    current.status = DeliveryStatus.PENDING
    current.attempts = 0
    current.next_attempt_at = now
    current.delivered_at = None
    current.save(update_fields=["status", "attempts", "next_attempt_at", "delivered_at"])
    record_event(
        "webhook.redelivery_requested",
        actor=actor,
        obj=current,
        object_label=f"webhook {current.uuid}",
        system_id=current.case.system_id,
        case_id=current.case_id,
        before=before,
        after={"status": current.status, "attempts": current.attempts},
        data={"delivery": str(current.uuid), "event": current.event},
    )
    pk = current.pk
    transaction.on_commit(lambda: _schedule_delivery([pk]))
    return current
