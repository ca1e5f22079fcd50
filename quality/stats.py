"""Pure statistics for oversight quality: agreement between raters and percentiles.

No Django, no database, no third-party imports: everything here works on plain
Python values, so the KPI module, the reviewer-quality pages and the compliance
dossier compute the same figures from the same definitions (regulation catalog
§6). Every function returns ``None`` where a statistic is undefined (no data, or
a zero denominator such as chance agreement of 1), never a made-up number.

Agreement statistics
--------------------
* **Percent agreement** over units (cases) rated by two or more raters: the
  share of agreeing rater *pairs*, ``Σ_u Σ_c n_uc(n_uc − 1) / Σ_u m_u(m_u − 1)``.
  With a fixed number of raters per unit this is Fleiss' P̄.
* **Cohen's κ** (two fixed raters): ``(p_o − p_e) / (1 − p_e)``,
  ``p_e = Σ_k p1_k · p2_k``.
* **Fleiss' κ** (a fixed number n of raters per unit, raters may differ between
  units): ``P̄ = mean_i Σ_j n_ij(n_ij − 1) / (n(n − 1))``, ``P̄_e = Σ_j p_j²``,
  ``κ = (P̄ − P̄_e) / (1 − P̄_e)``. :func:`pairwise_kappa` is the same formula
  with pair-weighted P̄, which allows a varying number of raters per unit and
  equals Fleiss' κ whenever that number is fixed.
* **Krippendorff's α** (nominal, any number of raters, missing data):
  ``α = 1 − D_o / D_e`` from the coincidence matrix
  ``o_ck = Σ_u (number of ordered c–k pairs in u) / (m_u − 1)`` over units with
  at least two values; ``α = 1 − (n − 1) Σ_{c≠k} o_ck / Σ_{c≠k} n_c n_k``.

Pair counts
-----------
The KPI rollup stores agreement as additive *pair counts* keyed by
``(label_a, label_b, unit_size)`` (one count per unordered pair of ratings of a
unit with ``unit_size`` ratings). :func:`agreement_from_pairs` turns any sum of
those into percent agreement, κ and α exactly as if computed from the units.

Percentiles from a histogram
----------------------------
Latencies are kept as a sparse histogram of fixed log-spaced buckets:
bucket 0 holds values below 1 (ms), bucket ``k ≥ 1`` holds
``[B^(k−1), B^k)`` with ``B = 2^(1/steps)``, 64 steps per doubling by default
(coarser histograms pass a smaller ``steps`` to every bucket function). Each
bucket stores its count and the sum of its values. :func:`histogram_percentile` returns, for the nearest-rank
percentile, the mean of the values in the bucket holding that rank, clamped to
the known minimum and maximum. **Error bound:** the estimate and the exact
nearest-rank value lie in the same bucket, so the relative error is below
``B − 1`` (≈ 1.09 % for 64 steps, 4.4 % for 16; below 1 absolute in bucket 0); it is exact when the
values in that bucket are all equal (e.g. a single value).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

Label = Hashable

# --- Agreement ---------------------------------------------------------------------------------------


def _rated(unit: Iterable[Label | None]) -> list[Label]:
    """The values of one unit, missing ones (``None``) left out."""
    return [value for value in unit if value is not None]


def percent_agreement(units: Iterable[Iterable[Label | None]]) -> float | None:
    """Share of agreeing rater pairs over units with two or more ratings (``None``: no such unit)."""
    agreeing = 0
    pairs = 0
    for unit in units:
        values = _rated(unit)
        m = len(values)
        if m < 2:
            continue
        pairs += m * (m - 1)
        agreeing += sum(n * (n - 1) for n in Counter(values).values())
    return agreeing / pairs if pairs else None


def cohen_kappa_table(table: Mapping[tuple[Label, Label], int]) -> float | None:
    """Cohen's κ from a contingency table ``{(rating of rater 1, rating of rater 2): count}``."""
    total = sum(table.values())
    if total <= 0:
        return None
    first: Counter[Label] = Counter()
    second: Counter[Label] = Counter()
    observed = 0
    for (a, b), count in table.items():
        first[a] += count
        second[b] += count
        if a == b:
            observed += count
    p_o = observed / total
    p_e = sum(first[k] * second[k] for k in first) / (total * total)
    if p_e >= 1:
        return None  # both raters used one and the same category throughout: κ is 0/0
    return (p_o - p_e) / (1 - p_e)


def cohen_kappa(rater1: Sequence[Label | None], rater2: Sequence[Label | None]) -> float | None:
    """Cohen's κ of two raters over the same items (items missing either rating are left out)."""
    if len(rater1) != len(rater2):
        raise ValueError("both raters must rate the same items")
    table: Counter[tuple[Label, Label]] = Counter(
        (a, b) for a, b in zip(rater1, rater2, strict=True) if a is not None and b is not None
    )
    return cohen_kappa_table(table)


