"""Additive KPI figures and the KPI definitions computed from them (no database access here).

``CaseFigures`` and ``ReviewerFigures`` hold only sums (and mergeable extremes)
over a set of cases; ``merge`` adds two of them. The same classes carry a day of
the rollup table and a slice aggregated live from the cases, so a period's KPIs
are the same whichever way its days were obtained. ``case_kpis`` and
``reviewer_row`` are THE definitions (PRODUCT.md "KPIs", api-v1 "KPI scope"):

* automation rate = auto-accepted (not routed) / all cases; review rate = routed / all;
* ``reviewed`` = routed cases with a final decision (status ``decided``, any resolution);
* override rate = reviewed cases with an AI label whose final label differs from it
  (a fail-closed case, without a final label, counts as differing: the AI output
  did not stand) / reviewed cases with an AI label (labeling-stage cases without a
  prediction have nothing to override);
* accuracy of the AI and of the final decisions over the same cases: closed
  (decided or auto-accepted) cases with ground truth and an AI label; a case
  without a final label (fail closed) counts as a final error; lift = final − AI;
  error reduction rate = (AI errors − final errors) / AI errors;
* agreement over case rounds decided by two or more reviewers (their approve /
  override labels; escalations and adjudications are no ratings): percent of
  agreeing pairs, κ (Cohen's when exactly two reviewers rated every pair, the
  pairwise Fleiss κ otherwise), nominal Krippendorff's α;
* time to resolution of reviewed cases, received → decided, p50/p90 (nearest
  rank, from the histogram: within 1.1 %, see ``quality.stats``);
* every rate is a fraction, ``None`` where its denominator is empty.

Reviewer figures follow ``quality.selectors`` (one meaning per word across pages):
gold answers are first-round, non-adjudication decisions on gold cases (an
escalation is answered, not correct); agreement with co-reviewers is measured on
live (non-gold) multi-review rounds; agreement with the AI counts the reviewer's
own verdicts (no adjudications, no escalations) on cases with an AI label. The
KPI table scopes everything by the cases' received time; the median time spent
is the nearest-rank median (the lower middle value for an even count), from a
histogram of 16 buckets per doubling (within 4.4 %).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from quality import stats

# Reviewers' time spent goes into a coarser histogram than time to resolution: a
# median time per reviewer within 4.4 % is plenty, and it keeps the 90-day sum of
# 30 reviewers' daily histograms a few thousand rows.
REVIEWER_TIME_STEPS = 16


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def ratio(numerator: float, denominator: float) -> float | None:
    """A fraction, or ``None`` when the denominator is empty (never a fake zero)."""
    return numerator / denominator if denominator else None


def _counter_from_rows(rows: Iterable[list[Any]]) -> Counter[tuple[Any, ...]]:
    result: Counter[tuple[Any, ...]] = Counter()
    for row in rows:
        result[tuple(row[:-1])] += row[-1]
    return result


def _counter_to_rows(counter: Counter[tuple[Any, ...]]) -> list[list[Any]]:
    return [[*key, n] for key, n in sorted(counter.items(), key=lambda kv: repr(kv[0])) if n]


@dataclass
class CaseFigures:
    """Additive case figures (one day × system × point, or any sum of those)."""

    cases_total: int = 0
    auto_accepted: int = 0
    routed: int = 0
    reviewed: int = 0
    open: int = 0
    override_base: int = 0
    overridden: int = 0
    sla_breaches: int = 0
    resolutions: Counter[str] = field(default_factory=Counter)
    reviewed_labels: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    truth_labels: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    ttr_hist: dict[int, list[float]] = field(default_factory=dict)
    ttr_min_ms: int | None = None
    ttr_max_ms: int | None = None
    decided_after: Counter[int] = field(default_factory=Counter)
    agreement_pairs: Counter[tuple[Any, ...]] = field(default_factory=Counter)

    COUNTS = ("cases_total", "auto_accepted", "routed", "reviewed", "open", "override_base", "overridden",
              "sla_breaches")

    def merge(self, other: CaseFigures) -> CaseFigures:
        """Add ``other`` into this one (in place) and return it."""
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.resolutions.update(other.resolutions)
        self.reviewed_labels.update(other.reviewed_labels)
        self.truth_labels.update(other.truth_labels)
        stats.histogram_merge(self.ttr_hist, other.ttr_hist)
        self.ttr_min_ms = _min(self.ttr_min_ms, other.ttr_min_ms)
        self.ttr_max_ms = _max(self.ttr_max_ms, other.ttr_max_ms)
        self.decided_after.update(other.decided_after)
        self.agreement_pairs.update(other.agreement_pairs)
        return self

    def add_resolution_time(self, ms: int) -> None:
        stats.histogram_add(self.ttr_hist, ms)
        self.ttr_min_ms = _min(self.ttr_min_ms, ms)
        self.ttr_max_ms = _max(self.ttr_max_ms, ms)

    # --- the rollup rows ----------------------------------------------------------------------------
    def to_row(self) -> dict[str, Any]:
        """Field values of a ``DailyRollup`` row (the histogram goes to ``RollupTtrBucket`` rows)."""
        row: dict[str, Any] = {name: getattr(self, name) for name in self.COUNTS}
        row.update(
            resolutions=dict(sorted(self.resolutions.items())),
            reviewed_labels=_counter_to_rows(self.reviewed_labels),
            truth_labels=_counter_to_rows(self.truth_labels),
            ttr_min_ms=self.ttr_min_ms,
            ttr_max_ms=self.ttr_max_ms,
            decided_after={str(k): v for k, v in sorted(self.decided_after.items())},
            agreement_pairs=_counter_to_rows(self.agreement_pairs),
        )
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CaseFigures:
        """Figures from a ``DailyRollup`` row's values (without the histogram: see ``ttr_hist``)."""
        return cls(
            **{name: row[name] for name in cls.COUNTS},
            resolutions=Counter(row["resolutions"]),
            reviewed_labels=_counter_from_rows(row["reviewed_labels"]),
            truth_labels=_counter_from_rows(row["truth_labels"]),
            ttr_min_ms=row["ttr_min_ms"],
            ttr_max_ms=row["ttr_max_ms"],
            decided_after=Counter({int(k): v for k, v in row["decided_after"].items()}),
            agreement_pairs=_counter_from_rows(row["agreement_pairs"]),
        )


