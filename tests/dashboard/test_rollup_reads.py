"""The dashboard's rollup reads: the fast forms give what decoding every row into ``CaseFigures`` gives.

``dashboard.selectors`` reads the day rows' JSON maps as text (``orjson``) and adds
their entries straight into each day's figures, and on PostgreSQL sums the
``decided_after`` maps before the period (the queue depth) in the database. The
oracles here are the plain forms: ``CaseFigures.from_row`` of each row merged, and
the Python reader of the carry. The rollup has two systems, two points a day,
four-eyes rounds with disagreement, ground truth and cases decided days after
they came in, so every kind of entry is exercised.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from dashboard import selectors
from dashboard.aggregation import utc_day
from dashboard.figures import CaseFigures
from dashboard.models import DailyRollup
from dashboard.services import rollup_refresh
from tests.dashboard.kpi_data import build_demo

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo():
    now = timezone.now()
    scenario = build_demo(now=now, days=20, per_day=30)
    rollup_refresh(now=now)
    return scenario


def test_days_read_as_text_equal_the_rows_decoded(demo):
    today = utc_day(timezone.now())
    first, last = today - dt.timedelta(days=15), today - dt.timedelta(days=1)
    period = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    for system_id in (None, demo.system.pk):
        rows = DailyRollup.objects.filter(day__gte=first, day__lte=last)
        if system_id is not None:
            rows = rows.filter(system_id=system_id)
        summed = {day: CaseFigures() for day in period}
        selectors._add_rollup_days(rows, summed)
        decoded = {day: CaseFigures() for day in period}
        for row in rows.values(*selectors.CASE_FIELDS):
            decoded[row["day"]].merge(CaseFigures.from_row(row))
        assert summed == decoded, system_id
        # Not two empty answers: every map the day rows hold has entries.
        assert sum(f.cases_total for f in summed.values()) > 100
        for name in ("resolutions", "reviewed_labels", "truth_labels", "decided_after"):
            assert any(getattr(f, name) for f in summed.values()), (system_id, name)
        if system_id is None:
            # Two points a day (credit and fraud) summed into one figure, with fraud's four-eyes pairs.
            assert rows.filter(day=last).count() == 2
            assert any(f.agreement_pairs for f in summed.values())


@pytest.mark.postgres
def test_carry_summed_in_sql_equals_the_rows_decoded(demo):
    assert connection.vendor == "postgresql"  # the SQL form is the one under test
    today = utc_day(timezone.now())
    for before in (today - dt.timedelta(days=10), today - dt.timedelta(days=3), today + dt.timedelta(days=1)):
        for system_id in (None, demo.system.pk):
            rows = DailyRollup.objects.filter(day__lt=before)
            if system_id is not None:
                rows = rows.filter(system_id=system_id)
            summed = selectors._rollup_routed_and_closed(before, system_id)
            assert summed == selectors._routed_and_closed_decoded(rows), (before, system_id)
            assert summed[0][0] is None and summed[0][1] > 0
            assert len(summed) > 2  # cases closed on several days


def test_a_period_without_rollup_rows_reads_nothing(db):
    today = utc_day(timezone.now())
    days = {today: CaseFigures()}
    selectors._add_rollup_days(DailyRollup.objects.filter(day=today), days)
    assert days == {today: CaseFigures()}
    assert selectors._rollup_routed_and_closed(today, None) == [(None, 0)]