def fleiss_kappa(counts: Sequence[Mapping[Label, int]]) -> float | None:
    """Fleiss' κ from per-unit category counts ``[{category: raters who chose it}, ...]``.

    Every unit must have the same number n ≥ 2 of ratings (a ``ValueError``
    otherwise: use :func:`pairwise_kappa` or :func:`krippendorff_alpha_nominal`
    for a varying number of raters or missing data).
    """
    rows = [{k: v for k, v in row.items() if v} for row in counts]
    if not rows:
        return None
    sizes = {sum(row.values()) for row in rows}
    if len(sizes) != 1:
        raise ValueError("Fleiss' kappa needs the same number of ratings for every unit")
    n = sizes.pop()
    if n < 2:
        raise ValueError("Fleiss' kappa needs at least two ratings per unit")
    units = len(rows)
    p_bar = sum(sum(c * (c - 1) for c in row.values()) / (n * (n - 1)) for row in rows) / units
    totals: Counter[Label] = Counter()
    for row in rows:
        totals.update(row)
    p_e = sum((count / (units * n)) ** 2 for count in totals.values())
    if p_e >= 1:
        return None
    return (p_bar - p_e) / (1 - p_e)


def coincidence_matrix(units: Iterable[Iterable[Label | None]]) -> dict[tuple[Label, Label], float]:
    """Krippendorff's coincidence matrix ``o_ck`` (units with fewer than two values are not pairable)."""
    matrix: dict[tuple[Label, Label], float] = {}
    for unit in units:
        values = _rated(unit)
        m = len(values)
        if m < 2:
            continue
        weight = 1.0 / (m - 1)
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    matrix[(c, k)] = matrix.get((c, k), 0.0) + weight
    return matrix


def alpha_from_coincidences(matrix: Mapping[tuple[Label, Label], float]) -> float | None:
    """Nominal Krippendorff's α from a coincidence matrix (``None`` when D_e = 0 or n < 2)."""
    totals: dict[Label, float] = {}
    for (c, _k), value in matrix.items():
        totals[c] = totals.get(c, 0.0) + value
    n = sum(totals.values())
    if n <= 1:
        return None
    disagree_observed = sum(value for (c, k), value in matrix.items() if c != k)
    disagree_expected = n * n - sum(t * t for t in totals.values())  # Σ_{c≠k} n_c·n_k
    if disagree_expected <= 0:
        return None  # a single category was ever used: no variation, α undefined
    return 1.0 - (n - 1) * disagree_observed / disagree_expected


def krippendorff_alpha_nominal(units: Iterable[Iterable[Label | None]]) -> float | None:
    """Nominal Krippendorff's α over units (each an iterable of values, ``None`` = missing)."""
    return alpha_from_coincidences(coincidence_matrix(units))


def units_from_reliability_data(matrix: Sequence[Sequence[Label | None]]) -> list[list[Label | None]]:
    """Turn Krippendorff's reliability data (one row per rater, one column per unit) into units."""
    if not matrix:
        return []
    width = len(matrix[0])
    if any(len(row) != width for row in matrix):
        raise ValueError("every rater row must have one entry per unit")
    return [[row[u] for row in matrix] for u in range(width)]


# --- Agreement from additive pair counts -----------------------------------------------------------


PairKey = tuple[Label, Label, int]


def unit_pairs(unit: Iterable[Label | None]) -> Counter[PairKey]:
    """The additive pair counts of one unit: ``{(label_a, label_b, unit_size): count}``.

    Labels within a pair are put in a canonical order (by ``repr``) so that
    ``(a, b)`` and ``(b, a)`` add up in one key; units with fewer than two
    values contribute nothing.
    """
    values = _rated(unit)
    m = len(values)
    result: Counter[PairKey] = Counter()
    if m < 2:
        return result
    for a, b in combinations(values, 2):
        if repr(b) < repr(a):
            a, b = b, a
        result[(a, b, m)] += 1
    return result


@dataclass(frozen=True)
class Agreement:
    """Agreement figures of a set of multiply-rated units."""

    units: int
    pairs: int
    percent: float | None
    kappa: float | None
    alpha: float | None


def agreement_from_pairs(pairs: Mapping[PairKey, int | float]) -> Agreement:
    """Percent agreement, pairwise (Fleiss) κ and nominal α from summed pair counts.

    ``pairs`` maps ``(label_a, label_b, unit_size)`` to the number of unordered
    rating pairs (sums of :func:`unit_pairs`). A unit of size m contributes
    m(m − 1)/2 pairs, so the number of units is recovered exactly.
    """
    total_pairs = 0.0
    agreeing = 0.0
    units = 0.0
    matrix: dict[tuple[Label, Label], float] = {}
    for (a, b, size), count in pairs.items():
        if count <= 0 or size < 2:
            continue
        total_pairs += count
        units += count / (size * (size - 1) / 2)
        if a == b:
            agreeing += count
        weight = count / (size - 1)  # each unordered pair is two ordered pairs, each weighted 1/(m − 1)
        matrix[(a, b)] = matrix.get((a, b), 0.0) + weight
        matrix[(b, a)] = matrix.get((b, a), 0.0) + weight
    if total_pairs == 0:
        return Agreement(units=0, pairs=0, percent=None, kappa=None, alpha=None)
    percent = agreeing / total_pairs
    return Agreement(
        units=round(units),
        pairs=round(total_pairs),
        percent=percent,
        kappa=_kappa_from(percent, matrix),
        alpha=alpha_from_coincidences(matrix),
    )


