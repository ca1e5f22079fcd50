"""Fairness metrics from per-group count tables (pure Python, no Django).

The database reduces millions of cases to a few count rows (one per group ×
AI label × final label × true label × routed × status); everything here works on
those rows. Rates are computed with exact fractions, so a ratio of exactly 0.8
is exactly at the four-fifths line, and are returned as floats (fractions of 1,
as the API promises). A rate that is undefined (no case to divide by) is
``None``, never 0.

Definitions (regulation catalogue §6; the KPI definitions of the product spec):

* selection rate = share of the group's labelled cases whose label is the
  system's positive label (AI labels: cases with a prediction; final labels:
  cases with a final label);
* TPR = share of ground-truth positives labelled positive; FPR = share of
  ground-truth negatives labelled positive (cases with a reported true label);
  ``None`` for a group without positives (TPR) or negatives (FPR);
* override rate = reviewed cases (routed and decided) with an AI label whose
  final label differs from it / such cases;
* disparate impact ratio = min selection rate / max selection rate over the
  compared groups (four-fifths rule: < 0.8 is adverse impact);
* demographic parity difference = max − min selection rate;
* equalized odds difference = max(TPR spread, FPR spread), each spread being
  max − min over the groups where the rate is defined (fairlearn's
  ``equalized_odds_difference``, "between_groups", "worst_case"); ``None`` when
  neither spread is defined.

Groups smaller than the minimum size, and cases without the attribute, are
reported with their figures but left out of the metrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

# One place for the defaults; a system's ``bias_thresholds`` JSON overrides any key.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "disparate_impact_min": 0.8,
    "demographic_parity_max": 0.1,
    "equalized_odds_max": 0.1,
}
DEFAULT_MIN_GROUP_SIZE = 30
# The four-fifths rule itself (29 CFR 1607.4(D)): the verdict shown beside the threshold check.
FOUR_FIFTHS = Fraction(4, 5)

INSUFFICIENT_N = "insufficient_n"
MISSING_ATTRIBUTE = "missing_attribute"
LABEL_KINDS = ("ai", "final")
DECIDED = "decided"

# One count row: group value, AI label, final label, true label, routed, status, number of cases.
CountRow = Sequence[Any]


def resolve_thresholds(system_thresholds: Mapping[str, Any] | None) -> dict[str, float]:
    """The defaults overridden by the system's keys (validated on the way in: reviews.rules.clean_bias_thresholds;
    rows stored before that validation may hold junk, which is skipped here)."""
    resolved = dict(DEFAULT_THRESHOLDS)
    for key in DEFAULT_THRESHOLDS:
        value = (system_thresholds or {}).get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
            resolved[key] = float(value)
    return resolved


def resolve_min_group_size(system_thresholds: Mapping[str, Any] | None, default: int) -> int:
    """A system may set ``min_group_size`` in its thresholds; otherwise the setting's default."""
    value = (system_thresholds or {}).get("min_group_size")
    # A whole number stored as a float (20.0) is that number: it was silently ignored once.
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 1 and value == int(value):
        return int(value)
    return default


def group_value(raw: Any) -> str | None:
    """The group as text (PostgreSQL's ``->>`` already gives text; SQLite may give numbers)."""
    if raw is None:
        return None
    return raw if isinstance(raw, str) else str(raw)


