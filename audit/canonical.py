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


# Values ``normalize`` returns as they are. Exact types only: a subclass (an enum
# member, a ``str`` with its own ``__str__``) takes the general path below, as before.
_PLAIN: frozenset[type] = frozenset((str, int, bool, type(None)))


def normalize(value: Any) -> Any:
    """Turn a value into JSON-safe, float-free data (new containers; the input is never changed)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return _normalize_dict(value)
    if kind is list:
        return [v if type(v) in _PLAIN else normalize(v) for v in value]
    return _normalize_other(value)


def _normalize_dict(value: dict[Any, Any]) -> dict[str, Any]:
    # The audit payloads are small dicts of plain values: resolving those here, without a
    # call per value, is most of the saving (byte-identical: ``str`` of a ``str`` is itself).
    plain = _PLAIN
    return {
        (k if type(k) is str else str(k)): (v if type(v) in plain else normalize(v)) for k, v in value.items()
    }


def _normalize_other(value: Any) -> Any:
    """The general path: subclasses, floats, decimals, dates, UUIDs, other containers."""
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


# One encoder for every call: ``json.dumps`` with these options builds a new one each time.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    return _ENCODER.encode(normalize(value))


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
