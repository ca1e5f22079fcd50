"""THE KPI module: every KPI figure of the API, the dashboard, the CSV export and the dossier.

Scope (api-v1 "KPI scope"): cases by received time in ``[start, end)``,
optionally of one system; gold items never count in case KPIs (they count in
the reviewer table); the definitions are in ``dashboard.figures``.

Where the figures come from: full UTC days up to the rollup's ``built_through``
are read from the rollup tables; everything else in the period (days after it,
partial days at the edges of a non-midnight period) is aggregated from the
cases by the very code that builds the rollup (``dashboard.aggregation``), so a
period never mixes definitions. Days changed since the last refresh (at most a
minute, with beat running) may lag by that long. Queue depth, the oldest waiting
case and open bias incidents are live.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count, Max, Min, Model, Q, QuerySet, Sum, TextField
from django.db.models.functions import Cast, TruncDate
from django.utils import timezone

from dashboard.aggregation import UTC, aggregate, utc_day
from dashboard.blocks import ALL_SYSTEMS_SPANS, decompose
from dashboard.figures import CaseFigures, ReviewerFigures, case_kpis, reviewer_row
from dashboard.figures import seconds_of as _seconds
from dashboard.kinds import kind_kpis
from dashboard.models import (
    DailyRollup,
    DailyTtrPercentiles,
    ReviewerDailyRollup,
    ReviewerPairRollup,
    ReviewerTimeBlock,
    ReviewerTimeBucket,
    RollupState,
    RollupTtrBlock,
    RollupTtrBucket,
)
from dashboard.services import STATE_KEY
from dashboard.targets import target_status, targets_for
from hitl_portal.days import day_start
from hitl_portal.sql import column_of
from incidents.models import Incident, IncidentKind, IncidentStatus
from quality import stats
from reviews.models import OPEN_STATUSES, AISystem, Case, InterventionPoint

ONE_DAY = dt.timedelta(days=1)
# A period whose end is this close to the present (or later) "ends now" (the rollup's own freshness).
ENDS_NOW_TOLERANCE = dt.timedelta(minutes=1)
# The JSON label maps of a DailyRollup row, in the order _add_rollup_days reads them.
JSON_MAPS = ("resolutions", "reviewed_labels", "truth_labels", "decided_after", "agreement_pairs")
COUNT_COLUMNS = len(CaseFigures.COUNTS)
# The fields CaseFigures.from_row reads (one DailyRollup row, its maps decoded).
CASE_FIELDS = ("day", *CaseFigures.COUNTS, "resolutions", "reviewed_labels", "truth_labels", "ttr_min_ms",
               "ttr_max_ms", "decided_after", "agreement_pairs")


@dataclass(frozen=True)
class KpiScope:
    """A KPI period ``[start, end)`` (aware datetimes), for one system or all."""

    start: dt.datetime
    end: dt.datetime
    system: AISystem | None = None

    @property
    def system_id(self) -> int | None:
        return self.system.pk if self.system is not None else None

    @property
    def days(self) -> list[dt.date]:
        """The UTC days the period touches (the first and last may be partial)."""
        first, last = utc_day(self.start), utc_day(self.end - dt.timedelta(microseconds=1))
        return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def last_days_scope(days: int, *, system: AISystem | None = None, now: dt.datetime | None = None) -> KpiScope:
    """The last ``days`` whole UTC days, today included: ``[today − (days − 1), tomorrow)``."""
    today = utc_day(now or timezone.now())
    return KpiScope(start=day_start(today - dt.timedelta(days=days - 1)), end=day_start(today + ONE_DAY),
                    system=system)


@dataclass
class PeriodFigures:
    """A period's additive figures: per day, in total, and per reviewer."""

    days: dict[dt.date, CaseFigures]
    total: CaseFigures
    reviewers: dict[int, ReviewerFigures]
    # p50/p90 (ms) of the rollup's days, precomputed by the refresh (their histograms are only summed
    # over the whole period, into ``total``); live days carry their histogram in ``days``.
    day_percentiles: dict[dt.date, tuple[float | None, float | None]] = field(default_factory=dict)
    rollup_days: int = 0
    live_ranges: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    built_through: dt.date | None = None
    rollup_run_at: dt.datetime | None = None


def rollup_state() -> Mapping[str, Any] | None:
    return (
        RollupState.objects.filter(key=STATE_KEY)
        .values("built_through", "last_run_at", "last_run_ms", "watermark")
        .first()
    )


def period_figures(scope: KpiScope, *, with_reviewers: bool = True) -> PeriodFigures:
    """Aggregate the period from the rollup (covered whole days) and from the cases (the rest).

    ``with_reviewers=False`` skips what only the reviewer table needs (their
    counts and time histograms); the reviewers' agreement pairs, which decide
    between Cohen's and Fleiss' κ, are always read.
    """
    state = rollup_state()
    built_through = state["built_through"] if state else None
    days = {day: CaseFigures() for day in scope.days}
    reviewers: dict[int, ReviewerFigures] = {}
    # Whole days inside the period that the rollup covers: a contiguous block [first, last].
    first = utc_day(scope.start) if day_start(utc_day(scope.start)) == scope.start else utc_day(scope.start) + ONE_DAY
    end = scope.end
    if end >= timezone.now() - ENDS_NOW_TOLERANCE:
        # A period that ends now: no case is received in the future, so the rest of today
        # adds nothing and today's rollup row stands for [midnight, end) (as fresh as the rollup).
        end = day_start(utc_day(end - dt.timedelta(microseconds=1)) + ONE_DAY)
    last = min(utc_day(end) - ONE_DAY, built_through) if built_through is not None else first - ONE_DAY
    live: list[tuple[dt.datetime, dt.datetime]] = []
    rollup_days = 0
    rollup_hist: dict[int, list[float]] = {}
    day_percentiles: dict[dt.date, tuple[float | None, float | None]] = {}
    if first <= last:
        rollup_days = (last - first).days + 1
        rollup_hist, day_percentiles = _read_rollup(scope, first, last, days, reviewers,
                                                    with_reviewers=with_reviewers)
        live = [(scope.start, day_start(first)), (day_start(last + ONE_DAY), scope.end)]
    else:
        live = [(scope.start, scope.end)]
    live = [(a, b) for a, b in live if a < b]
    for start, end in live:
        result = aggregate(start, end, system_id=scope.system_id)
        for (day, _system, _point), figures in result.cases.items():
            days[day].merge(figures)
        for (_day, _system, reviewer_id), reviewer_figures in result.reviewers.items():
            reviewers.setdefault(reviewer_id, ReviewerFigures()).merge(reviewer_figures)
    total = CaseFigures()
    for figures in days.values():
        total.merge(figures)
    stats.histogram_merge(total.ttr_hist, rollup_hist)
    return PeriodFigures(
        days=days, total=total, reviewers=reviewers, day_percentiles=day_percentiles, rollup_days=rollup_days,
        live_ranges=live,
        built_through=built_through, rollup_run_at=state["last_run_at"] if state else None,
    )