@dataclass
class ReviewerFigures:
    """Additive figures of one reviewer (one day × system, or any sum of those)."""

    decisions: int = 0
    approvals: int = 0
    overrides: int = 0
    escalations: int = 0
    adjudications: int = 0
    time_hist: dict[int, list[float]] = field(default_factory=dict)
    time_min_ms: int | None = None
    time_max_ms: int | None = None
    gold_answered: int = 0
    gold_correct: int = 0
    ai_shown: int = 0
    ai_shown_agree: int = 0
    ai_hidden: int = 0
    ai_hidden_agree: int = 0
    pairs: Counter[tuple[Any, ...]] = field(default_factory=Counter)

    COUNTS = ("decisions", "approvals", "overrides", "escalations", "adjudications", "gold_answered",
              "gold_correct", "ai_shown", "ai_shown_agree", "ai_hidden", "ai_hidden_agree")

    def merge(self, other: ReviewerFigures) -> ReviewerFigures:
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        stats.histogram_merge(self.time_hist, other.time_hist)
        self.time_min_ms = _min(self.time_min_ms, other.time_min_ms)
        self.time_max_ms = _max(self.time_max_ms, other.time_max_ms)
        self.pairs.update(other.pairs)
        return self

    def add_time(self, ms: int) -> None:
        stats.histogram_add(self.time_hist, ms, REVIEWER_TIME_STEPS)
        self.time_min_ms = _min(self.time_min_ms, ms)
        self.time_max_ms = _max(self.time_max_ms, ms)

    def to_row(self) -> dict[str, Any]:
        """Field values of a ``ReviewerDailyRollup`` row (histogram and pairs go to their own rows)."""
        row: dict[str, Any] = {name: getattr(self, name) for name in self.COUNTS}
        row.update(time_min_ms=self.time_min_ms, time_max_ms=self.time_max_ms)
        return row


# --- The KPI definitions ------------------------------------------------------------------------------


def seconds_of(ms: float | None) -> float | None:
    """Milliseconds as seconds (three decimals), ``None`` kept."""
    return None if ms is None else round(ms / 1000.0, 3)


def agreement_figures(
    pairs: Mapping[tuple[Any, Any, int], int], reviewer_pairs: Mapping[Any, Mapping[tuple[Any, Any, int], int]]
) -> dict[str, Any]:
    """Agreement of multiply-reviewed case rounds.

    ``pairs``: ``{(label_a, label_b, unit_size): n}`` over the case rounds;
    ``reviewer_pairs``: ``{reviewer: {(own label, co-reviewer's label, unit_size): n}}``
    over the same rounds. κ is Cohen's when exactly two reviewers rated every unit
    together (two ratings per unit): then the raters are fixed, as Cohen's κ
    requires, and the lower id's own/other table is the contingency table.
    Otherwise (rotating reviewers, or more per case) it is the pairwise form of
    Fleiss' κ, which equals Fleiss' κ for a fixed number of raters.
    """
    result = stats.agreement_from_pairs(pairs)
    kappa = result.kappa
    statistic = "fleiss" if result.pairs else None
    raters = sorted(r for r, table in reviewer_pairs.items() if any(table.values()))
    sizes = {size for table in reviewer_pairs.values() for (_own, _other, size), n in table.items() if n}
    if result.pairs and len(raters) == 2 and sizes == {2}:
        table: Counter[tuple[Any, Any]] = Counter()
        for (own, other, _size), n in reviewer_pairs[raters[0]].items():
            table[(own, other)] += n
        kappa = stats.cohen_kappa_table(table)
        statistic = "cohen"
    return {
        "percent": result.percent,
        "kappa": kappa,
        "alpha": result.alpha,
        "statistic": statistic,
        "units": result.units,
        "pairs": result.pairs,
    }


