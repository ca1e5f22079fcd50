"""The routing engine (pure): every rule, the sampling formula, fail-safe paths, properties."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reviews.routing import (
    ACTION,
    GENERATION,
    RANDOM_SAMPLE,
    REASON_ORDER,
    CaseInput,
    RoutingRules,
    blind_fraction,
    compare,
    lookup_path,
    route,
    sample_fraction,
)

RULES = RoutingRules(system="credit-scoring")


def case(label: str | None = "approve", confidence: float | None = 0.9, external_id: str = "app-1",
         **input: Any) -> CaseInput:
    return CaseInput(external_id=external_id, input=input or {"amount": 100}, label=label, confidence=confidence)


# --- Each rule ---------------------------------------------------------------------------


def test_no_rule_fires_auto_accepts() -> None:
    decision = route(RULES, case(), system_halted=False)
    assert decision.routed is False
    assert decision.reasons == []


def test_confidence_below_threshold_routes_and_at_threshold_does_not() -> None:
    rules = RoutingRules(system="s", confidence_below=0.7)
    assert route(rules, case(confidence=0.69), system_halted=False).reasons == ["confidence_below"]
    assert route(rules, case(confidence=0.7), system_halted=False).routed is False


def test_missing_confidence_under_confidence_rule_routes() -> None:
    rules = RoutingRules(system="s", confidence_below=0.7)
    assert route(rules, case(confidence=None), system_halted=False).reasons == ["confidence_below"]


def test_always_review_label() -> None:
    rules = RoutingRules(system="s", always_review_labels=frozenset({"reject"}))
    assert route(rules, case(label="reject"), system_halted=False).reasons == ["always_review_label"]
    assert route(rules, case(label="approve"), system_halted=False).routed is False


@pytest.mark.parametrize(
    ("op", "value", "actual", "expected"),
    [
        ("gt", 1000, 1001, True), ("gt", 1000, 1000, False),
        ("gte", 1000, 1000, True), ("gte", 1000, 999.5, False),
        ("lt", 18, 17, True), ("lt", 18, 18, False),
        ("lte", 18, 18, True), ("lte", 18, 19, False),
        ("eq", "DE", "DE", True), ("eq", "DE", "FR", False),
        ("ne", "DE", "FR", True), ("ne", "DE", "DE", False),
        ("in", ["DE", "FR"], "FR", True), ("in", ["DE", "FR"], "IT", False),
        ("eq", True, True, True), ("eq", True, 1, False), ("in", [1, 2], True, False),
        ("eq", None, None, True),
    ],
)
def test_high_stakes_operators(op: str, value: Any, actual: Any, expected: bool) -> None:
    rules = RoutingRules(system="s", high_stakes=({"field": "applicant.x", "op": op, "value": value},))
    decision = route(rules, case(applicant={"x": actual}), system_halted=False)
    assert decision.reasons == (["high_stakes"] if expected else [])


def test_high_stakes_missing_field_fails_safe() -> None:
    rules = RoutingRules(system="s", high_stakes=({"field": "applicant.income", "op": "gt", "value": 5},))
    decision = route(rules, case(applicant={"name": "x"}), system_halted=False)
    assert decision.routed is True
    assert decision.reasons == ["high_stakes_field_missing"]


def test_high_stakes_type_mismatch_fails_safe() -> None:
    rules = RoutingRules(system="s", high_stakes=({"field": "amount", "op": "gt", "value": 1000},))
    assert route(rules, case(amount="lots"), system_halted=False).reasons == ["high_stakes_field_missing"]
    assert route(rules, case(amount=None), system_halted=False).reasons == ["high_stakes_field_missing"]
    assert route(rules, case(amount=True), system_halted=False).reasons == ["high_stakes_field_missing"]


def test_malformed_condition_fails_safe() -> None:
    for condition in ({"field": "amount", "op": "between", "value": 1}, {"op": "gt", "value": 1},
                      {"field": "amount", "op": "in", "value": 5}):
        rules = RoutingRules(system="s", high_stakes=(condition,))
        assert route(rules, case(amount=3), system_halted=False).reasons == ["high_stakes_field_missing"]


def test_high_stakes_hit_and_missing_both_reported() -> None:
    rules = RoutingRules(system="s", high_stakes=(
        {"field": "amount", "op": "gt", "value": 10},
        {"field": "applicant.age", "op": "lt", "value": 18},
    ))
    assert route(rules, case(amount=50), system_halted=False).reasons == ["high_stakes", "high_stakes_field_missing"]


def test_dotted_paths_into_objects_and_lists() -> None:
    data = {"a": {"b": {"c": 3}}, "items": [{"price": 7}]}
    assert lookup_path(data, "a.b.c") == 3
    assert lookup_path(data, "items.0.price") == 7
    missing = lookup_path(data, "a.b.d")
    assert missing is lookup_path(data, "items.5.price")
    assert missing is lookup_path(data, "a.b.c.d")


def test_ordered_comparison_of_strings_is_allowed_but_mixed_kinds_are_not() -> None:
    assert compare("gt", "2026-02-01", "2026-01-01") is True
    assert compare("gt", "2026", 2025) is None
    assert compare("lt", [1], 2) is None


def test_labeling_without_prediction_always_routes() -> None:
    decision = route(RoutingRules(system="s", stage="labeling"), case(label=None, confidence=None),
                     system_halted=False)
    assert decision.routed is True
    assert decision.reasons == ["labeling"]


def test_halted_system_routes_everything_first_reason() -> None:
    decision = route(RULES, case(), system_halted=True)
    assert decision.routed is True
    assert decision.reasons == ["system_halted"]
    rules = RoutingRules(system="s", confidence_below=0.99)
    assert route(rules, case(), system_halted=True).reasons == ["system_halted", "confidence_below"]


def test_reasons_in_contract_order() -> None:
    rules = RoutingRules(
        system="s", confidence_below=0.9, always_review_labels=frozenset({"reject"}),
        high_stakes=({"field": "amount", "op": "gt", "value": 1}, {"field": "nope", "op": "eq", "value": 1}),
        random_sample_rate=1.0,
    )
    decision = route(rules, case(label="reject", confidence=0.1, amount=5), system_halted=True)
    assert decision.reasons == ["system_halted", "confidence_below", "always_review_label", "high_stakes",
                                "high_stakes_field_missing", "random_sample"]


# --- Deterministic sampling ---------------------------------------------------------------------


def test_sample_fraction_matches_the_contract_formula_hand_computed() -> None:
    # SHA-256("pepper-1:credit-scoring:app-10023") starts with 14f68b107ecd28c4 (computed by hand, once).
    expected = 0x14F68B107ECD28C4 / 2**64
    assert sample_fraction("credit-scoring", "app-10023", salt="pepper-1") == expected
    assert abs(expected - 0.08188695099561429) < 1e-15


def test_random_sample_threshold_uses_the_fraction() -> None:
    below = RoutingRules(system="credit-scoring", random_sample_rate=0.08, salt="pepper-1")
    above = RoutingRules(system="credit-scoring", random_sample_rate=0.09, salt="pepper-1")
    c = case(external_id="app-10023")
    assert route(below, c, system_halted=False).routed is False
    assert route(above, c, system_halted=False).reasons == ["random_sample"]


def test_the_salt_changes_the_draw_so_the_external_id_alone_does_not_predict_it() -> None:
    # The unsalted draw an integration could compute for itself ...
    unsalted = int.from_bytes(hashlib.sha256(b"credit-scoring:app-10023").digest()[:8], "big") / 2**64
    assert abs(unsalted - 0.867702198986906) < 1e-15
    # ... says "not sampled at 0.5"; with the point's secret salt the same case is sampled.
    rules = RoutingRules(system="credit-scoring", random_sample_rate=0.5, salt="pepper-1")
    assert route(rules, case(external_id="app-10023"), system_halted=False).reasons == ["random_sample"]
    draws = {sample_fraction("credit-scoring", "app-10023", salt=salt) for salt in ("pepper-1", "pepper-2", "x")}
    assert len(draws) == 3 and unsalted not in draws


def test_blind_fraction_is_salted_differently() -> None:
    digest = hashlib.sha256(b"blind:credit-scoring:app-10023").digest()
    assert blind_fraction("credit-scoring", "app-10023") == int.from_bytes(digest[:8], "big") / 2**64
    salted = hashlib.sha256(b"blind:pepper-1:credit-scoring:app-10023").digest()
    assert blind_fraction("credit-scoring", "app-10023", salt="pepper-1") == (
        int.from_bytes(salted[:8], "big") / 2**64
    )
    assert blind_fraction("credit-scoring", "app-10023", salt="pepper-1") != sample_fraction(
        "credit-scoring", "app-10023", salt="pepper-1"
    )


# --- Properties -----------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(-1e6, 1e6, allow_nan=False) | (
    st.text(max_size=8)
)
inputs = st.dictionaries(st.sampled_from(["amount", "age", "country", "flag"]), json_scalars, max_size=4)
conditions = st.fixed_dictionaries({
    "field": st.sampled_from(["amount", "age", "country", "flag", "nested.deep"]),
    "op": st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne", "in"]),
    "value": json_scalars | st.lists(json_scalars, max_size=3),
})
rules_strategy = st.builds(
    RoutingRules,
    system=st.sampled_from(["credit-scoring", "triage"]),
    stage=st.sampled_from(["labeling", "validation", "exception"]),
    confidence_below=st.none() | st.floats(0, 1),
    always_review_labels=st.frozensets(st.sampled_from(["approve", "reject", "refer"]), max_size=2),
    high_stakes=st.lists(conditions, max_size=3).map(tuple),
    random_sample_rate=st.floats(0, 1),
    salt=st.text(max_size=16),
)
cases_strategy = st.builds(
    CaseInput,
    external_id=st.text(min_size=1, max_size=20),
    input=inputs,
    label=st.none() | st.sampled_from(["approve", "reject", "refer"]),
    confidence=st.none() | st.floats(0, 1),
)


@settings(max_examples=300, deadline=None, database=None)
@given(rules=rules_strategy, c=cases_strategy, halted=st.booleans())
def test_property_routed_iff_reasons_in_contract_order(rules: RoutingRules, c: CaseInput, halted: bool) -> None:
    decision = route(rules, c, system_halted=halted)
    assert decision.routed == bool(decision.reasons)
    assert len(set(decision.reasons)) == len(decision.reasons)
    positions = [REASON_ORDER.index(reason) for reason in decision.reasons]
    assert positions == sorted(positions)
    if halted:
        assert decision.reasons[0] == "system_halted"
    if c.label is None:
        assert "labeling" in decision.reasons
    # Deterministic: the same inputs give the same answer.
    assert route(rules, c, system_halted=halted) == decision


@settings(max_examples=300, deadline=None, database=None)
@given(c=cases_strategy, threshold=st.floats(0, 1))
def test_property_confidence_rule(c: CaseInput, threshold: float) -> None:
    decision = route(RoutingRules(system="s", confidence_below=threshold), c, system_halted=False)
    if c.label is not None:
        fires = c.confidence is None or c.confidence < threshold
        assert ("confidence_below" in decision.reasons) == fires


@settings(max_examples=300, deadline=None, database=None)
@given(external_id=st.text(min_size=1, max_size=40), low=st.floats(0, 1), high=st.floats(0, 1),
       salt=st.text(max_size=16))
def test_property_sampling_is_monotonic_in_the_rate(external_id: str, low: float, high: float, salt: str) -> None:
    low, high = min(low, high), max(low, high)
    fraction = sample_fraction("s", external_id, salt=salt)
    assert 0 <= fraction < 1
    # The contract's formula, computed here independently of the engine.
    digest = hashlib.sha256(f"{salt}:s:{external_id}".encode()).digest()
    assert fraction == int.from_bytes(digest[:8], "big") / 2**64
    c = CaseInput(external_id=external_id, input={}, label="approve", confidence=1.0)
    sampled_low = route(RoutingRules(system="s", random_sample_rate=low, salt=salt), c, system_halted=False).routed
    sampled_high = route(RoutingRules(system="s", random_sample_rate=high, salt=salt), c, system_halted=False).routed
    assert sampled_low == (fraction < low)
    assert not sampled_low or sampled_high
    assert route(RoutingRules(system="s", random_sample_rate=0.0, salt=salt), c, system_halted=False).routed is False
    assert route(RoutingRules(system="s", random_sample_rate=1.0, salt=salt), c, system_halted=False).routed is True


@settings(max_examples=200, deadline=None, database=None)
@given(data=inputs, path=st.sampled_from(["missing", "amount.deeper", "nested.deep"]),
       op=st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne", "in"]))
def test_property_missing_field_always_routes(data: dict[str, Any], path: str, op: str) -> None:
    rules = RoutingRules(system="s", high_stakes=({"field": path, "op": op, "value": [1]},))
    decision = route(rules, CaseInput(external_id="x", input=data, label="approve", confidence=1.0),
                     system_halted=False)
    assert decision.reasons == ["high_stakes_field_missing"]


@settings(max_examples=200, deadline=None, database=None)
@given(rules=rules_strategy, c=cases_strategy)
def test_property_halting_never_unroutes(rules: RoutingRules, c: CaseInput) -> None:
    running = route(rules, c, system_halted=False)
    halted = route(rules, c, system_halted=True)
    assert halted.routed is True
    assert halted.reasons == ["system_halted", *running.reasons]


@pytest.mark.parametrize("kind", [GENERATION, ACTION])
def test_random_sample_of_generation_and_action_points_is_salted(kind: str) -> None:
    """The kinds' path draws the sample with the point's salt, as classification does (it used to raise)."""
    payload = {"text": "hello"} if kind == GENERATION else {"tool": "send_email", "arguments": {}}
    item = CaseInput(external_id="gen-1", input={}, payload=payload)
    fraction = sample_fraction("s", "gen-1", salt="pepper-1")
    below = RoutingRules(system="s", kind=kind, random_sample_rate=fraction + 1e-9, salt="pepper-1")
    at = RoutingRules(system="s", kind=kind, random_sample_rate=fraction, salt="pepper-1")
    assert route(below, item, system_halted=False).reasons == [RANDOM_SAMPLE]
    assert route(at, item, system_halted=False).routed is False
