"""Aligned blocks of days: how a period's histogram sums are split into pre-summed pieces.

The two histograms a period adds up (time to resolution, reviewers' time spent)
have a row per day, key and bucket; a 90-day read summed ~155,000 reviewer rows
and ~97,000 resolution-time rows at a million cases. ``RollupTtrBlock`` and
``ReviewerTimeBlock`` hold the same sums over blocks of ``BLOCK_SPANS`` days,
aligned to ``EPOCH``; a period is read as the largest aligned blocks that fit
inside it plus the loose days at its edges (``decompose``), which is ~40,000 and
~15,000 rows for the same 90 days of one system's blocks (a block's rows are the
distinct keys of its days, far fewer than the sum of its days' rows), and
~16,000 and ~5,000 rows through the all-systems blocks the dashboard reads by
default.

Blocks nest (each span a multiple of the one before, all aligned to the same
day), so a block is the sum of the blocks (or days) one level down, and any
whole-day period splits into whole blocks without overlap: the sums are exactly
those of the day rows, whatever the split. Blocks are kept per system and, for
the all-systems view, summed over the systems (``system`` null, from single days up).
"""

from __future__ import annotations

import datetime as dt

# Monday 3 January 2000: 7-day blocks are ISO weeks, 28-day blocks four of them.
EPOCH = dt.date(2000, 1, 3)
# Chosen on the 1 M-case data (docs/PERFORMANCE.md): weeks and four-week blocks read 3.7× (90 days)
# and 2× (30 days) fewer reviewer rows than the days; finer levels (2, 4, …) cut the edge days a
# little more but store and rewrite several times the rows. Per system, over the day rows:
BLOCK_SPANS = (7, 28)
# All systems together (``system`` null), what the dashboard shows by default: also single days
# (the edges of a period), so such a period reads one set of rows per block and no day rows.
# Summed over systems, a block has the distinct keys of all of them (a reviewer works on several
# systems): a 30-day read ~19,000 reviewer rows instead of ~33,000 per system.
ALL_SYSTEMS_SPANS = (1, *BLOCK_SPANS)


def block_start(day: dt.date, span: int) -> dt.date:
    """The first day of the ``span``-day block holding ``day``."""
    return day - dt.timedelta(days=(day - EPOCH).days % span)


def decompose(
    first: dt.date, last: dt.date, spans: tuple[int, ...] = BLOCK_SPANS,
) -> tuple[list[dt.date], list[tuple[int, dt.date]]]:
    """The days ``first``..``last`` as loose days plus ``(span, start)`` blocks, each day in exactly one.

    Greedy from ``first``: the largest block of ``spans`` that starts on the day
    and ends within ``last``, else the day itself (never loose when 1 is a span).
    """
    days: list[dt.date] = []
    blocks: list[tuple[int, dt.date]] = []
    day = first
    while day <= last:
        for span in sorted(spans, reverse=True):
            end = day + dt.timedelta(days=span - 1)
            if (day - EPOCH).days % span == 0 and end <= last:
                blocks.append((span, day))
                day = end + dt.timedelta(days=1)
                break
        else:
            days.append(day)
            day += dt.timedelta(days=1)
    return days, blocks
