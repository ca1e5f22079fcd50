"""Canonical JSON: the fast paths of ``normalize`` write exactly the bytes the general path wrote.

The audit chain hashes ``canonical_json`` output, so a payload must encode to the
same text it always did. ``_reference_normalize`` below is the implementation as it
was before the exact-type fast paths (kept here, frozen, as the oracle); hypothesis
feeds both varied payloads: plain JSON values, the types only the general path
knows (floats, decimals, datetimes, dates, UUIDs, sets, tuples), subclasses of the
plain types (enum members, a ``str`` with its own ``__str__``) and non-string keys.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from audit.canonical import ENVELOPE_FIELDS, canonical_json, envelope_json, event_hash, normalize, sha256_hex


def _reference_normalize(value: Any) -> Any:
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
        return {str(k): _reference_normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_reference_normalize(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return str(value)


def _reference_canonical_json(value: Any) -> str:
    return json.dumps(_reference_normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Status(enum.StrEnum):
    QUEUED = "queued"
    DONE = "done"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Shouty(str):
    """A ``str`` whose ``str()`` differs from its content: keys must go through ``str()``."""

    def __str__(self) -> str:
        return self.upper()


class Opaque:
    """An unknown type: written as its ``str()``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __str__(self) -> str:
        return f"opaque-{self.n}"


zones = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=2)), dt.timezone(dt.timedelta(hours=-5, minutes=-30))])
datetimes = st.one_of(
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2200, 1, 1), timezones=zones),
)
plain = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=12))
hashable_leaves = st.one_of(
    plain,
    st.floats(allow_nan=False),
    st.decimals(allow_nan=False),
    st.dates(),
    st.uuids(),
    st.sampled_from(list(Status)),
    st.sampled_from(list(Level)),
    st.text(max_size=6).map(Shouty),
)
leaves = st.one_of(
    plain, plain, plain,  # mostly plain values, as audit payloads are
    hashable_leaves,
    st.floats(),  # nan and infinities too
    datetimes,
    st.integers(0, 99).map(Opaque),
)
keys = st.one_of(
    st.text(max_size=8), st.text(max_size=8),
    st.integers(-5, 5), st.booleans(), st.none(), st.sampled_from(list(Status)), st.text(max_size=4).map(Shouty),
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=6),
        st.frozensets(hashable_leaves, max_size=4),
        st.sets(st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=3)), max_size=4),
    ),
    max_leaves=25,
)


@settings(max_examples=1000, deadline=None, database=None)
@given(value=values)
def test_canonical_json_is_byte_identical_to_the_reference(value: Any) -> None:
    assert canonical_json(value) == _reference_canonical_json(value)


@settings(max_examples=300, deadline=None, database=None)
@given(value=st.dictionaries(st.text(max_size=8), values, max_size=6))
def test_normalize_equals_the_reference_and_copies(value: dict[str, Any]) -> None:
    before = repr(value)
    result = normalize(value)
    assert result == _reference_normalize(value)
    assert json.dumps(result, sort_keys=True) == json.dumps(_reference_normalize(value), sort_keys=True)
    # A new container (callers may change what normalize returned), and the input untouched.
    assert result is not value
    assert repr(value) == before


def test_subclasses_take_the_general_path() -> None:
    # An enum member keeps its value, a ``Shouty`` key goes through ``str()`` (upper-cased),
    # a ``Shouty`` value is written as its content: exactly what the general path did.
    payload = {"status": Status.QUEUED, Shouty("k"): Shouty("v"), "level": Level.HIGH, 1: True, None: 0.5}
    assert canonical_json(payload) == '{"1":true,"K":"v","None":"0.5","level":2,"status":"queued"}'
    assert canonical_json(payload) == _reference_canonical_json(payload)


def test_audit_payload_bytes_are_pinned() -> None:
    """A ``case.created``-shaped payload, its text and hash written down: the bytes the chain holds."""
    payload = {
        "data": {
            "external_id": "app-ü-1",
            "input_hash": "ab" * 32,
            "intervention_point": "loan-review",
            "prediction": {"confidence": 0.42, "label": "approve", "model_version": "v3.1"},
            "rules_version": 3,
        },
        "after": {"status": Status.QUEUED, "sla_deadline": dt.datetime(2026, 12, 2, 11, 0, tzinfo=dt.UTC)},
    }
    text = canonical_json(payload)
    assert text == (
        '{"after":{"sla_deadline":"2026-12-02T11:00:00.000000Z","status":"queued"},'
        '"data":{"external_id":"app-ü-1","input_hash":"' + "ab" * 32 + '","intervention_point":"loan-review",'
        '"prediction":{"confidence":"0.42","label":"approve","model_version":"v3.1"},"rules_version":3}}'
    )
    assert sha256_hex(text) == sha256_hex(_reference_canonical_json(payload))


envelope_ids = st.one_of(st.none(), st.integers(-(2**63), 2**63), st.integers(1, 99))
envelope_texts = st.one_of(st.text(max_size=20), st.text(alphabet="\x00\x1f\"\\/\u2028é€😀", max_size=6))


@settings(max_examples=700, deadline=None, database=None)
@given(
    ids=st.lists(envelope_ids, min_size=3, max_size=3),
    texts=st.lists(envelope_texts, min_size=9, max_size=9),
    seq=st.integers(1, 2**62),
    prev=st.one_of(st.none(), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)),
    odd=st.one_of(st.none(), st.tuples(
        st.sampled_from(ENVELOPE_FIELDS),
        st.one_of(st.booleans(), st.sampled_from(list(Status)), st.sampled_from(list(Level)), st.floats(),
                  datetimes, st.text(max_size=3).map(Shouty)),
    )),
)
def test_event_hash_matches_the_reference(
    ids: list[int | None], texts: list[str], seq: int, prev: str | None, odd: tuple[str, Any] | None
) -> None:
    """The envelope written from its template, or (any other type) through ``canonical_json``: the same bytes."""
    actor_id, system_id, case_id = ids
    envelope: dict[str, Any] = dict(zip(
        ("at", "actor_type", "actor_name", "action", "object_type", "object_id", "object_label", "request_id",
         "reason"), texts, strict=True,
    ))
    envelope.update(seq=seq, actor_id=actor_id, system_id=system_id, case_id=case_id, prev_hash=prev,
                    payload_sha256="0" * 64, extra="not hashed")
    if odd is not None:
        envelope[odd[0]] = odd[1]
    reference = _reference_canonical_json({name: envelope[name] for name in ENVELOPE_FIELDS})
    assert envelope_json(envelope) == reference
    assert event_hash(envelope) == sha256_hex(reference)