def ttr_percentiles_ms(figures: CaseFigures) -> tuple[float | None, float | None]:
    """p50 and p90 time to resolution (ms) of the figures' histogram, clamped to their extremes."""
    low, high = figures.ttr_min_ms, figures.ttr_max_ms
    return (stats.histogram_percentile(figures.ttr_hist, 50, low=low, high=high),
            stats.histogram_percentile(figures.ttr_hist, 90, low=low, high=high))


def case_kpis(
    figures: CaseFigures, reviewer_pairs: Mapping[Any, Mapping[tuple[Any, Any, int], int]] | None = None
) -> dict[str, Any]:
    """The period KPIs of api-v1 ``GET /api/v1/kpis/`` (minus the live figures), plus a few extras.

    ``reviewer_pairs`` (see ``agreement_figures``) only decides between Cohen's and
    Fleiss' κ; without it κ is Fleiss'.
    """
    evaluated = sum(figures.truth_labels.values())
    ai_correct = sum(n for (ai, _final, true), n in figures.truth_labels.items() if ai == true)
    final_correct = sum(n for (_ai, final, true), n in figures.truth_labels.items() if final == true)
    accuracy_ai = ratio(ai_correct, evaluated)
    accuracy_final = ratio(final_correct, evaluated)
    ai_errors = evaluated - ai_correct
    final_errors = evaluated - final_correct
    p50, p90 = ttr_percentiles_ms(figures)
    return {
        "cases_total": figures.cases_total,
        "auto_accepted": figures.auto_accepted,
        "routed": figures.routed,
        "reviewed": figures.reviewed,
        "automation_rate": ratio(figures.auto_accepted, figures.cases_total),
        "review_rate": ratio(figures.routed, figures.cases_total),
        "override_rate": ratio(figures.overridden, figures.override_base),
        "overridden": figures.overridden,
        "evaluated": evaluated,
        "accuracy_ai": accuracy_ai,
        "accuracy_final": accuracy_final,
        "accuracy_lift": None if evaluated == 0 else accuracy_final - accuracy_ai,  # type: ignore[operator]
        "error_reduction_rate": ratio(ai_errors - final_errors, ai_errors) if evaluated else None,
        "agreement": agreement_figures(figures.agreement_pairs, reviewer_pairs or {}),
        "time_to_resolution_s": {"p50": seconds_of(p50), "p90": seconds_of(p90)},
        "sla_breaches": figures.sla_breaches,
        "sla_breach_rate": ratio(figures.sla_breaches, figures.routed),
        "open": figures.open,
    }


def reviewer_row(figures: ReviewerFigures) -> dict[str, Any]:
    """One reviewer's quality figures (fractions; ``None`` where undefined)."""
    own_pairs: Counter[tuple[Any, Any]] = Counter()
    label_pairs: Counter[tuple[Any, Any, int]] = Counter()
    for (own, other, size), n in figures.pairs.items():
        own_pairs[(own, other)] += n
        label_pairs[(own, other, size)] += n
    pairs = sum(own_pairs.values())
    agreeing = sum(n for (own, other), n in own_pairs.items() if own == other)
    shown = ratio(figures.ai_shown_agree, figures.ai_shown)
    hidden = ratio(figures.ai_hidden_agree, figures.ai_hidden)
    median = stats.histogram_percentile(figures.time_hist, 50, low=figures.time_min_ms, high=figures.time_max_ms)
    return {
        "decisions": figures.decisions,
        "approvals": figures.approvals,
        "overrides": figures.overrides,
        "escalations": figures.escalations,
        "adjudications": figures.adjudications,
        "override_rate": ratio(figures.overrides, figures.approvals + figures.overrides),
        "median_time_s": seconds_of(median),
        "gold_answered": figures.gold_answered,
        "gold_accuracy": ratio(figures.gold_correct, figures.gold_answered),
        "agreement_pairs": pairs,
        "agreement": ratio(agreeing, pairs),
        # The reviewer as rater 1 against their co-reviewers pooled as rater 2.
        "agreement_kappa": stats.cohen_kappa_table(own_pairs) if pairs else None,
        "ai_agreement_shown": shown,
        "ai_agreement_hidden": hidden,
        "automation_bias_gap": None if shown is None or hidden is None else shown - hidden,
    }
