"""The agreement statistics against reference implementations, on random data (hypothesis).

Oracles (test-only dependencies): scikit-learn's ``cohen_kappa_score``, statsmodels'
``fleiss_kappa`` and the ``krippendorff`` package (GPL: never a runtime dependency).
Both the pure functions of ``quality.stats`` and the quality app's
``agreement_summary`` (which builds units from ratings and picks the statistics)
are checked. No database.
"""

from __future__ import annotations

import math
from collections import Counter

import krippendorff
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from quality import stats
from quality.selectors import agreement_summary

# scikit-learn warns (and answers NaN) where κ is undefined; that case is asserted, not noise.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

LABELS = ["approve", "reject", "refer", "escalate"]
label = st.sampled_from(LABELS)
maybe_label = st.one_of(st.none(), label)
EXAMPLES = settings(max_examples=200, deadline=None)


def close(ours: float | None, reference: float) -> bool:
    """``None`` where the reference is undefined (NaN), else equal within float noise."""
    if reference is None or (isinstance(reference, float) and math.isnan(reference)):
        return ours is None
    return ours is not None and math.isclose(ours, reference, rel_tol=1e-9, abs_tol=1e-9)


# --- Cohen's κ ---------------------------------------------------------------------------------------


@EXAMPLES
@given(st.lists(st.tuples(label, label), min_size=1, max_size=60))
def test_cohen_kappa_matches_scikit_learn(pairs) -> None:
    first = [a for a, _ in pairs]
    second = [b for _, b in pairs]
    with np.errstate(divide="ignore", invalid="ignore"):
        reference = cohen_kappa_score(first, second)
    assert close(stats.cohen_kappa(first, second), reference)
    # The summary's per-pair κ is the same statistic.
    summary = agreement_summary([{"x": a, "y": b} for a, b in pairs])
    assert close(summary["cohen_pairs"][0]["kappa"], reference)
    assert close(summary["kappa"], reference)
    assert summary["percent"] == pytest.approx(sum(a == b for a, b in pairs) / len(pairs))


@EXAMPLES
@given(st.lists(st.tuples(maybe_label, maybe_label), min_size=1, max_size=60))
def test_cohen_kappa_leaves_out_items_missing_a_rating(pairs) -> None:
    complete = [(a, b) for a, b in pairs if a is not None and b is not None]
    assume(complete)
    with np.errstate(divide="ignore", invalid="ignore"):
        reference = cohen_kappa_score([a for a, _ in complete], [b for _, b in complete])
    assert close(stats.cohen_kappa([a for a, _ in pairs], [b for _, b in pairs]), reference)


# --- Fleiss' κ -------------------------------------------------------------------------------------------


@st.composite
def fixed_raters(draw) -> list[list[str]]:
    raters = draw(st.integers(2, 6))
    return draw(st.lists(st.lists(label, min_size=raters, max_size=raters), min_size=1, max_size=40))


@EXAMPLES
@given(fixed_raters())
def test_fleiss_kappa_matches_statsmodels(units) -> None:
    table = np.array([[unit.count(category) for category in LABELS] for unit in units])
    with np.errstate(divide="ignore", invalid="ignore"):
        reference = float(sm_fleiss_kappa(table, method="fleiss"))
    assert close(stats.fleiss_kappa([Counter(unit) for unit in units]), reference)
    summary = agreement_summary([{f"r{i}": value for i, value in enumerate(unit)} for unit in units])
    assert close(summary["fleiss_kappa"], reference) and summary["fleiss_units"] == len(units)
    # With a fixed number of raters, the pairwise κ is Fleiss' κ.
    assert close(stats.pairwise_kappa(units), reference)


@EXAMPLES
@given(fixed_raters(), st.lists(st.lists(label, min_size=1, max_size=8), max_size=5))
def test_summary_fleiss_counts_every_unit_whatever_its_number_of_raters(units, odd) -> None:
    # One definition (quality.stats.pairwise_kappa): units with one rating are not pairable and drop out.
    everything = units + odd
    rated = [{f"r{i}": value for i, value in enumerate(unit)} for unit in everything]
    summary = agreement_summary(rated)
    pairable = [unit for unit in everything if len(unit) >= 2]
    assert close(summary["fleiss_kappa"], stats.pairwise_kappa(pairable))
    assert summary["fleiss_units"] == len(pairable)


# --- Krippendorff's α ---------------------------------------------------------------------------------------


@st.composite
def reliability_data(draw) -> list[list[str | None]]:
    raters = draw(st.integers(2, 6))
    units = draw(st.integers(1, 30))
    return [draw(st.lists(maybe_label, min_size=units, max_size=units)) for _ in range(raters)]


def reference_alpha(matrix: list[list[str | None]]) -> float | None:
    codes = {value: index for index, value in enumerate(LABELS)}
    data = np.array([[np.nan if v is None else codes[v] for v in row] for row in matrix], dtype=float)
    pairable = [[v for v in column if v is not None] for column in zip(*matrix, strict=True)]
    pairable = [column for column in pairable if len(column) >= 2]
    if len({v for column in pairable for v in column}) < 2:
        return None  # the reference refuses a single-valued domain; α is undefined
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


@EXAMPLES
@given(reliability_data())
def test_krippendorff_alpha_matches_the_reference_with_missing_values(matrix) -> None:
    reference = reference_alpha(matrix)
    units = stats.units_from_reliability_data(matrix)
    ours = stats.krippendorff_alpha_nominal(units)
    if reference is None:
        assert ours is None
    else:
        assert close(ours, reference)
    summary = agreement_summary([{f"r{i}": value for i, value in enumerate(unit)} for unit in units])
    assert (summary["alpha"] is None) if reference is None else close(summary["alpha"], reference)


@EXAMPLES
@given(reliability_data())
def test_percent_agreement_is_the_share_of_agreeing_pairs(matrix) -> None:
    units = [[v for v in unit if v is not None] for unit in stats.units_from_reliability_data(matrix)]
    pairs = agreeing = 0
    for unit in units:
        for i in range(len(unit)):
            for j in range(i + 1, len(unit)):
                pairs += 1
                agreeing += unit[i] == unit[j]
    expected = agreeing / pairs if pairs else None
    ours = stats.percent_agreement(units)
    assert (ours is None) if expected is None else ours == pytest.approx(expected)
    summary = agreement_summary([{f"r{i}": value for i, value in enumerate(unit)} for unit in units])
    assert (summary["percent"] is None) if expected is None else summary["percent"] == pytest.approx(expected)


def test_known_values() -> None:
    # Krippendorff (2011), nominal example with missing data: α = 0.743.
    matrix = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    alpha = stats.krippendorff_alpha_nominal(stats.units_from_reliability_data(matrix))
    assert alpha == pytest.approx(0.743, abs=5e-4)
