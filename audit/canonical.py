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


# The envelope's canonical JSON, keys in sorted order, for the types the sealer gives it
# (``envelope_json``). ``json.encoder.encode_basestring`` is the string encoder the C
# encoder uses without ASCII escaping, so a string is written byte for byte the same.
_ENVELOPE_TEMPLATE = (
    '{"action":%s,"actor_id":%s,"actor_name":%s,"actor_type":%s,"at":%s,"case_id":%s,"object_id":%s,'
    '"object_label":%s,"object_type":%s,"payload_sha256":%s,"prev_hash":%s,"reason":%s,"request_id":%s,'
    '"seq":%s,"system_id":%s}'
)
_ENVELOPE_ORDER: tuple[str, ...] = tuple(sorted(ENVELOPE_FIELDS))
_encode_string = json.encoder.encode_basestring


def envelope_json(envelope: dict[str, Any]) -> str:
    """``canonical_json`` of the envelope's fields, written directly when each is a plain str, int or None.

    The sealer hashes every event: formatting one template costs a fraction of
    normalising and encoding a 15-key dict. Any other type (a bool, an enum member, a
    datetime) sends the envelope through ``canonical_json``.
    """
    parts: list[str] = []
    for name in _ENVELOPE_ORDER:
        value = envelope[name]
        kind = type(value)
        if kind is str:
            parts.append(_encode_string(value))
        elif kind is int:
            parts.append(int.__repr__(value))
        elif value is None:
            parts.append("null")
        else:
            return canonical_json({name: envelope[name] for name in ENVELOPE_FIELDS})
    return _ENVELOPE_TEMPLATE % tuple(parts)


def envelope_text(
    seq: int, at: str, actor_type: str, actor_id: int | None, actor_name: str, action: str, object_type: str,
    object_id: str, object_label: str, system_id: int | None, case_id: int | None, request_id: str, reason: str,
    payload_sha256: str, prev_hash: str | None,
) -> str:
    """``envelope_json`` of a stored event's columns, passed positionally (``ENVELOPE_FIELDS`` order).

    The verifier's form: it walks tens of millions of rows, and building a dict per
    row for ``envelope_json`` would cost more than a microsecond each. Same template,
    same bytes (a test holds both equal to ``canonical_json``).
    """
    j = _encode_string
    try:
        # The usual row: text columns are NOT NULL, the three ids may be null.
        return _ENVELOPE_TEMPLATE % (
            j(action), "null" if actor_id is None else actor_id, j(actor_name), j(actor_type), j(at),
            "null" if case_id is None else case_id, j(object_id), j(object_label), j(object_type),
            j(payload_sha256), j(prev_hash), j(reason), j(request_id), seq,  # type: ignore[arg-type]
            "null" if system_id is None else system_id,
        )
    except TypeError:
        # A NULL where none belongs (the string encoder refuses None): the general form.
        return envelope_json({
            "seq": seq, "at": at, "actor_type": actor_type, "actor_id": actor_id, "actor_name": actor_name,
            "action": action, "object_type": object_type, "object_id": object_id, "object_label": object_label,
            "system_id": system_id, "case_id": case_id, "request_id": request_id, "reason": reason,
            "payload_sha256": payload_sha256, "prev_hash": prev_hash,
        })


def event_hash(envelope: dict[str, Any]) -> str:
    """SHA-256 of the canonical envelope (which holds the previous hash)."""
    return sha256_hex(envelope_json(envelope))