@dataclass
class GroupTally:
    """Counts of one group, from which every per-group figure is derived."""

    n: int = 0
    ai_labelled: int = 0
    ai_selected: int = 0
    final_labelled: int = 0
    final_selected: int = 0
    override_base: int = 0
    overridden: int = 0
    ground_truth: int = 0
    ai_truth_pos: int = 0
    ai_true_pos: int = 0
    ai_truth_neg: int = 0
    ai_false_pos: int = 0
    final_truth_pos: int = 0
    final_true_pos: int = 0
    final_truth_neg: int = 0
    final_false_pos: int = 0

    def add(self, ai: str | None, final: str | None, truth: str | None, reviewed: bool, n: int,
            positive: str) -> None:
        self.n += n
        if ai is not None:
            self.ai_labelled += n
            self.ai_selected += n if ai == positive else 0
        if final is not None:
            self.final_labelled += n
            self.final_selected += n if final == positive else 0
        if reviewed and ai is not None:
            self.override_base += n
            self.overridden += n if final != ai else 0
        if truth is None:
            return
        self.ground_truth += n
        truth_positive = truth == positive
        if ai is not None:
            if truth_positive:
                self.ai_truth_pos += n
                self.ai_true_pos += n if ai == positive else 0
            else:
                self.ai_truth_neg += n
                self.ai_false_pos += n if ai == positive else 0
        if final is not None:
            if truth_positive:
                self.final_truth_pos += n
                self.final_true_pos += n if final == positive else 0
            else:
                self.final_truth_neg += n
                self.final_false_pos += n if final == positive else 0

    def rates(self) -> dict[str, Fraction | None]:
        return {
            "selection_rate_ai": ratio(self.ai_selected, self.ai_labelled),
            "selection_rate_final": ratio(self.final_selected, self.final_labelled),
            "tpr_ai": ratio(self.ai_true_pos, self.ai_truth_pos),
            "fpr_ai": ratio(self.ai_false_pos, self.ai_truth_neg),
            "tpr_final": ratio(self.final_true_pos, self.final_truth_pos),
            "fpr_final": ratio(self.final_false_pos, self.final_truth_neg),
            "override_rate": ratio(self.overridden, self.override_base),
        }


def ratio(numerator: int, denominator: int) -> Fraction | None:
    return Fraction(numerator, denominator) if denominator else None


