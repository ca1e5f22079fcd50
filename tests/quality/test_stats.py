"""quality.stats against textbook examples and hand-computed values.

Sources of the worked examples:

* Cohen's κ: the 50 grant proposals of the Wikipedia "Cohen's kappa" article
  (yes/yes 20, yes/no 5, no/yes 10, no/no 15): p_o = 0.7, p_e = 0.5, κ = 0.4.
* Fleiss' κ: the worked example of the Wikipedia "Fleiss' kappa" article
  (10 subjects, 14 raters, 5 categories): P̄ = 0.378, P̄_e = 0.213, κ = 0.210.
* Krippendorff's α: K. Krippendorff, "Computing Krippendorff's Alpha-Reliability"
  (2011), example C (nominal data, 4 observers, 12 units, missing values): α = 0.743;
  and example A (binary data, two observers): α = 0.095.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from quality import stats

# --- Cohen's κ ---------------------------------------------------------------------------------------


def test_cohen_kappa_textbook_table():
    table = {("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15}
    assert stats.cohen_kappa_table(table) == pytest.approx(0.4)


def test_cohen_kappa_from_ratings_matches_the_table():
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert stats.cohen_kappa(a, b) == pytest.approx(0.4)
    # Missing ratings drop the item from both raters.
    assert stats.cohen_kappa([*a, None, "yes"], [*b, "no", None]) == pytest.approx(0.4)


def test_cohen_kappa_hand_computed_binary():
    """Krippendorff's example A as two raters: 10 items, agree on 6.

    A: 0 1 0 0 0 0 0 0 1 0 (two 1s), B: 1 1 1 0 0 1 0 0 0 0 (four 1s).
    p_o = 6/10; p_e = 0.2·0.4 + 0.8·0.6 = 0.56; κ = 0.04/0.44 = 1/11.
    """
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert stats.cohen_kappa(a, b) == pytest.approx(1 / 11)


def test_cohen_kappa_edge_cases():
    assert stats.cohen_kappa_table({}) is None
    assert stats.cohen_kappa(["a", "a"], ["a", "a"]) is None  # p_e = 1: undefined, not 1 or 0
    assert stats.cohen_kappa(["a", "b"], ["a", "b"]) == pytest.approx(1.0)
    assert stats.cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        stats.cohen_kappa(["a"], ["a", "b"])


# --- Fleiss' κ ---------------------------------------------------------------------------------------

FLEISS_EXAMPLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_textbook_example():
    rows = [dict(enumerate(row)) for row in FLEISS_EXAMPLE]
    assert stats.fleiss_kappa(rows) == pytest.approx(0.20993, abs=1e-5)
    # P̄ = 0.378 is the pair-weighted percent agreement of the same units.
    units = [[c for c, n in enumerate(row) for _ in range(n)] for row in FLEISS_EXAMPLE]
    assert stats.percent_agreement(units) == pytest.approx(0.37802, abs=1e-5)
    # The pairwise generalisation equals Fleiss' κ when every unit has the same raters count.
    assert stats.pairwise_kappa(units) == pytest.approx(stats.fleiss_kappa(rows))


def test_fleiss_kappa_hand_computed():
    """3 units × 3 raters: {a:3}, {a:2, b:1}, {b:3}.

    P_i = 1, 1/3, 1 → P̄ = 7/9; p_a = 5/9, p_b = 4/9 → P̄_e = 41/81;
    κ = (63/81 − 41/81)/(40/81) = 22/40 = 0.55.
    """
    assert stats.fleiss_kappa([{"a": 3}, {"a": 2, "b": 1}, {"b": 3}]) == pytest.approx(0.55)


def test_fleiss_kappa_refuses_a_varying_number_of_raters():
    with pytest.raises(ValueError):
        stats.fleiss_kappa([{"a": 2}, {"a": 3}])
    with pytest.raises(ValueError):
        stats.fleiss_kappa([{"a": 1}])
    assert stats.fleiss_kappa([]) is None
    assert stats.fleiss_kappa([{"a": 2}, {"a": 2}]) is None  # one category only: undefined


# --- Krippendorff's α ---------------------------------------------------------------------------------

N = None
KRIPPENDORFF_C = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]


def test_krippendorff_alpha_textbook_nominal_with_missing_data():
    units = stats.units_from_reliability_data(KRIPPENDORFF_C)
    assert stats.krippendorff_alpha_nominal(units) == pytest.approx(0.743, abs=5e-4)
    # By hand from the paper's coincidence matrix: value totals n_1..n_5 = 9, 13, 10, 5, 3
    # (n = 40) and Σ_{c≠k} o_ck = 8 → α = 1 − 39·8 / (40² − (81 + 169 + 100 + 25 + 9)) = 1 − 312/1216.
    matrix = stats.coincidence_matrix(units)
    totals: Counter = Counter()
    for (c, _k), value in matrix.items():
        totals[c] += value
    assert {c: round(v, 9) for c, v in totals.items()} == {1: 9, 2: 13, 3: 10, 4: 5, 5: 3}
    assert sum(v for (c, k), v in matrix.items() if c != k) == pytest.approx(8)
    assert stats.krippendorff_alpha_nominal(units) == pytest.approx(1 - 312 / 1216)


def test_krippendorff_alpha_textbook_binary():
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert stats.krippendorff_alpha_nominal(stats.units_from_reliability_data([a, b])) == pytest.approx(
        0.095, abs=5e-4)


def test_krippendorff_alpha_edge_cases():
    assert stats.krippendorff_alpha_nominal([]) is None
    assert stats.krippendorff_alpha_nominal([["a", None], [None, "b"]]) is None  # nothing pairable
    assert stats.krippendorff_alpha_nominal([["a", "a"], ["a", "a"]]) is None  # no variation
    assert stats.krippendorff_alpha_nominal([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        stats.units_from_reliability_data([[1, 2], [1]])


# --- Agreement from pair counts ---------------------------------------------------------------------


def test_pair_counts_reproduce_the_unit_statistics():
    """Summed pair counts give exactly what the units give, for any mix of unit sizes."""
    rng = random.Random(7)
    units = []
    for _ in range(300):
        size = rng.choice([1, 2, 2, 3, 4])
        units.append([rng.choice("abc") if rng.random() > 0.1 else None for _ in range(size)])
    pairs: Counter = Counter()
    for unit in units:
        pairs.update(stats.unit_pairs(unit))
    result = stats.agreement_from_pairs(pairs)
    assert result.percent == pytest.approx(stats.percent_agreement(units))
    assert result.alpha == pytest.approx(stats.krippendorff_alpha_nominal(units))
    assert result.kappa == pytest.approx(stats.pairwise_kappa(units))
    assert result.units == sum(1 for u in units if len([v for v in u if v is not None]) >= 2)


def test_pair_counts_of_the_krippendorff_example():
    pairs: Counter = Counter()
    for unit in stats.units_from_reliability_data(KRIPPENDORFF_C):
        pairs.update(stats.unit_pairs(unit))
    result = stats.agreement_from_pairs(pairs)
    assert result.alpha == pytest.approx(0.743, abs=5e-4)
    assert result.units == 11  # unit 12 has a single value
    assert stats.agreement_from_pairs({}).percent is None


def test_percent_agreement_hand_computed():
    # Units (a,a), (a,b), (a,a,b): agreeing ordered pairs 2 + 0 + 2 = 4 of 2 + 2 + 6 = 10.
    assert stats.percent_agreement([["a", "a"], ["a", "b"], ["a", "a", "b"]]) == pytest.approx(0.4)
    assert stats.percent_agreement([["a"], [None, "b"]]) is None


# --- Percentiles ----------------------------------------------------------------------------------------


def test_nearest_rank_percentile():
    values = [15, 20, 35, 40, 50]
    assert stats.percentile(values, 30) == 20  # the textbook nearest-rank example
    assert stats.percentile(values, 40) == 20
    assert stats.percentile(values, 50) == 35
    assert stats.percentile(values, 100) == 50
    assert stats.percentile([], 50) is None
    assert stats.nearest_rank(30, 90) == 27  # integer arithmetic: no float rounding up to 28
    with pytest.raises(ValueError):
        stats.nearest_rank(10, 0)


def test_bucket_edges():
    assert stats.bucket_of(0) == 0 and stats.bucket_of(0.99) == 0
    assert stats.bucket_of(1) == 1
    for index in (1, 2, 64, 65, 640, 1500):
        low, high = stats.bucket_bounds(index)
        assert stats.bucket_of(low) == index
        assert stats.bucket_of(high * (1 - 1e-12)) == index
        assert high / low == pytest.approx(stats.HIST_BASE)
    assert stats.bucket_of(2) == 65 and stats.bucket_of(1024) == 641


def test_histogram_percentile_is_exact_for_distinct_buckets_and_single_values():
    hist: dict = {}
    for value in (30_000, 45_000, 50_000, 60_000, 120_000):
        stats.histogram_add(hist, value)
    assert stats.histogram_percentile(hist, 50) == 50_000
    assert stats.histogram_percentile(hist, 90) == 120_000
    assert stats.histogram_percentile({}, 50) is None


def test_histogram_percentile_error_bound():
    """Random latencies: the estimate is within the documented relative bound of the exact value."""
    rng = random.Random(11)
    values = [int(rng.lognormvariate(10, 1.5)) + 1 for _ in range(5000)]
    hist: dict = {}
    for value in values:
        stats.histogram_add(hist, value)
    merged: dict = {}
    stats.histogram_merge(merged, hist)
    for p in (1, 10, 50, 90, 99, 100):
        exact = stats.percentile(values, p)
        estimate = stats.histogram_percentile(merged, p, low=min(values), high=max(values))
        assert abs(estimate - exact) <= exact * stats.HIST_RELATIVE_ERROR, p
    assert stats.HIST_RELATIVE_ERROR < 0.011
    assert math.isclose(stats.histogram_percentile(merged, 100, high=max(values)), max(values))


@pytest.mark.parametrize("steps", [8, 16, 32, 64])
def test_histogram_error_bound_holds_at_every_resolution(steps):
    rng = random.Random(steps)
    values = [rng.uniform(1, 10) * 10 ** rng.randrange(0, 6) for _ in range(2000)]
    hist: dict = {}
    for value in values:
        stats.histogram_add(hist, value, steps)
    bound = stats.relative_error_bound(steps)
    assert bound == pytest.approx(2 ** (1 / steps) - 1)
    for p in (5, 25, 50, 75, 95):
        exact = stats.percentile(values, p)
        assert abs(stats.histogram_percentile(hist, p) - exact) <= exact * bound, (steps, p)
    for index in (1, 9, 17, 100):
        low, high = stats.bucket_bounds(index, steps)
        assert stats.bucket_of(low, steps) == index and high / low == pytest.approx(1 + bound)
