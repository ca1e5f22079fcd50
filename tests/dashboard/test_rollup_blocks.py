"""The pre-summed histogram blocks: exactly the sums of their days' rows; periods read through them unchanged.

``RollupTtrBlock`` / ``ReviewerTimeBlock`` hold the time-to-resolution and
time-spent histograms summed over aligned blocks of 7 and 28 days per system, and
of 1, 7 and 28 days over all systems (``dashboard.blocks``); the KPI reads take a
period's whole blocks from them (and, for one system, the loose edge days from
the day rows). The oracles are the day rows summed by
the ORM and the figures computed from the cases (before any rollup exists).
"""

from __future__ import annotations

import datetime as dt
import importlib
from types import SimpleNamespace

import pytest
from django.db import connection, transaction
from django.db.models import Model, Sum
from django.utils import timezone

from dashboard import selectors
from dashboard.aggregation import utc_day
from dashboard.blocks import ALL_SYSTEMS_SPANS, BLOCK_SPANS, EPOCH, block_start, decompose
from dashboard.models import ReviewerTimeBlock, ReviewerTimeBucket, RollupTtrBlock, RollupTtrBucket
from dashboard.selectors import dashboard_data, last_days_scope
from dashboard.services import BLOCK_SOURCES, OVERLAP, rollup_rebuild_blocks, rollup_refresh
from tests.dashboard.kpi_data import build_demo, decide, make_case

HISTOGRAMS = (
    (RollupTtrBucket, RollupTtrBlock, ("bucket",)),
    (ReviewerTimeBucket, ReviewerTimeBlock, ("reviewer", "bucket")),
)


def day_sums(model: type[Model], keys: tuple[str, ...], first: dt.date, last: dt.date,
             system_id: int | None = None) -> list[tuple]:
    """The oracle: the day rows of ``first``..``last`` summed per key by the ORM."""
    rows = model._default_manager.filter(day__gte=first, day__lte=last)
    if system_id is not None:
        rows = rows.filter(system_id=system_id)
    names = [f"{key}_id" if key in ("system", "reviewer") else key for key in keys]
    summed = rows.values(*names).annotate(n=Sum("count"), total=Sum("total_ms")).values_list(*names, "n", "total")
    return sorted((*key, int(n), int(total)) for *key, n, total in summed)


def block_rows(block_model: type[Model], keys: tuple[str, ...], *,
               per_system: bool = True) -> dict[tuple[int, dt.date], list[tuple]]:
    """The blocks of one set, per ``(span, start)``: ``([system,] *keys, count, total_ms)`` rows sorted."""
    names = [*(["system_id"] if per_system else []), *(f"{key}_id" if key == "reviewer" else key for key in keys)]
    blocks: dict[tuple[int, dt.date], list[tuple]] = {}
    rows = block_model._default_manager.filter(system__isnull=not per_system)
    for span, start, *row in rows.values_list("span", "start", *names, "count", "total_ms"):
        blocks.setdefault((span, start), []).append(tuple(row))
    return {key: sorted(rows) for key, rows in blocks.items()}


def all_blocks() -> dict[tuple[type[Model], bool], dict[tuple[int, dt.date], list[tuple]]]:
    return {(model, per_system): block_rows(model, keys, per_system=per_system)
            for _day, model, keys in HISTOGRAMS for per_system in (True, False)}


def assert_blocks_are_the_day_sums() -> int:
    """Every block equals its days' rows summed (per system, or over all systems); every block with days is there."""
    checked = 0
    for day_model, block_model, keys in HISTOGRAMS:
        days = set(day_model._default_manager.values_list("day", flat=True))
        for spans, per_system in ((BLOCK_SPANS, True), (ALL_SYSTEMS_SPANS, False)):
            blocks = block_rows(block_model, keys, per_system=per_system)
            assert set(blocks) == {(span, block_start(day, span)) for day in days for span in spans}, block_model
            for (span, start), rows in blocks.items():
                last = start + dt.timedelta(days=span - 1)
                want = day_sums(day_model, ("system", *keys) if per_system else keys, start, last)
                assert rows == want, (block_model, per_system, span, start)
                checked += 1
    return checked


@pytest.fixture
def demo(db):
    now = timezone.now()
    scenario = build_demo(now=now, days=64, per_day=10)
    return SimpleNamespace(scenario=scenario, now=now)


def test_decompose_covers_each_day_once_with_aligned_blocks():
    first_day = dt.date(2026, 1, 1)
    for offset in range(0, 60):
        for length in (1, 6, 7, 8, 27, 28, 29, 30, 56, 90, 181):
            first = first_day + dt.timedelta(days=offset)
            last = first + dt.timedelta(days=length - 1)
            days, blocks = decompose(first, last)
            covered = list(days)
            for span, start in blocks:
                assert span in BLOCK_SPANS and (start - EPOCH).days % span == 0
                covered += [start + dt.timedelta(days=i) for i in range(span)]
            assert sorted(covered) == [first + dt.timedelta(days=i) for i in range(length)]
            # The loose days are only the edges: fewer than a week on each side.
            assert len(days) <= 2 * (BLOCK_SPANS[0] - 1)
            # With single days among the spans (all systems), no day is loose and the same blocks are used.
            no_loose, all_blocks_ = decompose(first, last, ALL_SYSTEMS_SPANS)
            assert no_loose == [] and sorted(all_blocks_) == sorted([*blocks, *((1, day) for day in days)])
    assert decompose(dt.date(2026, 1, 2), dt.date(2026, 1, 1)) == ([], [])
    assert block_start(dt.date(2026, 12, 2), 7) == dt.date(2026, 11, 30)  # a Monday


