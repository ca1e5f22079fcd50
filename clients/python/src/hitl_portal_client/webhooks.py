"""Verifying the portal's webhooks (Standard Webhooks).

The portal signs ``"{webhook-id}.{webhook-timestamp}.{body}"`` with HMAC-SHA256
keyed by the base64-decoded ``whsec_`` secret and sends ``webhook-signature:
v1,<base64>`` (several space-separated signatures during a secret rotation).
Timestamps older or newer than ``tolerance`` seconds are refused (replays).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from hitl_portal_client.errors import WebhookVerificationError

PREFIX = "whsec_"


def _key(secret: str) -> bytes:
    raw = secret[len(PREFIX):] if secret.startswith(PREFIX) else secret
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise WebhookVerificationError("the webhook secret is not base64") from exc


def sign(*, msg_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """The ``v1,<base64>`` signature of one message (what the portal sends)."""
    content = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), content, hashlib.sha256).digest()).decode()


def verify_webhook(body: bytes | str, headers: Mapping[str, str], secret: str, *, tolerance: int = 300,
                   now: float | None = None) -> dict[str, Any]:
    """Check a webhook's signature and timestamp; returns the parsed JSON body."""
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(stamp)
    except ValueError as exc:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from exc
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance (replay?)")
    raw = body.encode() if isinstance(body, str) else body
    expected = sign(msg_id=msg_id, timestamp=timestamp, body=raw, secret=secret)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures.split()):
        raise WebhookVerificationError("no signature matches")
    return json.loads(raw)
