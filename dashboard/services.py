"""Keep the KPI rollup current: recompute the received days whose cases changed.

``rollup_refresh`` runs every minute from beat (task ``dashboard.refresh_rollups``).
It finds the days touched since its last run from the history tables that every
case and decision write already produces (django-simple-history rows carry the
case's ``received_at``: new cases, decisions, SLA breaches, reopenings and late
ground truth all leave one), plus every day from the last built day through
today, and recomputes exactly those days. Recomputing a day replaces its rows,
so a run is idempotent and two overlapping runs cannot double-count; on
PostgreSQL an advisory lock makes a second concurrent run step aside.

The two histograms are also kept pre-summed over aligned blocks of days
(``dashboard.blocks``): every block holding a recomputed day is summed again
from the rows one level down, in the same transaction, so a block always holds
exactly the sums of its days' rows.

The rows are derived data, not records: no audit events (the cases and
decisions they summarise carry those), no history.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Min, Model
from django.db.models.functions import TruncDate
from django.utils import timezone

from dashboard.aggregation import UTC, aggregate, utc_day
from dashboard.blocks import ALL_SYSTEMS_SPANS, BLOCK_SPANS, block_start
from dashboard.figures import CaseFigures, ttr_percentiles_ms
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
from hitl_portal.days import day_runs, day_start
from hitl_portal.sql import column_of
from quality.selectors import agreement_rollup_built_through
from quality.services.agreement import agreement_days_drop_before, agreement_days_rebuild, agreement_rollup_analyze
from reviews.models import Case, Decision

# Changes committed late (a transaction that saved history rows before the last
# run started but committed after it read them) are caught by looking back this
# far. The portal's writing transactions are short (one request, or one chunk of
# a task); a change recomputed twice costs nothing but time, a change missed
# stays wrong until the nightly full rebuild (see docs/PERFORMANCE.md), so the
# margin is generous against seconds-long transactions yet keeps a day touched
# once from being recomputed by more than three one-minute runs.
OVERLAP = dt.timedelta(minutes=2)
# Days aggregated per round trip when many days are rebuilt (a full build).
CHUNK_DAYS = 7
ADVISORY_LOCK_KEY = 0x4B50_4931  # "KPI1"
STATE_KEY = "default"
BATCH = 2000
ROLLUP_MODELS: tuple[type[Model], ...] = (
    DailyRollup, RollupTtrBucket, DailyTtrPercentiles, ReviewerDailyRollup, ReviewerTimeBucket, ReviewerPairRollup,
)
# The pre-summed blocks: (block model, the day model it sums, the key fields besides the day and system).
BLOCK_SOURCES: tuple[tuple[type[Model], type[Model], tuple[str, ...]], ...] = (
    (RollupTtrBlock, RollupTtrBucket, ("bucket",)),  # intervention points merged: no reader splits them
    (ReviewerTimeBlock, ReviewerTimeBucket, ("reviewer", "bucket")),
)
# The two sets of blocks: (spans, one set of rows per system?) - per system, and all systems summed.
BLOCK_SETS: tuple[tuple[tuple[int, ...], bool], ...] = ((BLOCK_SPANS, True), (ALL_SYSTEMS_SPANS, False))
BLOCK_MODELS: tuple[type[Model], ...] = tuple(block for block, _day, _keys in BLOCK_SOURCES)


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh did."""

    skipped: bool
    full: bool
    days: int
    duration_ms: int
    built_through: dt.date | None


