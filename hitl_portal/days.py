"""Calendar-day helpers shared by the apps that rebuild per-day derived tables (the KPI and agreement rollups)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable


def day_start(day: dt.date) -> dt.datetime:
    """Midnight UTC opening ``day``: the portal's days (rollups, KPI periods) are UTC days."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def day_runs(days: Iterable[dt.date], *, longest: int) -> list[tuple[dt.date, dt.date]]:
    """``days`` as inclusive ``(first, last)`` runs of consecutive days, each at most ``longest`` days long.

    A rebuild recomputes each run with one statement: long enough to amortise the
    statement, short enough to keep each transaction's rows few.
    """
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if runs and (day - runs[-1][1]).days == 1 and (day - runs[-1][0]).days < longest:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs
