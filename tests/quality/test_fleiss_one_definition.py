"""One Fleiss' κ for units with a varying number of ratings, the same on the quality pages and in the KPIs.

Krippendorff's example C (12 units rated by up to four observers, some only once) used
to give 0.641 on the quality pages (Fleiss' κ over the units with the most common
number of ratings) and 0.713 in the KPIs (the pairwise form over every unit).
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from dashboard.figures import agreement_figures
from quality import stats
from quality.selectors import agreement_summary, summary_from_pairs
from tests.quality.test_stats import KRIPPENDORFF_C


def _units() -> list[list[object]]:
    return [list(unit) for unit in stats.units_from_reliability_data(KRIPPENDORFF_C)]


def test_example_c_gives_one_figure_everywhere() -> None:
    units = [u for u in _units() if len([v for v in u if v is not None]) >= 2]
    one = stats.pairwise_kappa(units)
    assert one is not None
    pairs: Counter = Counter()
    for unit in units:
        pairs.update(stats.unit_pairs(unit))
    kpi = agreement_figures(pairs, {})["kappa"]
    page_live = summary_from_pairs(dict(pairs))["fleiss_kappa"]
    page_units = agreement_summary(
        [{f"r{i}": v for i, v in enumerate(unit)} for unit in units]
    )["fleiss_kappa"]
    assert kpi == pytest.approx(one)
    assert page_live == pytest.approx(one)
    assert page_units == pytest.approx(one)
    # Not the old fixed-size figure: the units rated three or four times count too.
    sizes = Counter(len([v for v in u if v is not None]) for u in units)
    assert len(sizes) > 1


@pytest.mark.parametrize("seed", range(20))
def test_equals_classic_fleiss_when_every_unit_has_the_same_number_of_ratings(seed: int) -> None:
    rng = random.Random(seed)
    raters = rng.randint(2, 5)
    units = [[rng.choice("abc") for _ in range(raters)] for _ in range(rng.randint(3, 30))]
    classic = stats.fleiss_kappa([Counter(unit) for unit in units])
    varying = stats.pairwise_kappa(units)
    if classic is None:
        assert varying is None
    else:
        assert varying == pytest.approx(classic)
