"""Canonical JSON: the exact bytes the audit chain hashes.

Sorted keys, compact separators, UTF-8, and no floats: a float is written as its
shortest decimal string, because jsonb and other JSON stacks rewrite numbers and a
hash must cover bytes that never change. Pure stdlib, no Django.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import uuid
from typing import Any

GENESIS_HASH = "0" * 64


def normalize(value: Any) -> Any:
    """Turn a value into JSON-safe, float-free data."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [normalize(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return str(value)


def canonical_json(value: Any) -> str:
    return json.dumps(normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# The envelope: every field of an event except its payload, which is covered by
# its hash so that a lawful purge of the payload leaves the chain verifiable.
ENVELOPE_FIELDS: tuple[str, ...] = (
    "seq",
    "at",
    "actor_type",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "object_label",
    "system_id",
    "case_id",
    "request_id",
    "reason",
    "payload_sha256",
    "prev_hash",
)


def event_hash(envelope: dict[str, Any]) -> str:
    """SHA-256 of the canonical envelope (which holds the previous hash)."""
    return sha256_hex(canonical_json({name: envelope[name] for name in ENVELOPE_FIELDS}))
