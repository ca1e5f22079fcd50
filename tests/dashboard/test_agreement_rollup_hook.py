"""The KPI rollup refresh keeps the agreement rollup (``quality.models.AgreementPairDay``) with its own days.

Same days, same transaction, same ``built_through``; the first refresh of a
deployment whose KPI rollup exists but whose agreement rollup was never built
(the table is newer) builds every agreement day. The oracle is ``live_agreement``
with every day counted live (``tests.quality.test_agreement_rollup``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from dashboard.models import RollupState
from dashboard.services import OVERLAP, rollup_refresh
from quality.models import AgreementPairDay, AgreementRollupState
from quality.selectors import agreement_rollup_built_through
from tests.quality.test_agreement_rollup import (
    DAYS,
    add_decision,
    all_live,
    assert_same_through_rollup,
    midnight,
    random_data,
    rated_case_before_today,
    rollup_rows,
    through_rollup,
    today,
    write_case,
)

pytestmark = pytest.mark.django_db


def later() -> dt.datetime:
    """A refresh's start that puts what was written before it out of the next refresh's look-back.

    The next refresh looks back to this one's start minus ``OVERLAP``: to now, so it
    finds exactly the changes made after this call.
    """
    return timezone.now() + OVERLAP


def test_a_refresh_rebuilds_the_agreement_days_it_touches() -> None:
    data = random_data(21)
    full = rollup_refresh(full=True, now=later())
    assert full.full and agreement_rollup_built_through() == full.built_through == today()
    assert_same_through_rollup(data)
    whole_days = {"since": midnight(today() - dt.timedelta(days=DAYS)), "until": midnight(today())}

    # A late decision (a third rating) on a case received five days ago.
    loans = data["points"][0]
    a, b, c = data["reviewers"][:3]
    case = write_case(loans, data["now"] - dt.timedelta(days=5), [{a: "approve", b: "reject"}], n=30_000)
    add_decision(case, c, "approve")
    assert through_rollup(**whole_days)[0] != all_live(**whole_days)
    refreshed = rollup_refresh(now=later())
    assert not refreshed.full and refreshed.days == 2  # that day and today
    assert_same_through_rollup(data)

    # A case deleted.
    rated_case_before_today().delete()
    assert through_rollup(**whole_days)[0] != all_live(**whole_days)
    rollup_refresh(now=later())
    assert_same_through_rollup(data)


def test_the_first_refresh_without_an_agreement_rollup_builds_every_day() -> None:
    data = random_data(23)
    rollup_refresh(full=True, now=later())
    built = rollup_rows()
    assert len({row[0] for row in built}) >= DAYS - 2
    # A deployment from before the agreement rollup: the KPI rollup built, no agreement rows, no state;
    # a stray row of a day before the first case must go too.
    AgreementRollupState.objects.all().delete()
    AgreementPairDay.objects.all().delete()
    AgreementPairDay.objects.create(day=today() - dt.timedelta(days=400), system_id=data["points"][0].system_id,
                                    intervention_point_id=data["points"][0].pk, rater_a_id=data["reviewers"][0].pk,
                                    rater_b_id=data["reviewers"][1].pk, label_a="x", label_b="y", unit_size=2,
                                    count=1)
    kpi_built_through = RollupState.objects.get().built_through
    refreshed = rollup_refresh(now=later())
    assert not refreshed.full and refreshed.days == 1  # the KPI rollup: only today
    assert RollupState.objects.get().built_through == kpi_built_through
    assert agreement_rollup_built_through() == today()
    assert rollup_rows() == built
    assert_same_through_rollup(data)
    # And the next one is an ordinary refresh again.
    rollup_refresh(now=later())
    assert rollup_rows() == built


def test_a_failed_refresh_leaves_both_rollups_as_they_were(monkeypatch) -> None:
    # One transaction: the agreement days rewritten by a refresh that then fails are rolled back with
    # the KPI rollup's (and the advisory lock is held until the end).
    from dashboard import services
    from dashboard.models import DailyRollup

    data = random_data(25, cases=30)
    rollup_refresh(full=True, now=later())
    built = rollup_rows()
    kpi_rows = sorted(DailyRollup.objects.values_list("day", "intervention_point_id", "cases_total"))
    write_case(data["points"][0], data["now"] - dt.timedelta(days=3),
               [{data["reviewers"][0]: "approve", data["reviewers"][1]: "reject"}], n=40_000)
    rebuild = services.agreement_days_rebuild

    def rebuild_then_fail(days, *, built_through=None):
        written = rebuild(days, built_through=built_through)
        if built_through is not None:
            raise RuntimeError("the refresh failed after rewriting the days")
        return written

    monkeypatch.setattr(services, "agreement_days_rebuild", rebuild_then_fail)
    with pytest.raises(RuntimeError):
        rollup_refresh(now=later())
    assert rollup_rows() == built
    assert sorted(DailyRollup.objects.values_list("day", "intervention_point_id", "cases_total")) == kpi_rows
