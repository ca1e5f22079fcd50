"""Keep the agreement rollup (``AgreementPairDay``): recompute whole received days, record how far it is built.

The KPI rollup refresh (``dashboard.services.rollup_refresh``) drives it: it
finds the received days touched since its last run and rebuilds them, the
agreement days with its own, in its transaction, and records the same
``built_through``. A deployment whose agreement rollup was never built
(``agreement_rollup_built_through()`` is ``None``, e.g. right after the
migration that created the table) gets every day built by the next refresh;
until then ``live_agreement`` computes everything live, which is just as exact.

Derived data, not records: no history, no audit events (the cases and decisions
carry those); recomputing a day replaces its rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import connection, transaction
from django.utils import timezone

from hitl_portal.days import day_runs, day_start
from quality.models import AgreementPairDay, AgreementRollupState
from quality.selectors import AGREEMENT_STATE_KEY, agreement_day_pairs

# Days counted per statement in a long rebuild (a full build: every day from the first case). A
# week of units at 10 M cases is a few thousand rows to group; the deletes and inserts stay small.
CHUNK_DAYS = 7
BATCH = 2000


@transaction.atomic
def agreement_days_rebuild(days: Iterable[dt.date], *, built_through: dt.date | None = None) -> int:
    """Recompute the ``AgreementPairDay`` rows of ``days``, replacing theirs; record ``built_through`` if given.

    Each run of consecutive days (at most ``CHUNK_DAYS``) is one count of its
    units (``quality.selectors.agreement_day_pairs``, the live statement's own
    units), its rows deleted and the new ones inserted. Atomic (joins the
    caller's transaction: the KPI refresh's), so readers see a day's old rows or
    its new ones. Returns the number of rows written.
    """
    written = 0
    for first, last in day_runs(days, longest=CHUNK_DAYS):
        counts = agreement_day_pairs(since=day_start(first), until=day_start(last + dt.timedelta(days=1)))
        AgreementPairDay.objects.filter(day__gte=first, day__lte=last).delete()
        rows = [
            AgreementPairDay(day=day, system_id=system_id, intervention_point_id=point_id, rater_a_id=rater_a,
                             rater_b_id=rater_b, label_a=label_a, label_b=label_b, unit_size=size, count=count)
            for (day, system_id, point_id, rater_a, rater_b, label_a, label_b, size), count in sorted(counts.items())
        ]
        AgreementPairDay.objects.bulk_create(rows, batch_size=BATCH)
        written += len(rows)
    if built_through is not None:
        AgreementRollupState.objects.update_or_create(
            key=AGREEMENT_STATE_KEY, defaults={"built_through": built_through, "computed_at": timezone.now()})
    return written


@transaction.atomic
def agreement_days_drop_before(day: dt.date) -> None:
    """Delete the rows of the days before ``day`` (a full build's: the days before the first case)."""
    AgreementPairDay.objects.filter(day__lt=day).delete()


def agreement_rollup_analyze() -> None:
    """Fresh planner statistics for ``AgreementPairDay`` after a full build (as the KPI rollup's own tables)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + connection.ops.quote_name(AgreementPairDay._meta.db_table))