def _read_rollup(
    scope: KpiScope, first: dt.date, last: dt.date, days: dict[dt.date, CaseFigures],
    reviewers: dict[int, ReviewerFigures], *, with_reviewers: bool,
) -> tuple[dict[int, list[float]], dict[dt.date, tuple[float | None, float | None]]]:
    """Add the rollup's figures of the whole days ``first``..``last``; the database sums the child rows.

    Returns the period's time-to-resolution histogram (summed over the days by
    the database) and the days' precomputed p50/p90.
    """

    def rows(model: type[Model]) -> QuerySet[Any]:
        queryset = model._default_manager.filter(day__gte=first, day__lte=last)  # == objects for these models
        if scope.system_id is not None:
            queryset = queryset.filter(system_id=scope.system_id)
        return queryset.order_by()

    _add_rollup_days(rows(DailyRollup), days)
    def reviewer(reviewer_id: int) -> ReviewerFigures:
        # Not ``setdefault(id, ReviewerFigures())``: that built a throw-away dataclass with two
        # Counters for each of the ~3,000 histogram rows of a 90-day read.
        figures = reviewers.get(reviewer_id)
        if figures is None:
            figures = reviewers[reviewer_id] = ReviewerFigures()
        return figures

    hist: dict[int, list[float]] = {}
    for bucket, n, total in _histogram_sums(RollupTtrBucket, RollupTtrBlock, ("bucket",), first, last,
                                            scope.system_id):
        hist[bucket] = [n, total]
    percentiles = DailyTtrPercentiles.objects.filter(day__gte=first, day__lte=last, system_id=scope.system_id)
    day_percentiles = {day: (p50, p90) for day, p50, p90 in percentiles.values_list("day", "p50_ms", "p90_ms")}
    pairs = rows(ReviewerPairRollup).values("reviewer_id", "own_label", "other_label", "unit_size")
    for reviewer_id, own, other, size, n in _plain_rows(pairs.annotate(n=Sum("count")).values_list(
        "reviewer_id", "own_label", "other_label", "unit_size", "n"
    )):
        reviewer(reviewer_id).pairs[(own, other, size)] += int(n)
    if not with_reviewers:
        return hist, day_percentiles
    sums = {f"sum_{name}": Sum(name) for name in ReviewerFigures.COUNTS}
    for row in rows(ReviewerDailyRollup).values("reviewer_id").annotate(
        **sums, low=Min("time_min_ms"), high=Max("time_max_ms")
    ):
        counts: dict[str, Any] = {name: int(row[f"sum_{name}"]) for name in ReviewerFigures.COUNTS}
        reviewer(row["reviewer_id"]).merge(ReviewerFigures(**counts, time_min_ms=row["low"], time_max_ms=row["high"]))
    hists: dict[int, dict[int, list[float]]] = {}
    for reviewer_id, bucket, n, total in _histogram_sums(ReviewerTimeBucket, ReviewerTimeBlock, ("reviewer", "bucket"),
                                                         first, last, scope.system_id):
        # One row per reviewer and bucket (summed by the database), ~3,300 over 90 days.
        time_hist = hists.get(reviewer_id)
        if time_hist is None:
            time_hist = hists[reviewer_id] = reviewer(reviewer_id).time_hist
        slot = time_hist.get(bucket)
        if slot is None:
            time_hist[bucket] = [n, total]
        else:
            slot[0] += n
            slot[1] += total
    return hist, day_percentiles