def test_a_full_build_sums_every_block_from_its_days(demo):
    rollup_refresh(now=demo.now)
    assert RollupTtrBlock.objects.filter(span=28).exists() and ReviewerTimeBlock.objects.filter(span=28).exists()
    assert assert_blocks_are_the_day_sums() > 20


def test_a_refresh_that_recomputes_a_day_sums_its_blocks_again(demo):
    first = rollup_refresh(now=timezone.now() + OVERLAP)
    assert first.full
    # A late decision on a case received 40 days ago: a new resolution time and a new time spent.
    day = utc_day(demo.now) - dt.timedelta(days=40)
    point = demo.scenario.point
    received = dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC)
    case = make_case(point, received_at=received, ai="approve", final="reject", ttr_s=7 * 86400 + 13)
    decide(case, demo.scenario.reviewers["alice"], label="reject", spent_s=4321)
    touched = [(7, block_start(day, 7), True), (28, block_start(day, 28), True), (1, day, False),
               (7, block_start(day, 7), False), (28, block_start(day, 28), False)]

    def blocks_of_the_day() -> list[list[tuple]]:
        return [block_rows(ReviewerTimeBlock, ("reviewer", "bucket"), per_system=per_system)[span, start]
                for span, start, per_system in touched]

    before = blocks_of_the_day()
    second = rollup_refresh(now=timezone.now() + OVERLAP + dt.timedelta(seconds=1))
    assert not second.full
    after = blocks_of_the_day()
    assert all(a != b for a, b in zip(after, before, strict=True))  # the day recomputed, and its blocks with it
    assert assert_blocks_are_the_day_sums() > 20
    # The same rows as a full build.
    snapshot = all_blocks()
    rollup_refresh(full=True, now=timezone.now() + OVERLAP + dt.timedelta(seconds=2))
    assert all_blocks() == snapshot


def test_a_day_whose_rows_went_away_leaves_its_blocks_right(demo):
    rollup_refresh(now=demo.now)
    day = utc_day(demo.now) - dt.timedelta(days=20)
    assert RollupTtrBucket.objects.filter(day=day).exists() and ReviewerTimeBucket.objects.filter(day=day).exists()
    with transaction.atomic():
        for day_model, _block, _keys in HISTOGRAMS:
            day_model._default_manager.filter(day=day).delete()
        rollup_rebuild_blocks([day])
    assert not RollupTtrBucket.objects.filter(day=day).exists()
    assert assert_blocks_are_the_day_sums() > 20


def test_a_full_build_drops_blocks_before_the_first_case(demo):
    rollup_refresh(now=demo.now)
    stale = dt.date(2020, 1, 6)
    RollupTtrBlock.objects.create(start=stale, span=7, system=demo.scenario.system, bucket=3, count=1, total_ms=5)
    rollup_refresh(full=True, now=demo.now)
    assert not RollupTtrBlock.objects.filter(start=stale).exists()
    assert assert_blocks_are_the_day_sums() > 20


def test_histogram_reads_through_blocks_equal_the_day_sums(demo):
    rollup_refresh(now=demo.now)
    today = utc_day(demo.now)
    used_blocks = 0
    for back in range(0, 10):
        last = today - dt.timedelta(days=back)
        for length in (1, 5, 7, 8, 30, 45, 60):
            first = last - dt.timedelta(days=length - 1)
            used_blocks += len(decompose(first, last)[1])
            for system_id in (None, demo.scenario.system.pk):
                for day_model, block_model, keys in HISTOGRAMS:
                    got = sorted((*key, int(n), int(total)) for *key, n, total in selectors._histogram_sums(
                        day_model, block_model, keys, first, last, system_id))
                    assert got == day_sums(day_model, keys, first, last, system_id), (first, last, system_id)
    assert used_blocks > 50


def test_dashboard_figures_through_blocks_equal_the_case_based_ones(demo):
    scopes = [last_days_scope(period, system=system, now=demo.now)
              for period in (30, 60) for system in (None, demo.scenario.system)]
    live = [dashboard_data(scope, now=demo.now) for scope in scopes]  # no rollup yet: all from the cases
    assert all(data.figures.rollup_days == 0 for data in live)
    rollup_refresh(now=demo.now)
    for scope, expected in zip(scopes, live, strict=True):
        first = utc_day(scope.start)
        assert decompose(first, utc_day(scope.end) - dt.timedelta(days=1))[1]  # blocks are read
        built = dashboard_data(scope, now=demo.now)
        assert built.figures.rollup_days == (utc_day(scope.end) - first).days
        assert built.kpis == expected.kpis
        assert built.series == expected.series
        assert built.reviewers == expected.reviewers
        assert built.figures.total.ttr_hist == expected.figures.total.ttr_hist
        assert {r: f.time_hist for r, f in built.figures.reviewers.items()} == {
            r: f.time_hist for r, f in expected.figures.reviewers.items()}


def test_the_migration_fills_the_blocks_the_refresh_writes(demo):
    rollup_refresh(now=demo.now)
    written = all_blocks()
    assert all(written.values())
    for block_model, _day_model, _keys in BLOCK_SOURCES:
        block_model._default_manager.all().delete()
    migration = importlib.import_module("dashboard.migrations.0003_rollup_blocks")
    migration.fill_blocks(None, SimpleNamespace(connection=connection))
    assert all_blocks() == written