def _try_lock() -> bool:
    """Take the refresh lock for this transaction (PostgreSQL); SQLite serialises writers anyway."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def touched_days(since: dt.datetime) -> set[dt.date]:
    """Received days of the cases written (created, changed, deleted) or decided since ``since``."""
    historical_case = Case.history.model
    historical_decision = Decision.history.model
    days = set(
        historical_case.objects.filter(history_date__gte=since)
        .annotate(day=TruncDate("received_at", tzinfo=UTC))
        .order_by()
        .values_list("day", flat=True)
        .distinct()
    )
    decided_cases = (
        historical_decision.objects.filter(history_date__gte=since).order_by().values_list("case_id", flat=True)
    )
    days.update(
        Case.objects.filter(id__in=decided_cases)
        .annotate(day=TruncDate("received_at", tzinfo=UTC))
        .order_by()
        .values_list("day", flat=True)
        .distinct()
    )
    return days


def rollup_rebuild_days(days: Iterable[dt.date], *, now: dt.datetime | None = None) -> int:
    """Recompute the rollup rows of ``days`` (all systems), replacing what was there; returns the day count.

    Call inside a transaction (``rollup_refresh`` does), so readers see either
    the old rows or the new ones of a day, never a mix.
    """
    now = now or timezone.now()
    days = sorted(set(days))  # read twice: the days, then their blocks
    count = 0
    for first, last in day_runs(days, longest=CHUNK_DAYS):
        result = aggregate(day_start(first), day_start(last + dt.timedelta(days=1)))
        in_range = {"day__gte": first, "day__lte": last}
        for model in ROLLUP_MODELS:
            model._default_manager.filter(**in_range).delete()  # == objects: no rollup model has another manager
        cases = sorted(result.cases.items())
        reviewers = sorted(result.reviewers.items())
        _bulk(DailyRollup, (
            DailyRollup(day=day, system_id=system_id, intervention_point_id=point_id, computed_at=now,
                        **figures.to_row())
            for (day, system_id, point_id), figures in cases
        ))
        _bulk(RollupTtrBucket, (
            RollupTtrBucket(day=day, system_id=system_id, intervention_point_id=point_id, bucket=bucket,
                            count=int(n), total_ms=int(total))
            for (day, system_id, point_id), figures in cases
            for bucket, (n, total) in sorted(figures.ttr_hist.items())
        ))
        _bulk(DailyTtrPercentiles, _day_percentiles(cases))
        _bulk(ReviewerDailyRollup, (
            ReviewerDailyRollup(day=day, system_id=system_id, reviewer_id=reviewer_id, computed_at=now,
                                **figures.to_row())
            for (day, system_id, reviewer_id), figures in reviewers
        ))
        _bulk(ReviewerTimeBucket, (
            ReviewerTimeBucket(day=day, system_id=system_id, reviewer_id=reviewer_id, bucket=bucket,
                               count=int(n), total_ms=int(total))
            for (day, system_id, reviewer_id), figures in reviewers
            for bucket, (n, total) in sorted(figures.time_hist.items())
        ))
        _bulk(ReviewerPairRollup, (
            ReviewerPairRollup(day=day, system_id=system_id, reviewer_id=reviewer_id, own_label=own,
                               other_label=other, unit_size=size, count=n)
            for (day, system_id, reviewer_id), figures in reviewers
            for (own, other, size), n in sorted(figures.pairs.items())
        ))
        count += (last - first).days + 1
    rollup_rebuild_blocks(days)
    # The agreement rollup of the same days (quality.models.AgreementPairDay), in the same transaction.
    agreement_days_rebuild(days)
    return count


def rollup_rebuild_blocks(days: Iterable[dt.date]) -> None:
    """Sum again every block (``dashboard.blocks``) that holds one of ``days``, from the level below.

    Per system and for all systems together (``BLOCK_SETS``), level by level,
    smallest span first: a block of the first span is the sum of its days' rows,
    a larger one the sum of the blocks of the previous span it holds (fewer rows
    to add, the same sums). Days without rows simply add
    nothing, so a day whose cases all went away leaves its blocks right too.
    One ``INSERT … SELECT … GROUP BY`` per block: the database adds the rows,
    nothing comes back to Python. Call in the transaction that rewrote the days.
    """
    days = set(days)
    with connection.cursor() as cursor:
        for block_model, day_model, keys in BLOCK_SOURCES:
            for spans, per_system in BLOCK_SETS:
                for level, span in enumerate(spans):
                    starts = sorted({block_start(day, span) for day in days})
                    block_model._default_manager.filter(
                        span=span, start__in=starts, system__isnull=not per_system).delete()
                    sql, child = _block_sum_sql(block_model, day_model, keys, spans, level, per_system=per_system)
                    for start in starts:
                        cursor.execute(sql, [start, span, *child, start, start + dt.timedelta(days=span)])


def _block_sum_sql(
    block_model: type[Model], day_model: type[Model], keys: tuple[str, ...], spans: tuple[int, ...], level: int,
    *, per_system: bool,
) -> tuple[str, list[Any]]:
    """``INSERT … SELECT`` of one block of ``spans[level]`` from the level below, and the parameters for its source.

    Parameters in order: the block's start and span, the source's own (the child
    span, for a block of blocks), the first day and the day after the block.
    """
    child: list[Any] = []
    if level == 0:  # the day rows (per system; an all-systems block adds up the systems' rows)
        source = day_model
        where = f"{_col(source, 'day')} >= %s AND {_col(source, 'day')} < %s"
    else:  # the blocks of the span below, of the same set
        source, child = block_model, [spans[level - 1]]
        where = (f"{_col(source, 'system')} IS {'NOT ' if per_system else ''}NULL AND {_col(source, 'span')} = %s "
                 f"AND {_col(source, 'start')} >= %s AND {_col(source, 'start')} < %s")
    group_keys = ("system", *keys) if per_system else keys
    into = ", ".join(_col(block_model, name) for name in ("start", "span", "system", *keys, "count", "total_ms"))
    group = ", ".join(_col(source, key) for key in group_keys)
    system = "" if per_system else "NULL, "
    sql = (
        f"INSERT INTO {_table(block_model)} ({into}) "
        f"SELECT %s, %s, {system}{group}, SUM({_col(source, 'count')}), SUM({_col(source, 'total_ms')}) "
        f"FROM {_table(source)} WHERE {where} GROUP BY {group}"
    )
    return sql, child


def _col(model: type[Model], name: str) -> str:
    return connection.ops.quote_name(column_of(model, name))


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _day_percentiles(cases: list[tuple[tuple[dt.date, int, int], CaseFigures]]) -> Iterable[DailyTtrPercentiles]:
    """Per day: p50/p90 of each system's merged histogram and of all systems' (the chart cache)."""
    merged: dict[tuple[dt.date, int | None], CaseFigures] = {}
    for (day, system_id, _point_id), figures in cases:
        for key in ((day, system_id), (day, None)):
            merged.setdefault(key, CaseFigures()).merge(figures)
    for (day, system_or_all), figures in sorted(merged.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        p50, p90 = ttr_percentiles_ms(figures)
        if p50 is not None:
            yield DailyTtrPercentiles(day=day, system_id=system_or_all, p50_ms=p50, p90_ms=p90)


def _bulk(model: type[Model], rows: Iterable[Model]) -> None:
    """Insert in batches without holding every row of a long rebuild in memory at once."""
    batch: list[Model] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            model._default_manager.bulk_create(batch)
            batch = []
    if batch:
        model._default_manager.bulk_create(batch)


def _days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _analyze_rollup() -> None:
    """Fresh planner statistics for the rollup tables after a full build.

    A full build rewrites every row at once; until autovacuum gets to the tables the
    planner still estimates them empty, and read a 90-day range of a million-case
    rollup as a handful of rows (a sort spilled to disk: 350 ms instead of 60 ms for
    one dashboard statement at 10 M cases, docs/PERFORMANCE.md). ANALYZE samples a
    fixed number of rows, so this costs well under a second at any size.
    """
    if connection.vendor != "postgresql":
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(quote(model._meta.db_table) for model in (*ROLLUP_MODELS, *BLOCK_MODELS)))


def _first_day(today: dt.date) -> dt.date:
    """The received day of the first case (today when there is none): where a full build starts."""
    first = Case.objects.aggregate(first=Min("received_at"))["first"]
    return min(utc_day(first), today) if first else today


@transaction.atomic  # one transaction: the advisory lock is held throughout, readers see a day's old or new rows
def rollup_refresh(*, now: dt.datetime | None = None, full: bool = False) -> RefreshResult:
    """Bring the rollup up to date: every day up to today, touched days recomputed.

    ``full`` (or a first run) rebuilds every day from the first case received.
    Otherwise the days recomputed are those of cases changed since the last
    run's start (minus ``OVERLAP``) and every day from the last built day through
    today (today's figures keep growing; a new day starts at midnight UTC).

    The agreement rollup (``quality.services.agreement``) is rebuilt for the same
    days and built through the same day; the first run after it appears (the
    KPI rollup built, the agreement rollup never: ``built_through`` unknown)
    builds every agreement day, as a full build would.
    """
    started = now or timezone.now()
    clock = time.monotonic()
    if not _try_lock():
        return RefreshResult(skipped=True, full=full, days=0, duration_ms=0, built_through=None)
    state, _ = RollupState.objects.get_or_create(key=STATE_KEY)
    today = utc_day(started)
    agreement_built = agreement_rollup_built_through()
    if full or state.built_through is None or state.watermark is None:
        full = True
        first_day = _first_day(today)
        days = _days_between(first_day, today)
        # Days whose cases were all deleted keep no stale rows (blocks reaching into the first
        # day's are summed again with it).
        for model in ROLLUP_MODELS:
            model._default_manager.filter(day__lt=first_day).delete()
        for model in BLOCK_MODELS:
            model._default_manager.filter(start__lt=first_day).delete()
    else:
        changed = touched_days(state.watermark - OVERLAP)
        days = sorted({d for d in changed if d <= today} | set(_days_between(min(state.built_through, today), today)))
    # The agreement rollup: the same days, from its own last built day (normally the KPI rollup's:
    # both are recorded together), or every day when it was never built.
    agreement_full = full or agreement_built is None
    if agreement_full:
        agreement_from = first_day if full else _first_day(today)
        agreement_days_drop_before(agreement_from)
    else:
        assert agreement_built is not None  # not agreement_full
        agreement_from = min(agreement_built, today)
    rebuilt = rollup_rebuild_days(days, now=started)  # the agreement rollup's days too
    agreement_days_rebuild(sorted(set(_days_between(agreement_from, today)) - set(days)), built_through=today)
    if full:
        _analyze_rollup()
    if agreement_full:
        agreement_rollup_analyze()
    state.watermark = started
    state.built_through = today
    state.last_run_at = timezone.now()
    state.last_run_ms = int((time.monotonic() - clock) * 1000)
    state.last_days = rebuilt
    state.save(update_fields=["watermark", "built_through", "last_run_at", "last_run_ms", "last_days"])
    return RefreshResult(skipped=False, full=full, days=rebuilt, duration_ms=state.last_run_ms,
                         built_through=today)