def _plain_rows(queryset: QuerySet[Any]) -> list[tuple[Any, ...]]:
    """The rows of a ``values_list`` of integers and text, fetched without the ORM's per-row converters.

    The rollup's summed histograms are thousands of rows of plain numbers (3,276 for the
    reviewers' time buckets over 90 days); Django's converter pass cost more than the
    loop that files them. Only for columns that need no conversion on any backend
    (no dates, no JSON, no decimals expected back as such).
    """
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _histogram_sums(
    day_model: type[Model], block_model: type[Model], keys: tuple[str, ...], first: dt.date, last: dt.date,
    system_id: int | None,
) -> list[tuple[Any, ...]]:
    """A histogram of the days ``first``..``last`` summed per ``keys``: ``(*keys, count, total_ms)`` rows (integers).

    The period is read as pre-summed blocks (``dashboard.blocks``): for one system its
    blocks plus the loose edge days' rows, for all systems the all-systems blocks
    alone (single days included). The same sums as adding every day's rows, from a
    quarter (one system) to a tenth or less (all) of the rows at 90 days. ``keys`` are
    fields of both models (the last one the bucket).
    """
    if system_id is None:
        loose, blocks = decompose(first, last, ALL_SYSTEMS_SPANS)  # no loose days: single days are blocks
        system_condition, system_params = "IS NULL", []
    else:
        loose, blocks = decompose(first, last)
        system_condition, system_params = "= %s", [system_id]
    parts: list[str] = []
    params: list[Any] = []
    starts: dict[int, list[dt.date]] = {}
    for span, start in blocks:
        starts.setdefault(span, []).append(start)
    for model, condition, condition_params in (
        (day_model, f"{_col(day_model, 'day')} IN ({', '.join(['%s'] * len(loose))})", loose),
        (block_model, " OR ".join(
            f"({_col(block_model, 'span')} = %s AND {_col(block_model, 'start')} IN ({', '.join(['%s'] * len(days))}))"
            for days in starts.values()
        ), [value for span, days in starts.items() for value in (span, *days)]),
    ):
        if not condition_params:
            continue
        columns = ", ".join(f"{_col(model, name)} AS k{i}" for i, name in enumerate((*keys, "count", "total_ms")))
        parts.append(f"SELECT {columns} FROM {_table(model)} WHERE ({condition}) "
                     f"AND {_col(model, 'system')} {system_condition}")
        params += [*condition_params, *system_params]
    if not parts:
        return []
    names = ", ".join(f"k{i}" for i in range(len(keys)))
    # Cast back to integers: PostgreSQL sums a bigint as numeric, which comes back as Decimal (slow to
    # convert, and not what the histograms hold). The sums stay far below 2^63.
    sql = (f"SELECT {names}, CAST(SUM(k{len(keys)}) AS BIGINT), CAST(SUM(k{len(keys) + 1}) AS BIGINT) "
           f"FROM ({' UNION ALL '.join(parts)}) AS parts GROUP BY {names}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _col(model: type[Model], name: str) -> str:
    return connection.ops.quote_name(column_of(model, name))


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _rollup_filter(system_id: int | None) -> tuple[str, list[Any]]:
    """The ``AND system_id = %s`` of a rollup statement (empty for all systems), and its parameter."""
    if system_id is None:
        return "", []
    return f" AND {connection.ops.quote_name(column_of(DailyRollup, 'system'))} = %s", [system_id]


def _add_rollup_days(queryset: QuerySet[DailyRollup], days: dict[dt.date, CaseFigures]) -> None:
    """Add the rollup rows of ``queryset`` (one a day and point) into ``days``.

    What ``CaseFigures.from_row`` of each row merged into its day gives, read cheaply:
    a 90-day read is ~360 rows of five JSON maps each, and decoding them through the
    JSONField (Django's converter pass, ``json``) and building a ``CaseFigures`` of
    Counters per row only to merge it away was most of the dashboard's CPU
    (docs/PERFORMANCE.md). The maps come as text and ``orjson`` decodes them; their
    entries go straight into the day's Counters. (Unnesting and summing the maps in
    PostgreSQL instead was tried: ~35 ms of database time for 4,700 rows, against
    2 ms to send the text.)
    """
    texts = {f"{name}_text": Cast(name, output_field=TextField()) for name in JSON_MAPS}
    columns = ("day", *CaseFigures.COUNTS, "ttr_min_ms", "ttr_max_ms", *texts)
    # The entries are added up in plain dicts (one per day and map) and handed to the day's
    # Counters at the end: ``d[k] = d.get(k, 0) + n`` on a dict is about twice as fast as
    # ``counter[k] += n`` (no Counter.__missing__ frame per new key, no subclass lookups), and
    # ``Counter.update`` of a dict into an empty Counter is one C-level dict update. ~6,800
    # entries a 90-day read. The map rows have fixed shapes (``CaseFigures.to_row``).
    sums: dict[dt.date, tuple[dict[Any, int], ...]] = {}
    for day, *values in queryset.annotate(**texts).values_list(*columns):
        figures = days[day]
        counts, (low, high), maps = values[:COUNT_COLUMNS], values[COUNT_COLUMNS:COUNT_COLUMNS + 2], values[-5:]
        for name, n in zip(CaseFigures.COUNTS, counts, strict=True):
            setattr(figures, name, getattr(figures, name) + n)
        if low is not None and (figures.ttr_min_ms is None or low < figures.ttr_min_ms):
            figures.ttr_min_ms = low
        if high is not None and (figures.ttr_max_ms is None or high > figures.ttr_max_ms):
            figures.ttr_max_ms = high
        day_sums = sums.get(day)
        if day_sums is None:
            day_sums = sums[day] = ({}, {}, {}, {}, {})
        resolution_sums, reviewed_sums, truth_sums, decided_sums, pair_sums = day_sums
        resolutions, reviewed_labels, truth_labels, decided_after, agreement_pairs = map(orjson.loads, maps)
        for key, n in resolutions.items():
            resolution_sums[key] = resolution_sums.get(key, 0) + n
        for ai, final, n in reviewed_labels:
            reviewed_sums[ai, final] = reviewed_sums.get((ai, final), 0) + n
        for ai, final, true, n in truth_labels:
            truth_sums[ai, final, true] = truth_sums.get((ai, final, true), 0) + n
        for offset, n in decided_after.items():
            decided_sums[int(offset)] = decided_sums.get(int(offset), 0) + n
        for label_a, label_b, size, n in agreement_pairs:
            pair_sums[label_a, label_b, size] = pair_sums.get((label_a, label_b, size), 0) + n
    for day, (resolution_sums, reviewed_sums, truth_sums, decided_sums, pair_sums) in sums.items():
        figures = days[day]
        figures.resolutions.update(resolution_sums)
        figures.reviewed_labels.update(reviewed_sums)
        figures.truth_labels.update(truth_sums)
        figures.decided_after.update(decided_sums)
        figures.agreement_pairs.update(pair_sums)


# --- Live figures -------------------------------------------------------------------------------------


def queue_snapshot(system: AISystem | None = None, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Open (queued, claimed, escalated) non-gold cases now, and the oldest of them."""
    cases = Case.objects.filter(status__in=OPEN_STATUSES, is_gold=False)
    if system is not None:
        cases = cases.filter(system=system)
    figures = cases.aggregate(depth=Count("id"), oldest=Min("received_at"))
    oldest = figures["oldest"]
    now = now or timezone.now()
    return {
        "queue_depth": figures["depth"],
        "oldest_waiting_received_at": oldest,
        "oldest_waiting_age_s": round((now - oldest).total_seconds(), 1) if oldest else None,
    }


def bias_incidents_open(system: AISystem | None = None) -> int:
    """Bias incidents not closed (live)."""
    incidents = Incident.objects.filter(kind=IncidentKind.BIAS).exclude(status=IncidentStatus.CLOSED)
    if system is not None:
        incidents = incidents.filter(system=system)
    return incidents.count()


# --- The KPIs -----------------------------------------------------------------------------------------


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def kpis(scope: KpiScope, *, figures: PeriodFigures | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """The api-v1 ``GET /api/v1/kpis/`` body: contract fields first, then extras (documented in the schema)."""
    figures = figures or period_figures(scope, with_reviewers=False)
    values = case_kpis(figures.total, {reviewer: f.pairs for reviewer, f in figures.reviewers.items()})
    queue = queue_snapshot(scope.system, now=now)
    agreement = values["agreement"]
    return {
        "cases_total": values["cases_total"],
        "auto_accepted": values["auto_accepted"],
        "reviewed": values["reviewed"],
        "automation_rate": values["automation_rate"],
        "override_rate": values["override_rate"],
        "accuracy_ai": values["accuracy_ai"],
        "accuracy_final": values["accuracy_final"],
        "accuracy_lift": values["accuracy_lift"],
        "error_reduction_rate": values["error_reduction_rate"],
        "agreement": {
            "percent": agreement["percent"],
            "kappa": agreement["kappa"],
            "alpha": agreement["alpha"],
            "statistic": agreement["statistic"],
            "units": agreement["units"],
            "pairs": agreement["pairs"],
        },
        "time_to_resolution_s": values["time_to_resolution_s"],
        "sla_breaches": values["sla_breaches"],
        "queue_depth": queue["queue_depth"],
        "bias_incidents_open": bias_incidents_open(scope.system),
        # Extras.
        "system": scope.system.slug if scope.system is not None else None,
        "from": _iso(scope.start),
        "to": _iso(scope.end),
        "routed": values["routed"],
        "review_rate": values["review_rate"],
        "overridden": values["overridden"],
        "evaluated": values["evaluated"],
        "sla_breach_rate": values["sla_breach_rate"],
        "oldest_waiting_received_at": _iso(queue["oldest_waiting_received_at"]),
        "oldest_waiting_age_s": queue["oldest_waiting_age_s"],
        # Generation and action points (issue 14), one row per point.
        "by_kind": kind_kpis(scope),
    }


def _carry_into(scope: KpiScope, built_through: dt.date | None) -> tuple[int, Counter[dt.date]]:
    """Routed (non-gold) cases received before the period and still open on its first day, by the day they closed.

    Returns ``(open at the start of the first day, {day closed: n})`` with
    closing days on or after the period's first day (still-open cases count in
    the first number only). Rollup rows answer for the whole days they cover;
    the cases themselves for the rest (up to the period's start).
    """
    first_day = utc_day(scope.start)
    opened = 0
    closes: Counter[dt.date] = Counter()
    live_from: dt.datetime | None = None  # cases received from here to the start are read live
    if built_through is not None:
        covered_until = min(first_day, built_through + ONE_DAY)
        live_from = day_start(covered_until)
        for closed, n in _rollup_routed_and_closed(covered_until, scope.system_id):
            if closed is None:
                opened += n  # routed on the covered days
            elif closed < first_day:
                opened -= n  # decided before the period: not open on its first day
            else:
                closes[closed] += n
    if live_from is None or live_from < scope.start:
        cases = Case.objects.filter(routed=True, is_gold=False, received_at__lt=scope.start).filter(
            Q(decided_at__isnull=True) | Q(decided_at__gte=day_start(first_day))
        )
        if live_from is not None:
            cases = cases.filter(received_at__gte=live_from)
        if scope.system_id is not None:
            cases = cases.filter(system_id=scope.system_id)
        groups = cases.annotate(closed=TruncDate("decided_at", tzinfo=UTC)).order_by().values("closed")
        for group in groups.annotate(n=Count("id")):
            opened += group["n"]
            if group["closed"] is not None:
                closes[group["closed"]] += group["n"]
    return opened, closes


def _routed_and_closed_decoded(rows: QuerySet[DailyRollup]) -> list[tuple[dt.date | None, int]]:
    """``_rollup_routed_and_closed`` in Python: each row's ``decided_after`` map decoded and added up."""
    routed = 0
    closed: Counter[dt.date] = Counter()
    for day, day_routed, decided_after in rows.values_list("day", "routed", "decided_after"):
        routed += day_routed
        for offset, n in decided_after.items():
            closed[day + dt.timedelta(days=int(offset))] += n
    return [(None, routed), *sorted(closed.items())]


def _rollup_routed_and_closed(before: dt.date, system_id: int | None) -> list[tuple[dt.date | None, int]]:
    """The rollup's days before ``before``: ``(None, routed)``, then ``(day closed, n)`` of those decided.

    Every day of the data before the period (all 90 days before a 90-day period at
    1 M cases, 275 at 10 M), so on PostgreSQL the database adds the ``decided_after``
    maps up per closing day instead of Python decoding one JSON map per day and point.
    """
    rows = DailyRollup.objects.filter(day__lt=before)
    if system_id is not None:
        rows = rows.filter(system_id=system_id)
    if connection.vendor != "postgresql":
        return _routed_and_closed_decoded(rows)
    table = connection.ops.quote_name(DailyRollup._meta.db_table)
    system_sql, system_params = _rollup_filter(system_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH r AS (SELECT day, routed, decided_after FROM {table} WHERE day < %s{system_sql})
                SELECT NULL::date, COALESCE(SUM(routed), 0) FROM r
                UNION ALL
                SELECT day + m.key::int, SUM(m.value::int) FROM r, jsonb_each_text(r.decided_after) m
                 GROUP BY 1
                ORDER BY 1 NULLS FIRST""",
            [before, *system_params],
        )
        return [(closed_day, int(n)) for closed_day, n in cursor.fetchall()]


def kpi_series(scope: KpiScope, *, figures: PeriodFigures | None = None) -> list[dict[str, Any]]:
    """Per received day of the period: volumes, rates, accuracy, resolution times, agreement, queue depth.

    ``queue_depth`` is the number of routed cases open at the end of the day,
    reconstructed from when cases were received and decided (a case reopened
    later counts as open since it was received; gold items excluded).
    """
    figures = figures or period_figures(scope, with_reviewers=False)
    day_list = sorted(figures.days)
    if not day_list:
        return []
    opened, closes = _carry_into(scope, figures.built_through)
    for day, day_figures in figures.days.items():
        for offset, n in day_figures.decided_after.items():
            closes[day + dt.timedelta(days=offset)] += n
    depth = opened
    rows = []
    for day in day_list:
        values = case_kpis(figures.days[day])
        if day in figures.day_percentiles:
            p50, p90 = figures.day_percentiles[day]
            values["time_to_resolution_s"] = {"p50": _seconds(p50), "p90": _seconds(p90)}
        depth += figures.days[day].routed - closes.get(day, 0)
        rows.append({
            "day": day.isoformat(),
            "cases_total": values["cases_total"],
            "auto_accepted": values["auto_accepted"],
            "routed": values["routed"],
            "reviewed": values["reviewed"],
            "automation_rate": values["automation_rate"],
            "override_rate": values["override_rate"],
            "evaluated": values["evaluated"],
            "accuracy_ai": values["accuracy_ai"],
            "accuracy_final": values["accuracy_final"],
            "time_to_resolution_p50_s": values["time_to_resolution_s"]["p50"],
            "time_to_resolution_p90_s": values["time_to_resolution_s"]["p90"],
            "agreement_percent": values["agreement"]["percent"],
            "agreement_pairs": values["agreement"]["pairs"],
            "sla_breaches": values["sla_breaches"],
            "queue_depth": depth,
        })
    return rows


def reviewer_table(scope: KpiScope, *, figures: PeriodFigures | None = None) -> list[dict[str, Any]]:
    """Per reviewer who decided cases received in the period: volume, time, gold accuracy, agreement, bias gap."""
    figures = figures or period_figures(scope)
    names = dict(User.objects.filter(id__in=list(figures.reviewers)).values_list("id", "username"))
    rows = [
        {"reviewer": names.get(reviewer_id, f"#{reviewer_id}"), **reviewer_row(reviewer_figures)}
        for reviewer_id, reviewer_figures in figures.reviewers.items()
    ]
    rows.sort(key=lambda row: (-row["decisions"], row["reviewer"]))
    return rows


@dataclass
class Card:
    """One KPI card: the figure, its target and whether the target is met."""

    key: str
    value: float | int | None
    target: float | None
    status: str | None


def cards(values: dict[str, Any], targets: dict[str, float | None]) -> dict[str, Card]:
    """KPI values paired with their targets (keys of ``dashboard.targets.TARGETS``)."""
    flat = {
        "automation_rate": values["automation_rate"],
        "override_rate": values["override_rate"],
        "accuracy_final": values["accuracy_final"],
        "accuracy_lift": values["accuracy_lift"],
        "error_reduction_rate": values["error_reduction_rate"],
        "agreement_percent": values["agreement"]["percent"],
        "agreement_kappa": values["agreement"]["kappa"],
        "agreement_alpha": values["agreement"]["alpha"],
        "time_to_resolution_p50_s": values["time_to_resolution_s"]["p50"],
        "time_to_resolution_p90_s": values["time_to_resolution_s"]["p90"],
        "sla_breaches": values["sla_breaches"],
        "queue_depth": values["queue_depth"],
        "bias_incidents_open": values["bias_incidents_open"],
    }
    return {key: Card(key, value, targets.get(key), target_status(key, value, targets.get(key)))
            for key, value in flat.items()}


@dataclass
class DashboardData:
    """Everything the dashboard page and its CSV exports show, computed once."""

    scope: KpiScope
    kpis: dict[str, Any]
    series: list[dict[str, Any]]
    reviewers: list[dict[str, Any]]
    targets: dict[str, float | None]
    cards: dict[str, Card]
    figures: PeriodFigures


def dashboard_data(scope: KpiScope, *, now: dt.datetime | None = None) -> DashboardData:
    """KPIs, daily series and reviewer table of one scope, from one pass over its figures."""
    figures = period_figures(scope)
    values = kpis(scope, figures=figures, now=now)
    points = InterventionPoint.objects.all() if scope.system is None else InterventionPoint.objects.filter(
        system=scope.system)
    targets = targets_for(scope.system.kpi_targets if scope.system is not None else None,
                          sla_seconds=points.values_list("sla_seconds", flat=True))
    return DashboardData(
        scope=scope,
        kpis=values,
        series=kpi_series(scope, figures=figures),
        reviewers=reviewer_table(scope, figures=figures),
        targets=targets,
        cards=cards(values, targets),
        figures=figures,
    )
