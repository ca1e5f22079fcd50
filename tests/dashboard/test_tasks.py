"""The rollup task, its management command and its lock."""

from __future__ import annotations

from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from dashboard.models import DailyRollup, RollupState
from dashboard.services import ADVISORY_LOCK_KEY, rollup_refresh
from dashboard.tasks import refresh_rollups
from tests.dashboard.kpi_data import DAY1, DAY2, build_scenario


@pytest.mark.django_db
def test_task_builds_then_refreshes():
    build_scenario()
    assert refresh_rollups.delay().get() >= 4  # DAY0 .. today, first run: a full build
    state = RollupState.objects.get()
    assert state.built_through is not None and state.watermark is not None and state.last_days >= 4
    assert DailyRollup.objects.filter(day__in=[DAY1, DAY2]).count() == 2
    # Run again: only the days touched since (the scenario's writes, within the look-back) and today.
    assert refresh_rollups.delay().get() >= 1
    assert refresh_rollups.delay(full=True).get() >= 4


@pytest.mark.django_db
def test_management_command():
    build_scenario()
    out = StringIO()
    call_command("kpi_rollup", "--full", stdout=out)
    assert out.getvalue().startswith("full rebuild: ")
    call_command("kpi_rollup", stdout=out)
    assert "refresh: " in out.getvalue()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_refresh_steps_aside_while_one_runs():
    build_scenario()
    settings = connection.settings_dict
    conninfo = psycopg.conninfo.make_conninfo(
        dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"], port=str(settings["PORT"] or 5432),
        password=settings["PASSWORD"] or None,
    )
    with psycopg.connect(conninfo) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        result = rollup_refresh()
        assert result.skipped and result.days == 0
        assert not RollupState.objects.exists()
        other.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
    result = rollup_refresh()
    assert not result.skipped and result.full


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_full_build_leaves_the_planner_fresh_statistics_of_the_rollup():
    # Until analyzed, PostgreSQL estimates a freshly rebuilt rollup table from its old size (a
    # 10 M-case dashboard statement spilled its sort to disk on that estimate): a full build ANALYZEs.
    from dashboard.services import BLOCK_MODELS, ROLLUP_MODELS

    build_scenario()
    tables = [model._meta.db_table for model in (*ROLLUP_MODELS, *BLOCK_MODELS)]

    def analyzed() -> dict[str, int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT relname, analyze_count FROM pg_stat_user_tables WHERE relname = ANY(%s)",
                           [tables])
            return dict(cursor.fetchall())

    before = analyzed()
    rollup_refresh(full=True)
    after = analyzed()
    assert sorted(after) == sorted(tables)
    assert all(after[table] == before.get(table, 0) + 1 for table in tables), (before, after)
    rollup_refresh()  # an incremental refresh rewrites a few days: autovacuum's business
    assert analyzed() == after