def _kappa_from(percent: float, matrix: Mapping[tuple[Label, Label], float]) -> float | None:
    """Pairwise κ: observed pair agreement against chance from the pooled rating shares."""
    totals: dict[Label, float] = {}
    for (c, _k), value in matrix.items():
        totals[c] = totals.get(c, 0.0) + value
    n = sum(totals.values())
    p_e = sum((t / n) ** 2 for t in totals.values())
    if p_e >= 1 - 1e-12:
        return None
    return (percent - p_e) / (1 - p_e)


def pairwise_kappa(units: Iterable[Iterable[Label | None]]) -> float | None:
    """Fleiss' κ generalised to a varying number of raters per unit (pair-weighted P̄): the portal's one definition.

    With the same number of ratings in every unit it equals :func:`fleiss_kappa`
    exactly; with a varying number it uses every unit rated at least twice instead of
    dropping the odd ones out. The quality pages and the KPIs both report this
    (``agreement_from_pairs(...).kappa`` on the same pair counts).
    """
    total: Counter[PairKey] = Counter()
    for unit in units:
        total.update(unit_pairs(unit))
    return agreement_from_pairs(total).kappa


# --- Percentiles -----------------------------------------------------------------------------------

HIST_STEPS_PER_DOUBLING = 64
HIST_BASE = 2.0 ** (1.0 / HIST_STEPS_PER_DOUBLING)
# The documented error bound of histogram_percentile (relative, for values ≥ 1).
HIST_RELATIVE_ERROR = HIST_BASE - 1.0


def nearest_rank(count: int, percent: int) -> int:
    """1-based rank of the nearest-rank ``percent``-th percentile among ``count`` sorted values."""
    if not 0 < percent <= 100:
        raise ValueError("percent must be in (0, 100]")
    return max(1, -(-percent * count // 100))


def percentile(values: Iterable[float], percent: int) -> float | None:
    """Exact nearest-rank percentile: the smallest value with at least ``percent`` % of values at or below it."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[nearest_rank(len(ordered), percent) - 1]


def bucket_of(value: float, steps: int = HIST_STEPS_PER_DOUBLING) -> int:
    """The histogram bucket of a non-negative value (0 for values below 1); ``steps`` buckets per doubling."""
    if value < 1:
        return 0
    index = math.floor(math.log2(value) * steps) + 1
    # log2 of an exact bucket edge may round to just below it: keep the edge in its own bucket.
    if value >= bucket_bounds(index + 1, steps)[0]:
        index += 1
    elif value < bucket_bounds(index, steps)[0]:
        index -= 1
    return index


def bucket_bounds(index: int, steps: int = HIST_STEPS_PER_DOUBLING) -> tuple[float, float]:
    """``[low, high)`` of a bucket."""
    if index <= 0:
        return 0.0, 1.0
    # 2 ** (k / steps) rather than B ** k: exact at every power of two, no accumulated rounding.
    return 2.0 ** ((index - 1) / steps), 2.0 ** (index / steps)


def relative_error_bound(steps: int = HIST_STEPS_PER_DOUBLING) -> float:
    """The documented bound of :func:`histogram_percentile` for buckets of ``steps`` per doubling."""
    return 2.0 ** (1.0 / steps) - 1.0


def histogram_add(histogram: dict[int, list[float]], value: float, steps: int = HIST_STEPS_PER_DOUBLING) -> None:
    """Add one value to a sparse histogram ``{bucket: [count, sum]}`` (in place)."""
    slot = histogram.setdefault(bucket_of(value, steps), [0, 0])
    slot[0] += 1
    slot[1] += value


def histogram_merge(into: dict[int, list[float]], other: Mapping[int, Sequence[float]]) -> None:
    """Add the counts and sums of ``other`` into ``into`` (in place)."""
    for index, (count, total) in other.items():
        slot = into.setdefault(int(index), [0, 0])
        slot[0] += count
        slot[1] += total


def histogram_percentile(
    histogram: Mapping[int, Sequence[float]],
    percent: int,
    *,
    low: float | None = None,
    high: float | None = None,
) -> float | None:
    """Estimate the nearest-rank percentile from a histogram (see the module docstring for the bound).

    ``low``/``high`` are the exact minimum and maximum of the values, when known:
    the estimate is clamped to them.
    """
    buckets = sorted((int(k), v) for k, v in histogram.items() if v[0] > 0)
    count = int(sum(v[0] for _k, v in buckets))
    if count == 0:
        return None
    rank = nearest_rank(count, percent)
    seen = 0
    estimate = 0.0
    for _index, (bucket_count, bucket_sum) in buckets:
        seen += int(bucket_count)
        if seen >= rank:
            estimate = bucket_sum / bucket_count
            break
    if low is not None:
        estimate = max(estimate, low)
    if high is not None:
        estimate = min(estimate, high)
    return estimate
