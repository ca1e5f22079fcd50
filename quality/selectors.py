"""Reads of the quality app: gold scores, agreement, automation bias, competence, thresholds.

The statistics themselves come from the pure module ``quality.stats`` (one
definition shared with the KPIs and the dossier); here the database rows become
the units those functions take. Every figure is a fraction (``None`` where it is
undefined); pages turn them into % and percentage points.

Definitions used throughout:

- **Gold answer**: a reviewer's first-round, non-adjudication decision on a gold
  copy made for them. Correct when its label equals the gold label; an escalation
  (no verdict on a case with a known answer) counts as answered, not correct.
- **Live agreement**: cases with ``reviewers_required ≥ 2`` (never gold), one unit
  per case and review round, one rating per reviewer (adjudications left out; an
  escalation is a missing rating). Scoped by the case's ``received_at``.
- **Automation bias** (Art. 14(4)(b)): per reviewer and system, the share of
  decisions agreeing with the AI label when it was shown minus when it was hidden
  (blind review). A large positive gap suggests the suggestion sways the reviewer.
- **Rubber-stamp flags**: over at least ``HITL_RUBBER_STAMP_MIN_DECISIONS`` decisions
  with the AI shown, an approval rate ≥ ``HITL_RUBBER_STAMP_APPROVAL_RATE`` or a
  median time spent under ``HITL_RUBBER_STAMP_TIME_FLOOR_S``.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import combinations
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Case as DbCase
from django.db.models import Count, Exists, F, FloatField, OuterRef, Q, QuerySet, Value, When, Window
from django.db.models.functions import Cast, Floor, RowNumber
from django.db.models.lookups import GreaterThanOrEqual, LessThan
from django.utils import timezone

from hitl_portal.days import day_start
from hitl_portal.sql import column_of
from quality import stats
from quality.models import (
    AgreementPairDay,
    AgreementRollupState,
    CalibrationSession,
    GoldItem,
    GoldServing,
    ReviewerQualitySnapshot,
)
from quality.services import config
from reviews.models import (
    AISystem,
    Case,
    CaseStatus,
    Decision,
    DecisionOutcome,
    InterventionPoint,
    ReviewerProfile,
    ReviewerStatus,
    TrainingRecord,
)
from reviews.selectors.people import missing_trainings

# Cohen's κ is listed for at most this many rater pairs (the most co-rated first).
MAX_COHEN_PAIRS = 50
# Items shown as "most disagreement" in a calibration session.
MAX_DISAGREEMENT_ITEMS = 10
# Thresholds 0.00..1.00 in steps of 0.01: a confidence sits in bucket k when k/100 ≤ c < (k+1)/100.
GRID_STEPS = 100


# --- Bands (pages) ---------------------------------------------------------------------------------


def kappa_band(value: float | None) -> str:
    """Landis & Koch's reading of a κ."""
    if value is None:
        return "undefined"
    if value < 0:
        return "poor"
    for limit, name in ((0.20, "slight"), (0.40, "fair"), (0.60, "moderate"), (0.80, "substantial")):
        if value <= limit:
            return name
    return "almost perfect"


def alpha_band(value: float | None) -> str:
    """Krippendorff's reading of an α."""
    if value is None:
        return "undefined"
    if value >= 0.800:
        return "reliable"
    if value >= 0.667:
        return "tentative"
    return "unreliable"


# --- Period ----------------------------------------------------------------------------------------