def as_float(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


def tally(rows: Iterable[CountRow], *, positive_label: str) -> dict[str | None, GroupTally]:
    """Sum count rows (from any number of chunks) per group."""
    groups: dict[str | None, GroupTally] = {}
    for group, ai, final, truth, routed, status, n in rows:
        key = group_value(group)
        groups.setdefault(key, GroupTally()).add(
            ai, final, truth, bool(routed) and status == DECIDED, int(n), positive_label
        )
    return groups


def merge_counts(chunks: Iterable[Iterable[CountRow]]) -> list[list[Any]]:
    """One count table from many chunks' tables (rows with the same key summed), in a stable order."""
    summed: dict[tuple[Any, ...], int] = {}
    for rows in chunks:
        for group, ai, final, truth, routed, status, n in rows:
            key = (group_value(group), ai, final, truth, bool(routed), status)
            summed[key] = summed.get(key, 0) + int(n)
    ordered = sorted(summed.items(), key=lambda item: tuple(_sort_key(v) for v in item[0]))
    return [[*key, n] for key, n in ordered]


def _sort_key(value: Any) -> tuple[int, str]:
    return (1, "") if value is None else (0, str(value))


def _spread(values: list[Fraction]) -> Fraction | None:
    return max(values) - min(values) if len(values) >= 2 else None


def metric_block(rates_by_group: Mapping[str, Mapping[str, Fraction | None]], kind: str) -> dict[str, Any]:
    """Disparate impact, demographic parity and equalized odds for one kind of label (``ai`` or ``final``).

    Values are exact ``Fraction``s (``None`` where undefined); ``public_block`` turns them into floats.
    """
    selection = {g: r[f"selection_rate_{kind}"] for g, r in rates_by_group.items()}
    defined = {g: v for g, v in selection.items() if v is not None}
    tprs = [v for r in rates_by_group.values() if (v := r[f"tpr_{kind}"]) is not None]
    fprs = [v for r in rates_by_group.values() if (v := r[f"fpr_{kind}"]) is not None]
    tpr_spread, fpr_spread = _spread(tprs), _spread(fprs)
    spreads = [s for s in (tpr_spread, fpr_spread) if s is not None]
    block: dict[str, Any] = {
        "groups_compared": len(defined),
        "selection_rate_min": None,
        "selection_rate_max": None,
        "min_group": None,
        "max_group": None,
        "disparate_impact_ratio": None,
        "demographic_parity_difference": None,
        "tpr_difference": tpr_spread,
        "fpr_difference": fpr_spread,
        "equalized_odds_difference": max(spreads) if spreads else None,
        "four_fifths_rule": None,
    }
    if len(defined) >= 2:
        # Ties broken by group value, so the named groups are stable from run to run.
        low_group = min(sorted(defined), key=lambda g: defined[g])
        high_group = max(sorted(defined), key=lambda g: defined[g])
        low, high = defined[low_group], defined[high_group]
        block.update(selection_rate_min=low, selection_rate_max=high, min_group=low_group, max_group=high_group,
                     demographic_parity_difference=high - low)
        if high > 0:
            impact = low / high
            block["disparate_impact_ratio"] = impact
            block["four_fifths_rule"] = "pass" if impact >= FOUR_FIFTHS else "fail"
    return block


def public_block(block: Mapping[str, Any]) -> dict[str, Any]:
    """A metric block as stored and served: fractions become floats."""
    return {key: float(value) if isinstance(value, Fraction) else value for key, value in block.items()}


def breaches_of(metrics: Mapping[str, Mapping[str, Any]], thresholds: Mapping[str, float]) -> list[dict[str, Any]]:
    """Every threshold an (exact) metric block breaches; thresholds are compared as decimal fractions."""
    found: list[dict[str, Any]] = []
    checks = (
        ("disparate_impact_ratio", "disparate_impact_min", "below"),
        ("demographic_parity_difference", "demographic_parity_max", "above"),
        ("equalized_odds_difference", "equalized_odds_max", "above"),
    )
    for kind in LABEL_KINDS:
        block = metrics.get(kind) or {}
        for metric, threshold_key, direction in checks:
            value = block.get(metric)
            if value is None:
                continue
            exact = Fraction(value)
            limit = Fraction(str(thresholds[threshold_key]))
            if (direction == "below" and exact < limit) or (direction == "above" and exact > limit):
                found.append({"labels": kind, "metric": metric, "value": float(exact),
                              "threshold": thresholds[threshold_key], "direction": direction})
    return found


def compute_results(
    rows: Iterable[CountRow],
    *,
    positive_label: str,
    thresholds: Mapping[str, float],
    min_group_size: int,
) -> dict[str, Any]:
    """The whole audit result from the summed count rows: groups, both metric blocks, breaches."""
    tallies = tally(rows, positive_label=positive_label)
    groups: list[dict[str, Any]] = []
    compared: dict[str, dict[str, Fraction | None]] = {}
    for value in sorted(tallies, key=_sort_key):
        counts = tallies[value]
        rates = counts.rates()
        if value is None:
            excluded: str | None = MISSING_ATTRIBUTE
        elif counts.n < min_group_size:
            excluded = INSUFFICIENT_N
        else:
            excluded = None
            compared[value] = rates
        groups.append({
            "value": value,
            "n": counts.n,
            "selection_rate_ai": as_float(rates["selection_rate_ai"]),
            "selection_rate_final": as_float(rates["selection_rate_final"]),
            # The un-suffixed TPR/FPR are the AI's (Ŷ = the prediction); the final ones sit beside them.
            "tpr": as_float(rates["tpr_ai"]),
            "fpr": as_float(rates["fpr_ai"]),
            "tpr_ai": as_float(rates["tpr_ai"]),
            "fpr_ai": as_float(rates["fpr_ai"]),
            "tpr_final": as_float(rates["tpr_final"]),
            "fpr_final": as_float(rates["fpr_final"]),
            "override_rate": as_float(rates["override_rate"]),
            "reviewed": counts.override_base,
            "ground_truth": counts.ground_truth,
            "insufficient_n": excluded == INSUFFICIENT_N,
            "included": excluded is None,
            "excluded_reason": excluded,
        })
    exact = {kind: metric_block(compared, kind) for kind in LABEL_KINDS}
    return {
        "groups": groups,
        "metrics": {kind: public_block(block) for kind, block in exact.items()},
        "breaches": breaches_of(exact, thresholds),
        "cases": sum(t.n for t in tallies.values()),
    }
