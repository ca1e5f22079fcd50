"""Fairness metrics from count tables: fairlearn as the oracle on random data, and hand-built figures.

fairlearn is a test-only dependency. It and we agree wherever a rate is defined;
where one is not (a group without ground-truth positives has no TPR), fairlearn
counts it as 0 and we leave the group out of that spread (and say ``None``), so
the oracle data gives every group at least one positive and one negative.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from fairness.metrics import (
    DEFAULT_THRESHOLDS,
    compute_results,
    merge_counts,
    resolve_min_group_size,
    resolve_thresholds,
)

POS, NEG = "approve", "reject"
GROUPS = ("a", "b", "c", "d")


def label(bit: int) -> str:
    return POS if bit else NEG


def rows_of(cases: list[tuple[str, int, int, int | None]]) -> list[list[object]]:
    """Count rows (one per case) of ``(group, ai bit, final bit, truth bit or None)`` cases, all reviewed."""
    return merge_counts([[[g, label(ai), label(final), None if truth is None else label(truth), True, "decided", 1]
                          for g, ai, final, truth in cases]])


def results_of(cases, **kwargs):
    kwargs.setdefault("min_group_size", 1)
    kwargs.setdefault("thresholds", DEFAULT_THRESHOLDS)
    return compute_results(rows_of(cases), positive_label=POS, **kwargs)


case_strategy = st.tuples(
    st.sampled_from(GROUPS), st.integers(0, 1), st.integers(0, 1), st.one_of(st.none(), st.integers(0, 1))
)


@st.composite
def audit_data(draw):
    """Random cases over 2–4 groups; each group gets a positive and a negative with ground truth (see above)."""
    groups = GROUPS[: draw(st.integers(2, 4))]
    cases = [(g, draw(st.integers(0, 1)), draw(st.integers(0, 1)), truth) for g in groups for truth in (0, 1)]
    extra = draw(st.lists(case_strategy.filter(lambda c: c[0] in groups), max_size=150))
    return cases + extra


# fairlearn builds a pandas frame per call (tens of ms): 60 examples keep this test to seconds.
@settings(max_examples=60, deadline=None)
@given(audit_data())
def test_metrics_match_fairlearn_on_random_data(cases):
    results = results_of(cases)
    groups = [c[0] for c in cases]
    with_truth = [c for c in cases if c[3] is not None]
    for kind, index in (("ai", 1), ("final", 2)):
        y_pred = [c[index] for c in cases]
        block = results["metrics"][kind]
        # Selection metrics use every labelled case; y_true plays no part in them.
        assert block["demographic_parity_difference"] == pytest.approx(
            demographic_parity_difference(y_pred, y_pred, sensitive_features=groups), abs=1e-12)
        rates = MetricFrame(metrics=selection_rate, y_true=y_pred, y_pred=y_pred, sensitive_features=groups).by_group
        if rates.max() == 0:
            assert block["disparate_impact_ratio"] is None
        else:
            # fairlearn's demographic_parity_ratio is the same min / max of the selection rates.
            assert block["disparate_impact_ratio"] == pytest.approx(rates.min() / rates.max(), abs=1e-12)
        by_value = {g["value"]: g for g in results["groups"]}
        for value, rate in rates.items():
            assert by_value[value][f"selection_rate_{kind}"] == pytest.approx(rate, abs=1e-12)
        # Error-rate metrics use the cases with ground truth only.
        y_true = [c[3] for c in with_truth]
        y_hat = [c[index] for c in with_truth]
        sensitive = [c[0] for c in with_truth]
        assert block["equalized_odds_difference"] == pytest.approx(
            equalized_odds_difference(y_true, y_hat, sensitive_features=sensitive), abs=1e-12)
        frame = MetricFrame(metrics={"tpr": true_positive_rate, "fpr": false_positive_rate},
                            y_true=y_true, y_pred=y_hat, sensitive_features=sensitive).by_group
        for value in frame.index:
            assert by_value[value][f"tpr_{kind}"] == pytest.approx(frame.loc[value, "tpr"], abs=1e-12)
            assert by_value[value][f"fpr_{kind}"] == pytest.approx(frame.loc[value, "fpr"], abs=1e-12)
        assert block["tpr_difference"] == pytest.approx(frame["tpr"].max() - frame["tpr"].min(), abs=1e-12)
        assert block["fpr_difference"] == pytest.approx(frame["fpr"].max() - frame["fpr"].min(), abs=1e-12)
    # The un-suffixed TPR/FPR of a group are the AI's.
    for group in results["groups"]:
        assert (group["tpr"], group["fpr"]) == (group["tpr_ai"], group["fpr_ai"])


@settings(max_examples=100, deadline=None)
@given(st.lists(case_strategy, min_size=1, max_size=120), st.integers(1, 6), st.randoms(use_true_random=False))
def test_chunked_counts_give_the_same_results_as_one_table(cases, parts, rnd):
    """Fan-in: however the cases are split into chunks, the summed counts give identical results."""
    whole = results_of(cases, min_group_size=5)
    shuffled = list(cases)
    rnd.shuffle(shuffled)
    chunks: list[list[list[object]]] = [[] for _ in range(parts)]
    for case in shuffled:
        g, ai, final, truth = case
        chunks[rnd.randrange(parts)].append([g, label(ai), label(final), None if truth is None else label(truth),
                                             True, "decided", 1])
    merged = compute_results(merge_counts(chunks), positive_label=POS, thresholds=DEFAULT_THRESHOLDS,
                             min_group_size=5)
    assert merged == whole


def test_hand_built_example_with_known_figures():
    # Group f: 100 cases, AI approves 40 (all truly approve), reviewers override 10 AI rejections to approve.
    # Group m: 100 cases, AI approves 70; ground truth only negatives (no positives: TPR undefined).
    # Group x: 12 cases (under the minimum size of 30): reported, not compared.
    rows = [
        ["f", POS, POS, POS, True, "decided", 40],
        ["f", NEG, POS, POS, True, "decided", 10],
        ["f", NEG, NEG, NEG, True, "decided", 50],
        ["m", POS, POS, NEG, True, "decided", 20],
        ["m", POS, POS, None, False, "auto_accepted", 50],
        ["m", NEG, NEG, NEG, True, "decided", 30],
        ["x", POS, POS, None, False, "auto_accepted", 12],
    ]
    results = compute_results(rows, positive_label=POS, thresholds=DEFAULT_THRESHOLDS, min_group_size=30)
    f, m, x = results["groups"]
    assert (f["value"], f["n"], m["n"], x["n"]) == ("f", 100, 100, 12)
    assert f["selection_rate_ai"] == 0.4 and f["selection_rate_final"] == 0.5
    assert m["selection_rate_ai"] == 0.7 and m["selection_rate_final"] == 0.7
    # f: 50 truly positive, the AI caught 40 → TPR 0.8; final caught all 50 → 1.0; no false positives.
    assert (f["tpr_ai"], f["fpr_ai"], f["tpr_final"], f["fpr_final"]) == (0.8, 0.0, 1.0, 0.0)
    # m has no ground-truth positives: TPR is null, never 0; FPR = 20 / 50.
    assert m["tpr"] is None and m["tpr_ai"] is None and m["tpr_final"] is None
    assert m["fpr"] == 0.4
    # Override rate among reviewed (routed and decided) cases: f 10/100; m 0/50 (auto-accepted not reviewed).
    assert f["override_rate"] == 0.1 and m["override_rate"] == 0.0 and m["reviewed"] == 50
    assert x["insufficient_n"] is True and x["included"] is False and x["excluded_reason"] == "insufficient_n"
    assert x["override_rate"] is None  # nothing of x was reviewed
    ai, final = results["metrics"]["ai"], results["metrics"]["final"]
    # x (selection 100 %) is left out: only f and m are compared.
    assert ai["groups_compared"] == 2
    assert ai["disparate_impact_ratio"] == pytest.approx(0.4 / 0.7)
    assert ai["demographic_parity_difference"] == pytest.approx(0.3)
    assert (ai["min_group"], ai["max_group"]) == ("f", "m")
    assert ai["four_fifths_rule"] == "fail"
    assert final["disparate_impact_ratio"] == pytest.approx(0.5 / 0.7)
    assert final["demographic_parity_difference"] == pytest.approx(0.2)
    # TPR spread undefined (m has none); FPR spread 0.4 − 0 decides equalized odds.
    assert ai["tpr_difference"] is None and ai["fpr_difference"] == pytest.approx(0.4)
    assert ai["equalized_odds_difference"] == pytest.approx(0.4)
    breached = {(b["labels"], b["metric"]) for b in results["breaches"]}
    assert breached == {
        ("ai", "disparate_impact_ratio"), ("ai", "demographic_parity_difference"),
        ("ai", "equalized_odds_difference"), ("final", "disparate_impact_ratio"),
        ("final", "demographic_parity_difference"), ("final", "equalized_odds_difference"),
    }
    assert results["cases"] == 212


def test_disparate_impact_ratio_matches_fairlearn_ratio():
    cases = [("a", 1, 1, None)] * 3 + [("a", 0, 0, None)] * 7 + [("b", 1, 0, None)] * 6 + [("b", 0, 1, None)] * 4
    y_ai = [c[1] for c in cases]
    groups = [c[0] for c in cases]
    block = results_of(cases)["metrics"]["ai"]
    assert block["disparate_impact_ratio"] == pytest.approx(
        demographic_parity_ratio(y_ai, y_ai, sensitive_features=groups), abs=1e-12)
    assert block["disparate_impact_ratio"] == pytest.approx(0.5)


def test_exactly_four_fifths_passes_and_thresholds_compare_exactly():
    # 40 % against 50 %: the ratio is exactly 0.8, which is not adverse impact.
    rows = [["a", POS, POS, None, False, "auto_accepted", 40], ["a", NEG, NEG, None, False, "auto_accepted", 60],
            ["b", POS, POS, None, False, "auto_accepted", 50], ["b", NEG, NEG, None, False, "auto_accepted", 50]]
    results = compute_results(rows, positive_label=POS, thresholds=DEFAULT_THRESHOLDS, min_group_size=30)
    block = results["metrics"]["ai"]
    assert block["four_fifths_rule"] == "pass"
    assert Fraction(block["disparate_impact_ratio"]).limit_denominator(100) == Fraction(4, 5)
    # A parity difference of exactly 0.1 is at the threshold, not above it.
    assert block["demographic_parity_difference"] == pytest.approx(0.1)
    assert results["breaches"] == []
    assert block["equalized_odds_difference"] is None  # no ground truth at all


def test_groups_without_the_attribute_and_undefined_ratios():
    rows = [[None, POS, POS, None, False, "auto_accepted", 500],
            ["a", NEG, NEG, None, False, "auto_accepted", 40], ["b", NEG, NEG, None, False, "auto_accepted", 40]]
    results = compute_results(rows, positive_label=POS, thresholds=DEFAULT_THRESHOLDS, min_group_size=30)
    missing = results["groups"][-1]
    assert missing["value"] is None and missing["excluded_reason"] == "missing_attribute"
    block = results["metrics"]["ai"]
    # Nobody selected in either group: parity holds (0) but the ratio 0/0 is undefined.
    assert block["demographic_parity_difference"] == 0.0
    assert block["disparate_impact_ratio"] is None and block["four_fifths_rule"] is None
    assert results["breaches"] == []


def test_a_single_comparable_group_gives_no_metrics():
    rows = [["a", POS, POS, POS, True, "decided", 100], ["b", NEG, NEG, NEG, True, "decided", 5]]
    block = compute_results(rows, positive_label=POS, thresholds=DEFAULT_THRESHOLDS, min_group_size=30)["metrics"]
    assert block["ai"]["groups_compared"] == 1
    assert block["ai"]["disparate_impact_ratio"] is None
    assert block["ai"]["demographic_parity_difference"] is None
    assert block["ai"]["equalized_odds_difference"] is None


def test_cases_without_labels_count_in_n_but_not_in_rates():
    # A labelling case without a prediction, and a queued case without a final label.
    rows = [["a", None, POS, None, True, "decided", 10], ["a", POS, None, None, True, "queued", 10],
            ["a", NEG, NEG, None, True, "decided", 10]]
    group = compute_results(rows, positive_label=POS, thresholds=DEFAULT_THRESHOLDS, min_group_size=1)["groups"][0]
    assert group["n"] == 30
    assert group["selection_rate_ai"] == 0.5  # 10 of the 20 with an AI label
    assert group["selection_rate_final"] == 0.5  # 10 of the 20 with a final label
    assert group["reviewed"] == 10 and group["override_rate"] == 0.0  # decided and with an AI label


def test_thresholds_resolve_from_defaults_and_valid_system_keys():
    assert resolve_thresholds(None) == DEFAULT_THRESHOLDS
    custom = resolve_thresholds({"disparate_impact_min": 0.9, "demographic_parity_max": "x",
                                 "equalized_odds_max": True, "other": 1})
    assert custom == {"disparate_impact_min": 0.9, "demographic_parity_max": 0.1, "equalized_odds_max": 0.1}
    assert resolve_min_group_size({"min_group_size": 50}, 30) == 50
    assert resolve_min_group_size({"min_group_size": 0}, 30) == 30
    assert resolve_min_group_size({}, 30) == 30


def test_merge_counts_sums_equal_keys_and_orders_stably():
    chunk_a = [["b", POS, POS, None, True, "decided", 2], ["a", NEG, NEG, None, False, "auto_accepted", 1]]
    chunk_b = [["a", NEG, NEG, None, 0, "auto_accepted", 4], [None, POS, NEG, POS, 1, "decided", 3]]
    merged = merge_counts([chunk_a, chunk_b])
    assert merged == [
        ["a", NEG, NEG, None, False, "auto_accepted", 5],
        ["b", POS, POS, None, True, "decided", 2],
        [None, POS, NEG, POS, True, "decided", 3],
    ]
    rnd = random.Random(7)
    shuffled = [list(chunk_b), list(chunk_a)]
    rnd.shuffle(shuffled)
    assert merge_counts(shuffled) == merged