def default_period(
    since: dt.datetime | None = None, until: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """``[since, until)``: the last ``HITL_QUALITY_PERIOD_DAYS`` days unless given."""
    until = until or timezone.now()
    since = since or until - dt.timedelta(days=config.quality_period_days())
    return since, until


# --- Agreement ---------------------------------------------------------------------------------------

Rater = TypeVar("Rater", bound=Hashable)


def agreement_summary(units: Iterable[Mapping[Rater, Any]]) -> dict[str, Any]:
    """Percent agreement, Cohen's κ per rater pair, Fleiss' κ, Krippendorff's α of rated units.

    ``units`` holds one ``{rater: label or None}`` mapping per unit (``None`` =
    missing). Fleiss' κ needs a fixed number of raters: it is computed over the
    units rated at least twice, whatever their number of ratings (``fleiss_units``;
    ``quality.stats.pairwise_kappa``, the same figure as the KPIs').
    ``kappa`` is Cohen's κ when exactly two raters rated everything, Fleiss' κ
    otherwise.
    """
    rated_units: list[dict[Rater, Any]] = []
    for unit in units:
        rated = {rater: label for rater, label in unit.items() if label is not None}
        rated_units.append(rated)
    values = [list(unit.values()) for unit in rated_units]
    pairable = [v for v in values if len(v) >= 2]
    percent = stats.percent_agreement(pairable)
    alpha = stats.krippendorff_alpha_nominal(pairable)

    # The one Fleiss' κ (quality.stats.pairwise_kappa): every unit, whatever its number of ratings.
    fleiss = stats.pairwise_kappa(pairable)
    fleiss_units = len(pairable)

    tables: dict[tuple[Any, Any], Counter[tuple[Any, Any]]] = defaultdict(Counter)
    for unit in rated_units:
        for a, b in combinations(sorted(unit, key=repr), 2):
            tables[(a, b)][(unit[a], unit[b])] += 1
    ranked = sorted(tables.items(), key=lambda item: (-sum(item[1].values()), repr(item[0])))
    pairs: list[dict[str, Any]] = []
    for (a, b), table in ranked[:MAX_COHEN_PAIRS]:
        n = sum(table.values())
        agreeing = sum(count for (x, y), count in table.items() if x == y)
        pairs.append({"raters": [a, b], "n": n, "percent": agreeing / n if n else None,
                      "kappa": stats.cohen_kappa_table(table)})
    raters = {rater for unit in rated_units if len(unit) >= 2 for rater in unit}
    kappa = pairs[0]["kappa"] if len(raters) == 2 and pairs else fleiss
    return {
        "units": len(pairable),
        "ratings": sum(len(v) for v in pairable),
        "raters": len(raters),
        "percent": percent,
        "kappa": kappa,
        "kappa_band": kappa_band(kappa),
        "fleiss_kappa": fleiss,
        "fleiss_units": fleiss_units,
        "alpha": alpha,
        "alpha_band": alpha_band(alpha),
        "cohen_pairs": pairs,
    }


def _verdict(label: str | None, outcome: str) -> str | None:
    """The rating a decision gives a unit: its label, or missing for an escalation."""
    return None if outcome == DecisionOutcome.ESCALATE else label


def _period_start_of_day(day: dt.date, period: str) -> dt.date:
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


PERIODS = ("day", "week", "month")


def summary_from_pairs(
    pairs: dict[tuple[Any, Any, int], int],
    tables: dict[tuple[Any, Any], Counter[tuple[Any, Any]]] | None = None,
) -> dict[str, Any]:
    """``agreement_summary``'s figures from additive pair counts (how the live statistics are computed).

    ``pairs`` maps ``(label_a, label_b, unit_size)`` to the number of unordered rating
    pairs of units with that many ratings (``quality.stats.agreement_from_pairs``);
    ``tables`` maps a rater pair to its contingency table (Cohen's κ). Fleiss' κ is
    the pairwise κ over every unit (``quality.stats.pairwise_kappa``).
    """
    # In key order: the float sums then never depend on the order the rows came in (the rollup's
    # and the live statement's rows give bit-identical figures).
    overall = stats.agreement_from_pairs(dict(sorted(pairs.items())))
    units_by_size: Counter[int] = Counter()
    for (_a, _b, size), count in pairs.items():
        units_by_size[size] += count
    for size in units_by_size:
        units_by_size[size] = round(units_by_size[size] / (size * (size - 1) / 2))
    # The one Fleiss' κ over every unit (quality.stats.pairwise_kappa), as the KPIs report it.
    fleiss = overall.kappa
    fleiss_units = sum(units_by_size.values())
    tables = tables or {}
    ranked = sorted(tables.items(), key=lambda item: (-sum(item[1].values()), repr(item[0])))
    cohen: list[dict[str, Any]] = []
    for (a, b), table in ranked[:MAX_COHEN_PAIRS]:
        n = sum(table.values())
        agreeing = sum(count for (x, y), count in table.items() if x == y)
        cohen.append({"raters": [a, b], "n": n, "percent": agreeing / n if n else None,
                      "kappa": stats.cohen_kappa_table(table)})
    raters = {rater for pair in tables for rater in pair}
    kappa = cohen[0]["kappa"] if len(raters) == 2 and cohen else fleiss
    return {
        "units": overall.units,
        "ratings": sum(size * count for size, count in units_by_size.items()),
        "raters": len(raters),
        "percent": overall.percent,
        "kappa": kappa,
        "kappa_band": kappa_band(kappa),
        "fleiss_kappa": fleiss,
        "fleiss_units": fleiss_units,
        "alpha": overall.alpha,
        "alpha_band": alpha_band(overall.alpha),
        "cohen_pairs": cohen,
    }


def _rating_filters(
    *, since: dt.datetime, until: dt.datetime, system_id: int | None, point_id: int | None,
) -> tuple[list[str], list[Any], list[str], list[Any]]:
    """The conditions on the rating (``d``) and on its case (``c``), and their parameters.

    The case conditions repeat the predicate of ``case_multi_review_cover_idx`` (routed
    multi-review cases by arrival) so the planner can use it. A case that is still
    auto-accepted has no decision (only a reopen, which re-queues it, lets anyone
    decide it), so that condition leaves no rating out.
    """
    qn = connection.ops.quote_name
    rating = [f"d.{qn('is_adjudication')} = %s", f"d.{qn('outcome')} <> %s", f"d.{qn('label')} IS NOT NULL"]
    rating_params: list[Any] = [False, DecisionOutcome.ESCALATE]
    case = [
        f"c.{qn('reviewers_required')} >= 2", f"c.{qn('is_gold')} = %s", f"c.{qn('status')} <> %s",
        f"c.{qn('received_at')} >= %s", f"c.{qn('received_at')} < %s",
    ]
    case_params: list[Any] = [False, CaseStatus.AUTO_ACCEPTED, since, until]
    if system_id is not None:
        case.append(f"c.{qn('system_id')} = %s")
        case_params.append(system_id)
    if point_id is not None:
        case.append(f"c.{qn('intervention_point_id')} = %s")
        case_params.append(point_id)
    return rating, rating_params, case, case_params


_DAY_KEYS = "a.point_id, a.day, a.label, b.label, a.m"
_RATER_KEYS = "a.point_id, a.reviewer_id, b.reviewer_id, a.label, b.label"
# The rollup's key (``AgreementPairDay``): both of the above at once, and the system.
_ROLLUP_KEYS = "a.system_id, a.point_id, a.day, a.reviewer_id, b.reviewer_id, a.label, b.label, a.m"
_PAIR_KEYS = {"days": _DAY_KEYS, "raters": _RATER_KEYS, "rollup": _ROLLUP_KEYS}


def _live_pairs_sql(*, since: dt.datetime, until: dt.datetime, system_id: int | None, point_id: int | None,
                    group: str, tzname: str | None = None) -> tuple[str, list[Any]]:
    """The pair-count query over live multi-review ratings, grouped by ``group`` (any database).

    Every rating (a non-escalation, non-adjudication decision with a label) is
    joined with the other ratings of its case and round, each unordered pair once
    (lower reviewer id first), with the unit's number of ratings (a window count).
    ``group`` is "days" (point, day, labels, unit size), "raters" (point, rater
    pair, labels) or "rollup" (system, point, day, rater pair, labels, unit size:
    ``AgreementPairDay``'s key). Days are those of ``tzname`` (the current time
    zone by default). PostgreSQL uses ``_units_sql`` instead.
    """
    qn = connection.ops.quote_name
    day_sql, day_params = connection.ops.datetime_cast_date_sql(
        f"c.{qn('received_at')}", [], tzname or timezone.get_current_timezone_name()
    )
    rating, rating_params, case, case_params = _rating_filters(
        since=since, until=until, system_id=system_id, point_id=point_id)
    keys = _PAIR_KEYS[group]
    case_table, decision_table = qn(Case._meta.db_table), qn(Decision._meta.db_table)
    sql = f"""
        WITH r AS (
            SELECT d.{qn('case_id')} AS case_id, d.{qn('round')} AS round_, d.{qn('reviewer_id')} AS reviewer_id,
                   d.{qn('label')} AS label, c.{qn('intervention_point_id')} AS point_id, {day_sql} AS day,
                   c.{qn('system_id')} AS system_id,
                   COUNT(*) OVER (PARTITION BY d.{qn('case_id')}, d.{qn('round')}) AS m
            FROM {case_table} c INNER JOIN {decision_table} d ON d.{qn('case_id')} = c.{qn('id')}
            WHERE {' AND '.join(rating + case)}
        )
        SELECT {keys}, COUNT(*)
        FROM r a INNER JOIN r b
          ON a.case_id = b.case_id AND a.round_ = b.round_ AND a.reviewer_id < b.reviewer_id
        GROUP BY {keys}
    """
    return sql, [*day_params, *rating_params, *case_params]


def _units_sql(*, since: dt.datetime, until: dt.datetime, system_id: int | None,
               point_id: int | None, rollup: bool = False) -> tuple[str, list[Any]]:
    """PostgreSQL: the period's rated units (case rounds with at least two ratings), counted by kind.

    Each unit is read as two arrays, its raters and their labels in rater order,
    by one index probe per multi-review case (the cases from
    ``case_multi_review_cover_idx``); the units are then counted in two grouping
    sets: by (point, day, labels) and by (point, raters, labels). Python expands
    each row into its rating pairs (``_pairs_of_units``). At 1 M cases this
    replaced a window count and a self-join of the period's ratings, which read
    every decision of the table: 4× less database CPU (docs/PERFORMANCE.md).

    The arrays come in rater order from the ordered subquery (PostgreSQL feeds an
    aggregate its input in the subquery's order; ``array_agg(... ORDER BY ...)``
    sorted every two-row unit on its own and cost a third of the statement). The
    rater pairs are put in order again in Python, so their counts never depend on
    it; the day rows' statistics are symmetric in the two labels.

    ``rollup``: the same units counted by (system, point, UTC day, raters, labels)
    instead, the rows ``agreement_day_pairs`` expands into ``AgreementPairDay``'s.
    """
    qn = connection.ops.quote_name
    day_sql, day_params = connection.ops.datetime_cast_date_sql(
        f"c.{qn('received_at')}", [], "UTC" if rollup else timezone.get_current_timezone_name()
    )
    rating, rating_params, case, case_params = _rating_filters(
        since=since, until=until, system_id=system_id, point_id=point_id)
    point_key = f"c.{qn('intervention_point_id')}"
    if rollup:
        keys = f"c.{qn('system_id')}, {point_key}, {day_sql} AS day"
        group = f"GROUP BY c.{qn('system_id')}, {point_key}, day, u.raters, u.labels"
    else:
        keys = f"GROUPING(u.raters), {point_key}, {day_sql} AS day"
        group = f"GROUP BY GROUPING SETS (({point_key}, day, u.labels), ({point_key}, u.raters, u.labels))"
    sql = f"""
        SELECT {keys}, u.raters, u.labels, COUNT(*)
        FROM {qn(Case._meta.db_table)} c
        CROSS JOIN LATERAL (
            SELECT array_agg(s.reviewer_id) AS raters, array_agg(s.label) AS labels
            FROM (
                SELECT d.{qn('round')} AS round_, d.{qn('reviewer_id')} AS reviewer_id, d.{qn('label')} AS label
                FROM {qn(Decision._meta.db_table)} d
                WHERE d.{qn('case_id')} = c.{qn('id')} AND {' AND '.join(rating)}
                ORDER BY d.{qn('round')}, d.{qn('reviewer_id')}
            ) s
            GROUP BY s.round_
            HAVING COUNT(*) > 1
        ) u
        WHERE {' AND '.join(case)}
        {group}
    """
    return sql, [*day_params, *rating_params, *case_params]


def _pairs_of_units(
    rows: Iterable[tuple[Any, ...]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """``_units_sql``'s rows as the two lists of pair counts ``_live_pairs_sql`` gives."""
    day_rows: list[tuple[Any, ...]] = []
    rater_rows: list[tuple[Any, ...]] = []
    for without_raters, point, day, raters, labels, count in rows:
        size = len(labels)
        if without_raters:
            for i, j in combinations(range(size), 2):
                day_rows.append((point, day, labels[i], labels[j], size, count))
            continue
        for rater_a, rater_b, label_a, label_b in _rater_pairs(raters, labels):
            rater_rows.append((point, rater_a, rater_b, label_a, label_b, count))
    return day_rows, rater_rows


def _rater_pairs(raters: Iterable[int], labels: Iterable[str]) -> Iterator[tuple[int, int, str, str]]:
    """A unit's rating pairs ``(rater_a, rater_b, label_a, label_b)``, each once, the lower rater id first."""
    ordered = sorted(zip(raters, labels, strict=True))
    for (rater_a, label_a), (rater_b, label_b) in combinations(ordered, 2):
        yield rater_a, rater_b, label_a, label_b


RollupKey = tuple[dt.date, int, int, int, int, str, str, int]


def agreement_day_pairs(*, since: dt.datetime, until: dt.datetime) -> Counter[RollupKey]:
    """``AgreementPairDay``'s rows of the cases received in ``[since, until)``, by their key.

    The key is ``(UTC day, system, point, rater_a, rater_b, label_a, label_b,
    unit_size)``: the live statement's units (PostgreSQL, ``_units_sql``) or its
    portable pair counts (``_live_pairs_sql``), only counted by a finer key, so the
    rows add up to exactly the pair counts ``_live_pair_rows`` gives for any set of
    whole days. For the rollup rebuild (``quality.services.agreement``).
    """
    counts: Counter[RollupKey] = Counter()
    window: dict[str, Any] = dict(since=since, until=until, system_id=None, point_id=None)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(*_live_pairs_sql(**window, group="rollup", tzname="UTC"))
            for system_id, point_id, day, rater_a, rater_b, label_a, label_b, size, count in cursor.fetchall():
                counts[(_as_date(day), system_id, point_id, rater_a, rater_b, label_a, label_b, int(size))] += count
            return counts
        # As _live_pair_rows, but restored afterwards: the rebuild runs inside the refresh's transaction.
        with _local_settings(cursor, jit="off", work_mem="64MB"):
            cursor.execute(*_units_sql(**window, rollup=True))
            for system_id, point_id, day, raters, labels, count in cursor.fetchall():
                size = len(labels)
                for rater_a, rater_b, label_a, label_b in _rater_pairs(raters, labels):
                    counts[(day, system_id, point_id, rater_a, rater_b, label_a, label_b, size)] += count
    return counts


@contextmanager
def _local_settings(cursor: Any, **settings: str) -> Iterator[None]:
    """PostgreSQL settings for the statements inside (a transaction), put back as they were afterwards."""
    before: dict[str, str] = {}
    for name, value in settings.items():
        cursor.execute("SELECT current_setting(%s), set_config(%s, %s, true)", [name, name, value])
        before[name] = cursor.fetchone()[0]
    yield
    # Not on an error: the transaction is aborted then, and its settings go with it.
    for name, value in before.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


def _live_pair_rows(
    *, since: dt.datetime, until: dt.datetime, system_id: int | None, point_id: int | None,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The pair counts by day and by rater pair: one statement on PostgreSQL, two elsewhere."""
    window: dict[str, Any] = dict(since=since, until=until, system_id=system_id, point_id=point_id)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(*_live_pairs_sql(**window, group="days"))
            day_rows = cursor.fetchall()
            cursor.execute(*_live_pairs_sql(**window, group="raters"))
            return day_rows, cursor.fetchall()
        # JIT off: the estimate at millions of cases crosses PostgreSQL's JIT thresholds, and compiling
        # the statement took 5.2 s of a 13.3 s query at 10 M cases (docs/PERFORMANCE.md, "Figures at
        # 10 million cases"). The grouping of a year's units at 10 M cases (a few hundred thousand)
        # spilled to disk at the default 4 MB of work_mem. Both are local to this transaction.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(*_units_sql(**window))
        return _pairs_of_units(cursor.fetchall())


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


AGREEMENT_STATE_KEY = "default"
_ONE_DAY = dt.timedelta(days=1)


def agreement_rollup_built_through() -> dt.date | None:
    """The last day ``AgreementPairDay`` holds (``None``: never built, everything is computed live)."""
    return (AgreementRollupState.objects.filter(key=AGREEMENT_STATE_KEY)
            .values_list("built_through", flat=True).first())


def agreement_rollup_status() -> Mapping[str, Any] | None:
    """When ``AgreementPairDay`` was last rebuilt and through which day (``None``: never), for the page."""
    return (AgreementRollupState.objects.filter(key=AGREEMENT_STATE_KEY)
            .values("built_through", "computed_at").first())


def _rollup_days(since: dt.datetime, until: dt.datetime) -> tuple[dt.date, dt.date] | None:
    """The whole UTC days of ``[since, until)`` that ``AgreementPairDay`` holds, as ``(first, last)``, if any.

    The days up to the rollup's ``built_through``, never today: cases keep
    arriving today while its rows are as of the last refresh, so today is always
    counted live (exact, a few ms for a day's cases), whether the period ends now
    or later. None in another current time zone than UTC (the live statement's
    days are the current time zone's; the rollup's are UTC days).
    """
    if timezone.get_current_timezone_name() != "UTC" or since >= until:
        return None
    built_through = agreement_rollup_built_through()
    if built_through is None:
        return None
    start = since.astimezone(dt.UTC)
    first = start.date() if start == day_start(start.date()) else start.date() + _ONE_DAY
    yesterday = timezone.now().astimezone(dt.UTC).date() - _ONE_DAY
    last = min(until.astimezone(dt.UTC).date() - _ONE_DAY, built_through, yesterday)
    return (first, last) if first <= last else None


def _rollup_pair_rows(
    *, first: dt.date, last: dt.date, system_id: int | None, point_id: int | None,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """``_live_pair_rows``'s two lists for the whole days ``first``..``last``, summed from ``AgreementPairDay``.

    One statement on PostgreSQL (both groupings from one read of the days' rows by
    the table's unique key, which starts with the day), two elsewhere.
    """
    qn = connection.ops.quote_name

    def col(name: str) -> str:
        return qn(column_of(AgreementPairDay, name))

    where = [f"{col('day')} >= %s", f"{col('day')} <= %s"]
    params: list[Any] = [first, last]
    if system_id is not None:
        where.append(f"{col('system')} = %s")
        params.append(system_id)
    if point_id is not None:
        where.append(f"{col('intervention_point')} = %s")
        params.append(point_id)
    point, raters = col("intervention_point"), f"{col('rater_a')}, {col('rater_b')}"
    labels = f"{col('label_a')}, {col('label_b')}"
    day_keys = f"{point}, {col('day')}, {labels}, {col('unit_size')}"
    rater_keys = f"{point}, {raters}, {labels}"
    source = f"FROM {qn(AgreementPairDay._meta.db_table)} WHERE {' AND '.join(where)}"
    total = f"SUM({col('count')})"
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(f"SELECT {day_keys}, {total} {source} GROUP BY {day_keys}", params)
            day_rows = cursor.fetchall()
            cursor.execute(f"SELECT {rater_keys}, {total} {source} GROUP BY {rater_keys}", params)
            return day_rows, cursor.fetchall()
        cursor.execute(
            f"SELECT GROUPING({col('rater_a')}), {point}, {col('day')}, {raters}, {labels}, {col('unit_size')}, "
            f"{total} {source} GROUP BY GROUPING SETS (({day_keys}), ({rater_keys}))", params)
        by_day: list[tuple[Any, ...]] = []
        by_raters: list[tuple[Any, ...]] = []
        for without_raters, point_id_, day, rater_a, rater_b, label_a, label_b, size, count in cursor.fetchall():
            if without_raters:
                by_day.append((point_id_, day, label_a, label_b, size, count))
            else:
                by_raters.append((point_id_, rater_a, rater_b, label_a, label_b, count))
        return by_day, by_raters


def _pair_rows(
    *, since: dt.datetime, until: dt.datetime, system_id: int | None, point_id: int | None,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The pair counts of ``[since, until)``: its whole days the rollup holds from there, the rest live.

    The rest: the partial days at the edges, the days after the rollup's
    ``built_through`` (today, at least) and everything when the rollup was never
    built. The rows of both sources have the same shape and are simply added up.
    """
    covered = _rollup_days(since, until)
    if covered is None:
        return _live_pair_rows(since=since, until=until, system_id=system_id, point_id=point_id)
    first, last = covered
    day_rows, rater_rows = _rollup_pair_rows(first=first, last=last, system_id=system_id, point_id=point_id)
    for start, end in ((since, day_start(first)), (day_start(last + _ONE_DAY), until)):
        if start < end:
            live_days, live_raters = _live_pair_rows(since=start, until=end, system_id=system_id, point_id=point_id)
            day_rows.extend(live_days)
            rater_rows.extend(live_raters)
    return day_rows, rater_rows


def live_agreement(
    *,
    since: dt.datetime,
    until: dt.datetime,
    system: str | None = None,
    point: InterventionPoint | None = None,
    period: str = "week",
) -> dict[str, Any]:
    """Agreement on live multi-review cases received in ``[since, until)``, overall, per point and per period.

    Two aggregate queries (pair counts per point and day; contingency tables per
    point and rater pair); the statistics then come from those counts, which add
    up exactly across days, periods and points (see ``bench/agreement.py``). The
    whole UTC days the agreement rollup holds are read from it (``AgreementPairDay``,
    the same counts pre-summed per day), the rest is counted live (``_pair_rows``).
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    system_id = None
    if system:
        system_id = AISystem.objects.filter(slug=system).values_list("pk", flat=True).first()
        if system_id is None:
            return {"from": since, "to": until, "period": period, "overall": summary_from_pairs({}), "points": []}
    only_point_id = point.pk if point is not None else None
    by_point_period: dict[int, dict[dt.date, Counter[tuple[Any, Any, int]]]] = defaultdict(
        lambda: defaultdict(Counter))
    day_rows, rater_rows = _pair_rows(since=since, until=until, system_id=system_id, point_id=only_point_id)
    for point_id, day, label_a, label_b, size, count in day_rows:
        start = _period_start_of_day(_as_date(day), period)
        by_point_period[point_id][start][(label_a, label_b, int(size))] += count
    names = dict(User.objects.filter(pk__in={r[1] for r in rater_rows} | {r[2] for r in rater_rows})
                 .values_list("pk", "username"))
    tables: dict[int, dict[tuple[Any, Any], Counter[tuple[Any, Any]]]] = defaultdict(lambda: defaultdict(Counter))
    for point_id, rater_a, rater_b, label_a, label_b, count in rater_rows:
        tables[point_id][(names[rater_a], names[rater_b])][(label_a, label_b)] += count
    points = {
        p.pk: p for p in InterventionPoint.objects.filter(pk__in=list(by_point_period)).select_related("system")
    }
    overall_pairs: Counter[tuple[Any, Any, int]] = Counter()
    overall_tables: dict[tuple[Any, Any], Counter[tuple[Any, Any]]] = defaultdict(Counter)
    per_point = []
    for point_id in sorted(by_point_period, key=lambda pk: str(points[pk])):
        point_pairs: Counter[tuple[Any, Any, int]] = Counter()
        for counts in by_point_period[point_id].values():
            point_pairs.update(counts)
        overall_pairs.update(point_pairs)
        for raters, table in tables[point_id].items():
            overall_tables[raters].update(table)
        intervention_point = points[point_id]
        per_point.append({
            "system": intervention_point.system.slug,
            "intervention_point": intervention_point.slug,
            "name": intervention_point.name,
            "summary": summary_from_pairs(point_pairs, tables[point_id]),
            "periods": [
                {"start": start.isoformat(), "summary": _brief(summary_from_pairs(counts))}
                for start, counts in sorted(by_point_period[point_id].items())
            ],
        })
    return {
        "from": since, "to": until, "period": period,
        "overall": summary_from_pairs(overall_pairs, overall_tables),
        "points": per_point,
    }


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    """A period's figures without the per-pair table (kept short in lists)."""
    return {key: value for key, value in summary.items() if key != "cohen_pairs"}


# --- Gold answers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoldAnswer:
    """One scored answer to a gold copy."""

    case_id: int
    decided_at: dt.datetime
    label: str | None
    gold_label: str | None
    correct: bool


def gold_answers(
    *, reviewer_id: int, limit: int | None = None, since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[GoldAnswer]:
    """The reviewer's gold answers, newest first (the last ``limit`` of them)."""
    decisions = Decision.objects.filter(
        reviewer_id=reviewer_id, round=1, is_adjudication=False,
        case_id__in=GoldServing.objects.filter(reviewer_id=reviewer_id).values("case_id"),
    )
    if since is not None:
        decisions = decisions.filter(decided_at__gt=since)
    if until is not None:
        decisions = decisions.filter(decided_at__lt=until)
    rows = decisions.order_by("-decided_at", "-id").values_list(
        "case_id", "decided_at", "label", "outcome", "case__gold_label"
    )
    if limit is not None:
        rows = rows[:limit]
    answers = []
    for case_id, decided_at, label, outcome, gold_label in rows:
        verdict = _verdict(label, outcome)
        answers.append(GoldAnswer(case_id, decided_at, verdict, gold_label,
                                  verdict is not None and verdict == gold_label))
    return answers


def gold_figures(*, reviewer_id: int, window: int | None = None, until: dt.datetime | None = None) -> dict[str, Any]:
    """Gold accuracy over the reviewer's last ``window`` answers (``HITL_GOLD_WINDOW`` by default)."""
    window = config.gold_window() if window is None else window
    answers = gold_answers(reviewer_id=reviewer_id, limit=window, until=until)
    correct = sum(1 for answer in answers if answer.correct)
    return {
        "gold_answered": len(answers),
        "gold_correct": correct,
        "gold_accuracy": correct / len(answers) if answers else None,
        "gold_window": window,
    }


def gold_figures_by_reviewer(*, reviewer_ids: Iterable[int], window: int | None = None) -> dict[int, dict[str, Any]]:
    """``gold_figures(reviewer_id=r, window=window)`` for every reviewer of ``reviewer_ids``, in one query.

    The reviewers' gold answers ranked newest first per reviewer (``ROW_NUMBER``), the
    last ``window`` of each kept: one statement instead of one per reviewer on the
    reviewers' page.
    """
    window = config.gold_window() if window is None else window
    ids = list(reviewer_ids)
    tallies: dict[int, list[int]] = {reviewer_id: [0, 0] for reviewer_id in ids}
    if window > 0 and ids:
        served = GoldServing.objects.filter(reviewer_id=OuterRef("reviewer_id"), case_id=OuterRef("case_id"))
        rows = (
            Decision.objects.filter(reviewer_id__in=ids, round=1, is_adjudication=False)
            .filter(Exists(served))
            .annotate(rank=Window(RowNumber(), partition_by=[F("reviewer_id")],
                                  order_by=[F("decided_at").desc(), F("id").desc()]))
            .filter(rank__lte=window)
            .values_list("reviewer_id", "label", "outcome", "case__gold_label")
            .order_by()
        )
        for reviewer_id, label, outcome, gold_label in rows:
            verdict = _verdict(label, outcome)
            tallies[reviewer_id][0] += 1
            tallies[reviewer_id][1] += verdict is not None and verdict == gold_label
    return {
        reviewer_id: {"gold_answered": answered, "gold_correct": correct,
                      "gold_accuracy": correct / answered if answered else None, "gold_window": window}
        for reviewer_id, (answered, correct) in tallies.items()
    }


# --- One reviewer ----------------------------------------------------------------------------------


_ID_SLICE = 10_000


def reviewer_agreement(*, reviewer_id: int, since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
    """How often the reviewer's verdict matched each co-reviewer's on live multi-review cases.

    ``agreement`` = agreeing pairs / pairs (the reviewer's rating against every
    other rating of the same case and round).
    """
    # ``status <> auto_accepted`` changes nothing (such a case has no decision: see _rating_filters)
    # but lets PostgreSQL read the window's cases from case_multi_review_cover_idx.
    own = Decision.objects.filter(
        reviewer_id=reviewer_id, is_adjudication=False, case__reviewers_required__gte=2, case__is_gold=False,
        case__received_at__gte=since, case__received_at__lt=until,
    ).exclude(case__status=CaseStatus.AUTO_ACCEPTED)
    mine = {(case_id, round_): _verdict(label, outcome)
            for case_id, round_, label, outcome in own.values_list("case_id", "round", "label", "outcome").order_by()}
    # The co-reviewers' decisions by the case ids already read (an index probe each), not by running
    # the window's join again as a subquery; in slices, to stay far below PostgreSQL's 65,535
    # parameters a statement.
    case_ids = sorted({case_id for case_id, _round in mine})
    others = [
        row
        for start in range(0, len(case_ids), _ID_SLICE)
        for row in Decision.objects.filter(is_adjudication=False, case_id__in=case_ids[start:start + _ID_SLICE])
        .exclude(reviewer_id=reviewer_id)
        .values_list("case_id", "round", "label", "outcome")
        .order_by()
    ]
    pairs = agreeing = 0
    for case_id, round_, label, outcome in others:
        verdict = mine.get((case_id, round_))
        other = _verdict(label, outcome)
        if verdict is None or other is None:
            continue
        pairs += 1
        agreeing += verdict == other
    return {"pairs": pairs, "agreeing": agreeing, "agreement": agreeing / pairs if pairs else None}


def _median(values: list[int]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


def automation_bias(*, reviewer_id: int, since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
    """Per system (and overall): agreement with the AI when shown and hidden, the gap, rubber-stamp flags.

    Counted by the database from the decisions alone (each decision carries its case's
    system and AI label), through ``decision_quality_reviewer_idx``: the reviewer's
    counts per system and AI visibility, and the median times per system and overall.
    """
    decisions = _bias_decisions(since=since, until=until).filter(reviewer_id=reviewer_id)
    per_system = _bias_buckets(decisions).get(reviewer_id, {})
    medians, system_medians = _median_times_shown(decisions, per_system=True)
    slugs: dict[int | None, str] = dict(
        AISystem.objects.filter(pk__in=[pk for pk in per_system if pk is not None]).values_list("pk", "slug"))
    systems = sorted(
        ({"system": slugs.get(system_id),
          **_figures_from_counts(bucket, median_ms=system_medians.get((reviewer_id, system_id)))}
         for system_id, bucket in per_system.items()),
        key=lambda row: row["system"] or "",
    )
    figures = _figures_from_counts(_summed(per_system.values()), median_ms=medians.get(reviewer_id))
    figures["automation_bias_gap"] = _stratified_gap(list(per_system.values()))
    return {"systems": systems, "overall": figures}


def _stratified_gap(buckets: list[dict[str, Any]]) -> float | None:
    """The overall gap as a Mantel-Haenszel weighted mean of the per-system gaps.

    Pooling the counts across systems (shown rate of all minus hidden rate of all) mixes
    systems with different blind shares and agreement levels: a reviewer whose every
    system shows no gap could get a large pooled gap (Simpson's paradox). Each system
    weighs ``n_shown * n_hidden / (n_shown + n_hidden)``; systems with only one side
    carry no information about the gap.
    """
    total = weight_sum = 0.0
    for bucket in buckets:
        shown, hidden = bucket["shown"], bucket["hidden"]
        if not shown or not hidden:
            continue
        weight = shown * hidden / (shown + hidden)
        total += weight * (bucket["shown_agree"] / shown - bucket["hidden_agree"] / hidden)
        weight_sum += weight
    return total / weight_sum if weight_sum else None


def oversight_by_reviewer_point(
    *, system: AISystem, since: dt.datetime | None = None, until: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Per reviewer and intervention point of ``system``: the automation-bias figures and gold accuracy.

    The same measures as ``automation_bias`` and ``gold_answers`` (live decisions for
    the gap, first-round answers on gold copies for accuracy), split by point, for the
    dossier: a gap that only shows at one point is hidden by the per-system figure.
    """
    decisions = Decision.objects.filter(case__system=system, is_adjudication=False)
    if since is not None:
        decisions = decisions.filter(decided_at__gte=since)
    if until is not None:
        decisions = decisions.filter(decided_at__lt=until)
    rows = decisions.values_list(
        "reviewer__username", "case__intervention_point__slug", "case__is_gold", "round", "ai_shown", "outcome",
        "label", "case__prediction_label", "case__gold_label", "time_spent_ms",
    ).order_by()
    buckets: dict[tuple[str, str], dict[str, Any]] = {}
    gold: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for reviewer, point, is_gold, round_, ai_shown, outcome, label, ai_label, gold_label, spent in rows.iterator(
            chunk_size=20000):
        key = (reviewer, point)
        if is_gold:
            if round_ == 1:
                verdict = _verdict(label, outcome)
                gold[key][0] += 1
                gold[key][1] += verdict is not None and verdict == gold_label
            continue
        _bias_add(buckets.setdefault(key, _bias_bucket()), ai_shown=ai_shown, outcome=outcome, label=label,
                  ai_label=ai_label, spent=spent)
    result = []
    for reviewer, point in sorted(set(buckets) | set(gold)):
        answered, correct = gold.get((reviewer, point), (0, 0))
        figures = _bias_figures(buckets.get((reviewer, point), _bias_bucket()))
        result.append({
            "reviewer": reviewer, "point": point, **figures, "gold_answered": answered, "gold_correct": correct,
            "gold_accuracy": correct / answered if answered else None,
        })
    return result


def _bias_bucket() -> dict[str, Any]:
    return {"shown": 0, "shown_agree": 0, "hidden": 0, "hidden_agree": 0, "approvals": 0, "times": []}


def _bias_add(bucket: dict[str, Any], *, ai_shown: bool, outcome: str, label: str | None, ai_label: str | None,
              spent: int) -> None:
    if ai_shown:
        # Rubber-stamping is about what the reviewer did with a visible suggestion.
        bucket["approvals"] += outcome == DecisionOutcome.APPROVE
        bucket["times"].append(spent)
    verdict = _verdict(label, outcome)
    if ai_label is None or verdict is None:
        return  # nothing to agree with (labeling without prediction), or no verdict (escalation)
    key = "shown" if ai_shown else "hidden"
    bucket[key] += 1
    bucket[f"{key}_agree"] += verdict == ai_label


def _bias_figures(bucket: dict[str, Any]) -> dict[str, Any]:
    return _figures_from_counts({**bucket, "decisions_shown": len(bucket["times"])}, median_ms=_median(bucket["times"]))


def _figures_from_counts(
    bucket: dict[str, Any], *, median_ms: float | None, median_under_floor: bool | None = None,
) -> dict[str, Any]:
    """The figures of a count bucket; ``median_under_floor`` stands in for ``median_ms`` when only that is known."""
    shown_rate = bucket["shown_agree"] / bucket["shown"] if bucket["shown"] else None
    hidden_rate = bucket["hidden_agree"] / bucket["hidden"] if bucket["hidden"] else None
    gap = shown_rate - hidden_rate if shown_rate is not None and hidden_rate is not None else None
    decisions_shown = bucket["decisions_shown"]
    approval_rate = bucket["approvals"] / decisions_shown if decisions_shown else None
    enough = decisions_shown >= config.rubber_stamp_min_decisions()
    flags = []
    if enough and approval_rate is not None and approval_rate >= config.rubber_stamp_approval_rate():
        flags.append("approval_rate")
    if median_ms is not None:
        median_under_floor = median_ms < config.rubber_stamp_time_floor_s() * 1000
    if enough and median_under_floor:
        flags.append("time_spent")
    return {
        "decisions_ai_shown": bucket["shown"],
        "decisions_ai_hidden": bucket["hidden"],
        "agreement_ai_shown": shown_rate,
        "agreement_ai_hidden": hidden_rate,
        "automation_bias_gap": gap,
        "approval_rate": approval_rate,
        "median_time_spent_s": None if median_ms is None else median_ms / 1000,
        "rubber_stamp": bool(flags),
        "rubber_stamp_flags": flags,
    }


def _blocked_systems(profile: ReviewerProfile, today: dt.date) -> list[dict[str, Any]]:
    """The reviewer's systems whose queue is closed to them for want of a required training."""
    names = dict(profile.qualifications.values_list("pk", "name"))
    lacking = missing_trainings(profile.pk, names, today=today)
    return [{"system": names[system_id], "kinds": kinds} for system_id, kinds in sorted(lacking.items())]


def training_status(profile: ReviewerProfile, *, today: dt.date | None = None) -> dict[str, Any]:
    """The reviewer's training records with their validity, and the required kinds that lapsed."""
    today = today or timezone.localdate()
    records = list(
        TrainingRecord.objects.filter(reviewer_id=profile.pk).select_related("system").order_by("-completed_at", "-id")
    )
    # The union of what the reviewer's systems require (AISystem.required_trainings).
    required = sorted({kind for kinds in profile.qualifications.values_list("required_trainings", flat=True)
                       for kind in kinds or []})
    kinds: dict[str, list[TrainingRecord]] = defaultdict(list)
    for record in records:
        kinds[record.kind].append(record)
    expired = [
        kind for kind in required
        if kinds.get(kind) and all(r.expires_at is not None and r.expires_at < today for r in kinds[kind])
    ]
    missing = [kind for kind in required if not kinds.get(kind)]
    return {
        "records": [
            {"id": r.pk, "title": r.title, "kind": r.kind, "system": r.system.slug if r.system else None,
             "completed_at": r.completed_at, "expires_at": r.expires_at, "evidence_url": r.evidence_url,
             "valid": r.expires_at is None or r.expires_at >= today}
            for r in records
        ],
        "required_kinds": required,
        "blocked_systems": _blocked_systems(profile, today),
        "expired_kinds": expired,
        "missing_kinds": missing,
    }


def latest_snapshot(*, reviewer_id: int) -> ReviewerQualitySnapshot | None:
    return ReviewerQualitySnapshot.objects.filter(reviewer_id=reviewer_id).order_by("-day").first()


def reviewer_quality(
    profile: ReviewerProfile, *, as_self: bool, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> dict[str, Any]:
    """The reviewer quality figures of the contract and the pages.

    ``as_self``: the reviewer reading their own figures gets the gold figures of the
    latest daily snapshot (``gold_as_of``), never live ones, so the moment a figure
    changes cannot reveal which of their cases was gold.
    """
    since, until = default_period(since, until)
    user = profile.user
    if as_self:
        snapshot = latest_snapshot(reviewer_id=user.pk)
        gold = {
            "gold_answered": snapshot.gold_answered if snapshot else 0,
            "gold_correct": snapshot.gold_correct if snapshot else 0,
            "gold_accuracy": snapshot.gold_accuracy if snapshot else None,
            "gold_window": config.gold_window(),
            "gold_as_of": snapshot.day.isoformat() if snapshot else None,
        }
    else:
        gold = {**gold_figures(reviewer_id=user.pk), "gold_as_of": None}
    agreement = reviewer_agreement(reviewer_id=user.pk, since=since, until=until)
    return {
        "username": user.username,
        "status": profile.status,
        "status_reason": profile.status_reason,
        "status_changed_at": profile.status_changed_at,
        "adjudicator": profile.adjudicator,
        "qualifications": sorted(system.slug for system in profile.qualifications.all()),
        **gold,
        "agreement": agreement["agreement"],
        "agreement_pairs": agreement["pairs"],
        "automation_bias": automation_bias(reviewer_id=user.pk, since=since, until=until),
        "training": training_status(profile),
        "from": since,
        "to": until,
    }


def reviewers_overview(*, since: dt.datetime | None = None, until: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every reviewer with their live gold figures, status and rubber-stamp flags (for managers and officers).

    The same figures as ``automation_bias(...)["overall"]`` per reviewer, but counted by
    the database for all reviewers at once: per reviewer the period's decisions were
    streamed to Python one reviewer after another (30 full scans, 8.5 s at a million
    cases, docs/PERFORMANCE.md); now one grouped count over the decisions alone
    (``_automation_bias_overall_by_reviewer``) and the gold answers of all reviewers in
    one query (``gold_figures_by_reviewer``).
    """
    since, until = default_period(since, until)
    profiles = list(ReviewerProfile.objects.select_related("user").prefetch_related("qualifications").order_by(
        "user__username"
    ))
    reviewer_ids = [profile.user_id for profile in profiles]
    bias = _automation_bias_overall_by_reviewer(since=since, until=until, reviewer_ids=reviewer_ids)
    gold = gold_figures_by_reviewer(reviewer_ids=reviewer_ids)
    rows = []
    for profile in profiles:
        figures = bias.get(profile.user_id) or _bias_figures(_bias_bucket())
        rows.append({
            "username": profile.user.username,
            "status": profile.status,
            "adjudicator": profile.adjudicator,
            "qualifications": sorted(system.slug for system in profile.qualifications.all()),
            **gold[profile.user_id],
            "automation_bias_gap": figures["automation_bias_gap"],
            "approval_rate": figures["approval_rate"],
            "rubber_stamp_flags": figures["rubber_stamp_flags"],
        })
    return rows


def _automation_bias_overall_by_reviewer(
    *, since: dt.datetime, until: dt.datetime, reviewer_ids: list[int],
) -> dict[int, dict[str, Any]]:
    """``automation_bias(reviewer_id=r, ...)["overall"]`` for the reviewers, but the gap, approval rate and flags only.

    The page shows no median time, only whether it is under the rubber-stamp floor,
    and that the counts answer: of ``n`` sorted times, ``k`` under the floor, the
    median (the middle one, or the mean of the two middle ones) is under it when
    ``2k > n`` and not when ``2k < n``. Only at ``2k = n`` (the two middle times on
    either side of the floor) does it depend on their values: those reviewers' medians
    are computed exactly. This saves sorting the period's times per reviewer
    (``percentile_cont``: a third of the page's database time at a million cases).
    """
    floor_ms = config.rubber_stamp_time_floor_s() * 1000
    decisions = _bias_decisions(since=since, until=until).filter(reviewer_id__in=reviewer_ids)
    buckets = _bias_buckets(decisions, floor_ms=floor_ms)
    totals = {reviewer: _summed(per_system.values()) for reviewer, per_system in buckets.items()}
    ties = [reviewer for reviewer, total in totals.items()
            if total["decisions_shown"] and 2 * total["below_floor"] == total["decisions_shown"]]
    medians = _median_times_shown(decisions.filter(reviewer_id__in=ties), per_system=False)[0] if ties else {}
    result = {}
    for reviewer, total in totals.items():
        shown, below = total["decisions_shown"], total["below_floor"]
        median_under = None if not shown else (
            medians[reviewer] < floor_ms if 2 * below == shown else 2 * below > shown)
        figures = _figures_from_counts(total, median_ms=None, median_under_floor=median_under)
        figures["automation_bias_gap"] = _stratified_gap(list(buckets[reviewer].values()))
        result[reviewer] = figures
    return result


def _bias_decisions(*, since: dt.datetime, until: dt.datetime) -> QuerySet[Decision]:
    """The decisions the automation-bias figures count: the period's, adjudications left out."""
    return Decision.objects.filter(is_adjudication=False, decided_at__gte=since, decided_at__lt=until)


def _count_bucket() -> dict[str, Any]:
    return {"shown": 0, "shown_agree": 0, "hidden": 0, "hidden_agree": 0, "approvals": 0, "decisions_shown": 0,
            "below_floor": 0}


def _summed(buckets: Iterable[dict[str, Any]]) -> dict[str, Any]:
    total = _count_bucket()
    for bucket in buckets:
        for key in total:
            total[key] += bucket[key]
    return total


@contextmanager
def _without_jit() -> Iterator[None]:
    """No JIT for the statements inside (a transaction): see ``_live_pair_rows``.

    At 10 M cases a period's grouped count crosses PostgreSQL's JIT cost thresholds,
    and compiling costs more than the count.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield


def _bias_buckets(
    decisions: QuerySet[Decision], *, floor_ms: float | None = None,
) -> dict[int, dict[int | None, dict[str, Any]]]:
    """What ``_bias_add`` would add up over ``decisions``, per reviewer and system, counted by the database.

    One grouped count per reviewer, system and AI visibility over the decisions alone
    (the case's system and AI label are copied onto each decision), answered from
    ``decision_quality_idx`` or ``decision_quality_reviewer_idx`` without the table.
    With ``floor_ms``, also how many AI-shown decisions took less than that.
    """
    verdict = ~Q(outcome=DecisionOutcome.ESCALATE) & Q(label__isnull=False)
    # Counting decided_at (never null), not the id: the indexes hold every column read here but the id.
    aggregates: dict[str, Any] = {
        "n": Count("decided_at"),
        "approvals": Count("decided_at", filter=Q(outcome=DecisionOutcome.APPROVE)),
        "compared": Count("decided_at", filter=verdict & Q(prediction_label__isnull=False)),
        "agree": Count("decided_at", filter=verdict & Q(label=F("prediction_label"))),
    }
    if floor_ms is not None:
        # time_spent_ms is an integer: t < floor exactly when t < ceil(floor) (an integer comparison,
        # where the float would make PostgreSQL compare every row as numeric).
        aggregates["below_floor"] = Count("decided_at", filter=Q(time_spent_ms__lt=math.ceil(floor_ms)))
    counts = decisions.values("reviewer_id", "system_id", "ai_shown").annotate(**aggregates).order_by()
    buckets: dict[int, dict[int | None, dict[str, Any]]] = defaultdict(dict)
    with _without_jit():
        rows: list[dict[str, Any]] = list(counts)  # type: ignore[arg-type]  # annotate(**…) hides the names
    for row in rows:
        bucket = buckets[row["reviewer_id"]].setdefault(row["system_id"], _count_bucket())
        key = "shown" if row["ai_shown"] else "hidden"
        bucket[key] += row["compared"]
        bucket[f"{key}_agree"] += row["agree"]
        if row["ai_shown"]:
            bucket["approvals"] += row["approvals"]
            bucket["decisions_shown"] += row["n"]
            bucket["below_floor"] += row.get("below_floor", 0)
    return dict(buckets)


def _median_times_shown(
    decisions: QuerySet[Decision], *, per_system: bool,
) -> tuple[dict[int, float], dict[tuple[int, int | None], float]]:
    """Median ``time_spent_ms`` of the AI-shown ``decisions`` per reviewer and, with ``per_system``, per system too.

    ``percentile_cont`` on PostgreSQL (linear interpolation: the mean of the two middle
    values, as ``_median``), one streamed read elsewhere.
    """
    shown = decisions.filter(ai_shown=True)
    medians: dict[int, float] = {}
    system_medians: dict[tuple[int, int | None], float] = {}
    if connection.vendor == "postgresql":
        sql, params = shown.values("reviewer_id", "system_id", "time_spent_ms").order_by().query.sql_with_params()
        if per_system:
            # Both groupings from one sort: (reviewer, system) rolls up into (reviewer).
            keys = "d.system_id, GROUPING(d.system_id)"
            group = "GROUPING SETS ((d.reviewer_id, d.system_id), (d.reviewer_id))"
        else:
            keys, group = "NULL, 1", "d.reviewer_id"
        with _without_jit(), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT d.reviewer_id, {keys}, percentile_cont(0.5) WITHIN GROUP (ORDER BY d.time_spent_ms) "
                f"FROM ({sql}) AS d GROUP BY {group}", params,
            )
            for reviewer, system_id, all_systems, median in cursor.fetchall():
                if median is None:
                    continue
                if all_systems:
                    medians[reviewer] = float(median)
                else:
                    system_medians[(reviewer, system_id)] = float(median)
        return medians, system_medians
    times: dict[int, list[int]] = defaultdict(list)
    system_times: dict[tuple[int, int | None], list[int]] = defaultdict(list)
    rows = shown.values_list("reviewer_id", "system_id", "time_spent_ms").order_by()
    for reviewer, system_id, spent in rows.iterator(chunk_size=20000):
        times[reviewer].append(spent)
        if per_system:
            system_times[(reviewer, system_id)].append(spent)
    medians = {reviewer: median for reviewer, values in times.items() if (median := _median(values)) is not None}
    system_medians = {key: median for key, values in system_times.items() if (median := _median(values)) is not None}
    return medians, system_medians


def reviewer_profiles() -> QuerySet[ReviewerProfile]:
    return ReviewerProfile.objects.select_related("user").order_by("user__username")


def active_reviewers_for(system_ids: Iterable[int]) -> QuerySet[User]:
    """Active reviewers qualified for every one of the systems (calibration candidates)."""
    users = User.objects.filter(reviewer_profile__status=ReviewerStatus.ACTIVE, is_active=True)
    for system_id in set(system_ids):
        users = users.filter(reviewer_profile__qualifications__id=system_id)
    return users.distinct().order_by("username")


# --- Gold items and calibration ------------------------------------------------------------------------


def gold_items(*, system: str | None = None) -> QuerySet[GoldItem]:
    items = GoldItem.objects.select_related("case__system", "case__intervention_point", "created_by").annotate(
        served=Count("servings", distinct=True)
    )
    if system:
        items = items.filter(case__system__slug=system)
    return items.order_by("-id")


def gold_item_representation(item: GoldItem) -> dict[str, Any]:
    """A gold item as officers see it (never shown to reviewers)."""
    case = item.case
    return {
        "id": item.pk,
        "case": case.pk,
        "system": case.system.slug,
        "intervention_point": case.intervention_point.slug,
        "external_id": case.external_id,
        "input": case.input,
        "prediction": None if case.prediction_label is None else {
            "label": case.prediction_label, "confidence": case.prediction_confidence,
            "model_version": case.model_version,
        },
        "gold_label": case.gold_label,
        "routing": {"routed": case.routed, "reasons": list(case.routing_reasons), "rules_version": case.rules_version},
        "active": item.active,
        "source": item.source,
        "note": item.note,
        "created_at": item.created_at,
        "served": getattr(item, "served", None),
    }


def calibration_sessions() -> QuerySet[CalibrationSession]:
    return CalibrationSession.objects.select_related("created_by").annotate(
        n_items=Count("items", distinct=True), n_reviewers=Count("reviewers", distinct=True)
    ).order_by("-created_at", "-id")


def calibration_results(session: CalibrationSession) -> dict[str, Any]:
    """A session's results: agreement statistics, accuracy per reviewer, the most disputed items.

    Each (item, reviewer) has one copy; its first-round decision is the rating
    (an escalation or a copy not answered yet is missing).
    """
    servings = list(
        GoldServing.objects.filter(session=session)
        .select_related("reviewer", "item__case")
        .order_by("item_id", "reviewer__username")
    )
    answers = {
        (case_id, reviewer_id): _verdict(label, outcome)
        for case_id, reviewer_id, label, outcome in Decision.objects.filter(
            case_id__in=[s.case_id for s in servings], round=1, is_adjudication=False
        ).values_list("case_id", "reviewer_id", "label", "outcome")
    }
    answered_cases = {case_id for case_id, _ in answers}
    units: dict[int, dict[str, Any]] = defaultdict(dict)
    gold: dict[int, str | None] = {}
    per_reviewer: dict[str, dict[str, int]] = defaultdict(lambda: {"assigned": 0, "answered": 0, "correct": 0})
    for serving in servings:
        username = serving.reviewer.username
        label = answers.get((serving.case_id, serving.reviewer_id))
        units[serving.item_id][username] = label
        gold[serving.item_id] = serving.item.case.gold_label
        figures = per_reviewer[username]
        figures["assigned"] += 1
        if serving.case_id in answered_cases:
            figures["answered"] += 1
            figures["correct"] += label is not None and label == gold[serving.item_id]
    summary = agreement_summary(units.values())
    items: list[dict[str, Any]] = []
    for item_id, unit in units.items():
        labels = [label for label in unit.values() if label is not None]
        counts = Counter(labels)
        modal = counts.most_common(1)[0][1] if counts else 0
        items.append({
            "item": item_id,
            "gold_label": gold[item_id],
            "answers": len(labels),
            "labels": dict(sorted(counts.items())),
            # Share of answers that differ from the most common one: 0 = unanimous.
            "disagreement": 1 - modal / len(labels) if labels else None,
            "accuracy": sum(1 for label in labels if label == gold[item_id]) / len(labels) if labels else None,
        })
    items.sort(key=lambda row: (-(row["disagreement"] or 0), -(1 - (row["accuracy"] or 0)), row["item"]))
    reviewers = [
        {"reviewer": username, **figures,
         "accuracy": figures["correct"] / figures["answered"] if figures["answered"] else None}
        for username, figures in sorted(per_reviewer.items())
    ]
    return {
        "id": session.pk,
        "name": session.name,
        "description": session.description,
        "status": session.status,
        "created_at": session.created_at,
        "items": len(units),
        "reviewers": reviewers,
        "complete": all(r["answered"] == r["assigned"] for r in reviewers) if reviewers else False,
        "agreement": summary,
        "most_disagreement": [row for row in items if row["disagreement"]][:MAX_DISAGREEMENT_ITEMS],
        "per_item": sorted(items, key=lambda row: row["item"]),
    }


# --- Threshold recommendations -----------------------------------------------------------------------


def _threshold(step: int) -> float:
    return round(step / GRID_STEPS, 2)


def grid_step(confidence: float) -> int:
    """The largest k in 0..100 with k/100 ≤ confidence: the thresholds at or below which it is auto-accepted.

    ``confidence * 100`` may round across an integer (0.29 * 100 = 28.999…), so the
    first guess is corrected with the same comparison the routing rule makes.
    """
    step = math.floor(confidence * GRID_STEPS)
    if step + 1 <= GRID_STEPS and (step + 1) / GRID_STEPS <= confidence:
        step += 1
    elif step / GRID_STEPS > confidence:
        step -= 1
    return min(GRID_STEPS, max(0, step))


def _exact_step(rough: Any) -> Any:
    """``grid_step`` in SQL, from ``rough = FLOOR(confidence * 100)`` (IEEE division, as in Python)."""
    confidence = Cast(F("prediction_confidence"), FloatField())
    step = Value(float(GRID_STEPS))
    return DbCase(
        When(GreaterThanOrEqual(confidence, (rough + Value(1.0)) / step), then=rough + Value(1.0)),
        When(LessThan(confidence, rough / step), then=rough - Value(1.0)),
        default=rough,
        output_field=FloatField(),
    )


def threshold_curve(*, point: InterventionPoint, target_error: float | None = None) -> dict[str, Any]:
    """Review volume vs error of auto-accepted cases over confidence thresholds 0.00..1.00.

    Ground truth: the point's non-gold cases with a prediction, a confidence and a
    reported ``true_label``. At threshold t the confidence rule routes cases with
    confidence < t (other rules ignored: this is the confidence rule's own effect);
    ``review_rate`` is their share, ``error_rate`` the share of wrong AI labels among
    the rest (the auto-accepted ones; ``None`` when none is left). The
    recommendation is the lowest threshold (least review) whose error is at most
    the target. One aggregate query (101 buckets at most).
    """
    target = config.threshold_target_error() if target_error is None else target_error
    rows = (
        Case.objects.filter(
            intervention_point_id=point.pk, is_gold=False, true_label__isnull=False,
            prediction_label__isnull=False, prediction_confidence__isnull=False,
        )
        .annotate(rough=Floor(Cast(F("prediction_confidence"), FloatField()) * Value(float(GRID_STEPS))))
        .annotate(bucket=_exact_step(F("rough")))
        .values("bucket")
        # Counting true_label (never null here), not the id: case_ground_truth_idx holds every column
        # read here but the id, so PostgreSQL answers from the index alone.
        .annotate(n=Count("true_label"), wrong=Count("true_label", filter=~Q(prediction_label=F("true_label"))))
        .order_by()
    )
    counts = [0] * (GRID_STEPS + 1)
    wrong = [0] * (GRID_STEPS + 1)
    for row in rows:
        index = min(GRID_STEPS, max(0, int(row["bucket"])))
        counts[index] += row["n"]
        wrong[index] += row["wrong"]
    total = sum(counts)
    minimum = config.threshold_min_ground_truth()
    curve = []
    routed = 0
    auto = total
    auto_wrong = sum(wrong)
    for step in range(GRID_STEPS + 1):
        # At threshold step/100, buckets below step are routed.
        if step > 0:
            routed += counts[step - 1]
            auto -= counts[step - 1]
            auto_wrong -= wrong[step - 1]
        curve.append({
            "threshold": _threshold(step),
            "review_rate": routed / total if total else None,
            "error_rate": auto_wrong / auto if auto else None,
            "auto_accepted": auto,
        })
    enough = total >= minimum
    recommended = None
    if enough:
        recommended = next(
            (row for row in curve if row["error_rate"] is not None and row["error_rate"] <= target), None
        )
    current = point.confidence_below
    current_row = curve[grid_step(current)] if current is not None else None
    return {
        "system": point.system.slug,
        "intervention_point": point.slug,
        "ground_truth_cases": total,
        "min_ground_truth": minimum,
        "enough_ground_truth": enough,
        "target_error": target,
        "current_threshold": current,
        "current": current_row,
        "recommended_threshold": recommended["threshold"] if recommended else None,
        "recommended": recommended,
        "curve": curve,
    }


def threshold_candidates() -> list[dict[str, Any]]:
    """Every intervention point with how much ground truth it has (the thresholds page's index)."""
    counts = dict(
        Case.objects.filter(is_gold=False, true_label__isnull=False, prediction_confidence__isnull=False,
                            prediction_label__isnull=False)
        .values_list("intervention_point_id")
        .annotate(n=Count("*"))  # index-only on case_ground_truth_idx, which does not hold the id
        .order_by()
    )
    minimum = config.threshold_min_ground_truth()
    return [
        {"point": point, "ground_truth_cases": counts.get(point.pk, 0),
         "enough": counts.get(point.pk, 0) >= minimum}
        for point in InterventionPoint.objects.select_related("system").order_by("system__slug", "slug")
    ]
