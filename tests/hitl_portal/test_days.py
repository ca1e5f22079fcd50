"""The day runs both rollup rebuilds work in."""

from __future__ import annotations

import datetime as dt

from hitl_portal.days import day_runs

D = dt.date(2026, 11, 1)


def day(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


def test_consecutive_days_make_runs_of_at_most_the_longest() -> None:
    days = [day(n) for n in (9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 12, 14)]
    assert day_runs(days, longest=7) == [(day(0), day(6)), (day(7), day(9)), (day(12), day(12)), (day(14), day(14))]
    assert day_runs(days, longest=1) == [(day(n), day(n)) for n in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 14)]
    assert day_runs([], longest=7) == []


def test_every_day_is_in_exactly_one_run() -> None:
    days = {day(n) for n in range(0, 60) if n % 5 != 3}
    covered = [d for first, last in day_runs(days, longest=7)
               for d in (first + dt.timedelta(days=i) for i in range((last - first).days + 1))]
    assert sorted(covered) == sorted(days)
