"""The KPI module on hand-built data where every figure is known (tests/dashboard/kpi_data.py).

Worked example over [DAY1, DAY3), system "credit" (gold items and cases outside
the period excluded):

* 14 cases: auto1-3 and auto4 not routed (4); rev1-3, open1, sla1, 4e1-3, blind1-2
  routed (10) → automation 4/14, review 10/14.
* reviewed (routed and decided) = all routed but open1 = 9; overridden (final ≠ AI):
  rev2, rev3, sla1 (fail closed: no final label), 4e2, 4e3, blind2 = 6 → 6/9.
* ground truth on closed cases: auto1 (a,a,a), auto2 (a,a,r), rev1 (a,a,a),
  rev2 (a,r,r), rev3 (r,a,a), sla1 (a,-,a), 4e2 (a,r,r), auto4 (a,a,a) as
  (AI, final, true) → evaluated 8; AI right 4 (auto1, rev1, sla1, auto4) → 0.5;
  final right 6 (auto1, rev1, rev2, rev3, 4e2, auto4) → 0.75; lift 0.25; AI errors
  4, final errors 2 → error reduction 0.5.
* time to resolution (s): 30, 45, 50, 60, 120, 240, 300, 600, 900 → p50 = 5th = 120,
  p90 = 9th = 900.
* agreement: 4e1 (r1 a, r2 a), 4e2 (r1 r, r2 a; the adjudication is no rating),
  4e3 (r1 r, r2 r): 2 of 3 pairs agree; two fixed reviewers → Cohen's κ:
  p_o = 2/3, p_e = (1/3·2/3 + 2/3·1/3) = 4/9, κ = (2/9)/(5/9) = 0.4; α: coincidences
  o_aa = o_rr = 2, o_ar = o_ra = 1, n = 6, α = 1 − 5·2/(3·3·2) = 4/9.
* SLA breaches: open1, sla1 = 2; queue depth now: open1 (gold3 is gold) = 1.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from dashboard.models import DailyRollup, ReviewerPairRollup, RollupState, RollupTtrBucket
from dashboard.selectors import KpiScope, dashboard_data, kpi_series, kpis, period_figures, reviewer_table
from dashboard.services import OVERLAP, rollup_refresh, touched_days
from incidents.models import Incident
from reviews.models import Case
from reviews.services.outcomes import case_report_outcome
from tests.dashboard.kpi_data import (
    DAY0,
    DAY1,
    DAY2,
    DAY3,
    EXPECTED,
    at,
    build_scenario,
    decide,
    make_case,
    make_point,
    make_reviewer,
)

pytestmark = pytest.mark.django_db

NOW = at(DAY3, 12)


def scope(system=None, start=DAY1, end=DAY3) -> KpiScope:
    start_at = start if isinstance(start, dt.datetime) else at(start, 0)
    end_at = end if isinstance(end, dt.datetime) else at(end, 0)
    return KpiScope(start=start_at, end=end_at, system=system)


def assert_expected(values: dict, expected: dict) -> None:
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_expected(values[key], value)
        elif isinstance(value, float):
            assert values[key] == pytest.approx(value), key
        else:
            assert values[key] == value, key


@pytest.fixture
def scenario():
    return build_scenario()


def test_every_kpi_of_the_worked_example_live(scenario):
    values = kpis(scope(scenario.system), now=NOW)
    assert_expected(values, EXPECTED)
    assert values["bias_incidents_open"] == 0
    assert values["oldest_waiting_received_at"] == "2026-10-01T11:00:00Z"
    assert values["from"] == "2026-10-01T00:00:00Z" and values["to"] == "2026-10-03T00:00:00Z"
    assert values["system"] == "credit"
    # Nothing came from the rollup: it was never built.
    assert period_figures(scope(scenario.system)).rollup_days == 0


def test_the_rollup_gives_the_same_figures(scenario):
    live = kpis(scope(scenario.system), now=NOW)
    result = rollup_refresh(now=NOW)
    assert result.full and not result.skipped
    assert RollupState.objects.get().built_through == DAY3
    figures = period_figures(scope(scenario.system))
    assert figures.rollup_days == 2 and figures.live_ranges == []
    assert kpis(scope(scenario.system), figures=figures, now=NOW) == live
    assert_expected(live, EXPECTED)
    # Gold items stay out of the case rows; one row per received day and point.
    assert sorted(DailyRollup.objects.values_list("day", "cases_total")) == [(DAY0, 1), (DAY1, 8), (DAY2, 6),
                                                                              (DAY3, 1)]


def test_all_systems_scope_adds_other_systems(scenario):
    other = make_point("fraud", "tx-check")
    make_case(other, received_at=at(DAY1, 15), routed=False, ai="reject")
    assert kpis(scope(None), now=NOW)["cases_total"] == 15
    assert kpis(scope(scenario.system), now=NOW)["cases_total"] == 14
    assert kpis(scope(other.system), now=NOW)["automation_rate"] == 1.0


def test_undefined_figures_are_null_not_zero(db):
    point = make_point()
    empty = kpis(scope(point.system), now=NOW)
    assert empty["cases_total"] == 0 and empty["reviewed"] == 0 and empty["sla_breaches"] == 0
    for key in ("automation_rate", "review_rate", "override_rate", "accuracy_ai", "accuracy_final", "accuracy_lift",
                "error_reduction_rate", "sla_breach_rate", "oldest_waiting_received_at"):
        assert empty[key] is None, key
    assert empty["agreement"] == {"percent": None, "kappa": None, "alpha": None, "statistic": None, "units": 0,
                                  "pairs": 0}
    assert empty["time_to_resolution_s"] == {"p50": None, "p90": None}

    # Cases, but no ground truth and nothing reviewed yet.
    make_case(point, received_at=at(DAY1), routed=False)
    make_case(point, received_at=at(DAY1, 11))
    values = kpis(scope(point.system), now=NOW)
    assert values["automation_rate"] == 0.5 and values["review_rate"] == 0.5
    assert values["override_rate"] is None and values["accuracy_ai"] is None and values["accuracy_lift"] is None
    assert values["time_to_resolution_s"] == {"p50": None, "p90": None}
    assert values["queue_depth"] == 1

    # Ground truth where the AI made no error: lift is defined, error reduction is not (0 AI errors).
    make_case(point, received_at=at(DAY2), routed=False, ai="reject", true="reject")
    values = kpis(scope(point.system), now=NOW)
    assert values["accuracy_ai"] == 1.0 and values["accuracy_final"] == 1.0 and values["accuracy_lift"] == 0.0
    assert values["error_reduction_rate"] is None


def test_one_label_everywhere_leaves_chance_corrected_agreement_undefined(db):
    point = make_point(reviewers_required=2)
    a, b = make_reviewer("a", ["credit"]), make_reviewer("b", ["credit"])
    case = make_case(point, received_at=at(DAY1), final="approve", ttr_s=10, reviewers_required=2)
    decide(case, a, label="approve")
    decide(case, b, label="approve")
    agreement = kpis(scope(point.system), now=NOW)["agreement"]
    assert agreement["percent"] == 1.0 and agreement["kappa"] is None and agreement["alpha"] is None


def test_rotating_reviewers_use_fleiss_kappa(db):
    """Three reviewers in rotating pairs: Fleiss' κ (pairwise), not Cohen's.

    Units (labels): (r1 a, r2 a), (r2 r, r3 r), (r1 a, r3 r), (r1 r, r2 r, r3 a).
    Pairs: 1 + 1 + 1 + 3 = 6, agreeing: 1 + 1 + 0 + 1 = 3 → percent 0.5.
    Coincidences: units of 2 add 1 per ordered pair, the unit of 3 adds 1/2:
    o_aa = 2, o_rr = 2 + 1 = 3, o_ar = o_ra = 1 + 1 = 2 → n_a = 4, n_r = 5, n = 9.
    κ = (0.5 − (16 + 25)/81) / (1 − 41/81) = (81/2 − 41)/40 = −1/80 = −0.0125.
    α = 1 − (9 − 1)·4 / (2·4·5) = 1 − 32/40 = 0.2.
    """
    point = make_point(reviewers_required=2)
    r1, r2, r3 = (make_reviewer(n, ["credit"]) for n in ("r1", "r2", "r3"))
    units = [((r1, "approve"), (r2, "approve")), ((r2, "reject"), (r3, "reject")),
             ((r1, "approve"), (r3, "reject")), ((r1, "reject"), (r2, "reject"), (r3, "approve"))]
    for i, ratings in enumerate(units):
        case = make_case(point, received_at=at(DAY1, 10, i), final=None, status="escalated",
                         reviewers_required=len(ratings))
        for reviewer, label in ratings:
            decide(case, reviewer, label=label)
    agreement = kpis(scope(point.system), now=NOW)["agreement"]
    assert agreement["statistic"] == "fleiss"
    assert agreement["units"] == 4 and agreement["pairs"] == 6
    assert agreement["percent"] == pytest.approx(0.5)
    assert agreement["kappa"] == pytest.approx(-1 / 80)
    assert agreement["alpha"] == pytest.approx(0.2)


def test_reviewer_table(scenario):
    """r1: 4 approvals-or-overrides shown + 1 blind + 1 gold; r2 likewise; r3 adjudicates and escalates.

    r1 decided rev1 (a ✓AI), gold1 (r, gold r ✓), 4e1 (a ✓), 4e2 (r ✗), 4e3 (r ✗) shown → 2/5 = 0.4
    agree with the AI; blind1 (a = AI) hidden → 1.0; gap −0.6. Times 10, 20, 30, 40, 50, 60 s
    → median (3rd) 30 s. Co-reviewer pairs: 4e1 ✓, 4e2 ✗, 4e3 ✓ → 2/3.
    r2: rev2 ✗, gold2 ✗ (gold a), 4e1 ✓, 4e2 ✓, 4e3 ✗ → 0.4; blind2 ✗ → 0.0; gap 0.4; times 5..55 → 25 s.
    r3: rev3 (a vs AI r) ✗, 4e2 adjudication ✗ → 0.0, nothing blind → gap null; escalated open1;
    times 100, 200, 300 → 200 s; no gold → null accuracy; no co-reviewer pairs (adjudication).
    """
    rows = {row["reviewer"]: row for row in reviewer_table(scope(scenario.system))}
    assert list(rows) == ["r1", "r2", "r3"]
    r1, r2, r3 = rows["r1"], rows["r2"], rows["r3"]
    assert (r1["decisions"], r1["approvals"], r1["overrides"], r1["escalations"]) == (6, 3, 3, 0)
    assert r1["override_rate"] == 0.5 and r1["median_time_s"] == 30.0
    assert r1["gold_answered"] == 1 and r1["gold_accuracy"] == 1.0
    assert r1["agreement"] == pytest.approx(2 / 3) and r1["agreement_pairs"] == 3
    assert r1["ai_agreement_shown"] == pytest.approx(0.4) and r1["ai_agreement_hidden"] == 1.0
    assert r1["automation_bias_gap"] == pytest.approx(-0.6)
    assert (r2["decisions"], r2["approvals"], r2["overrides"]) == (6, 2, 4)
    assert r2["gold_accuracy"] == 0.0 and r2["median_time_s"] == 25.0
    assert r2["ai_agreement_shown"] == pytest.approx(0.4) and r2["ai_agreement_hidden"] == 0.0
    assert r2["automation_bias_gap"] == pytest.approx(0.4)
    assert (r3["decisions"], r3["escalations"], r3["adjudications"], r3["override_rate"]) == (3, 1, 1, 1.0)
    assert r3["median_time_s"] == 200.0 and r3["gold_accuracy"] is None and r3["agreement"] is None
    assert r3["ai_agreement_shown"] == 0.0 and r3["automation_bias_gap"] is None
    # r1 vs co-reviewers as Cohen's κ: the same table as the case-level one → 0.4.
    assert r1["agreement_kappa"] == pytest.approx(0.4)
    # From the rollup: identical.
    rollup_refresh(now=NOW)
    assert reviewer_table(scope(scenario.system)) == list(rows.values())


def test_daily_series_and_queue_depth(scenario):
    """DAY1: 8 cases, 3 auto, 4 reviewed (3 overridden), p50 of 30/60/120/600 = 60, p90 = 600.

    Queue depth at the end of DAY1: "before" (received DAY0, decided DAY2) and open1 = 2;
    end of DAY2: open1 = 1, the live queue depth.
    """
    series = kpi_series(scope(scenario.system))
    assert [row["day"] for row in series] == ["2026-10-01", "2026-10-02"]
    day1, day2 = series
    assert (day1["cases_total"], day1["auto_accepted"], day1["routed"], day1["reviewed"]) == (8, 3, 5, 4)
    assert day1["override_rate"] == 0.75 and day1["accuracy_ai"] == 0.5
    assert day1["accuracy_final"] == pytest.approx(4 / 6)
    assert (day1["time_to_resolution_p50_s"], day1["time_to_resolution_p90_s"]) == (60.0, 600.0)
    assert day1["agreement_percent"] is None and day1["sla_breaches"] == 2
    assert (day2["cases_total"], day2["reviewed"], day2["override_rate"]) == (6, 5, 0.6)
    assert (day2["accuracy_ai"], day2["accuracy_final"]) == (0.5, 1.0)
    assert (day2["time_to_resolution_p50_s"], day2["time_to_resolution_p90_s"]) == (240.0, 900.0)
    assert day2["agreement_percent"] == pytest.approx(2 / 3)
    assert [row["queue_depth"] for row in series] == [2, 1]
    rollup_refresh(now=NOW)
    assert kpi_series(scope(scenario.system)) == series
    # A period that starts after the rollup's last day: the carry comes from the cases.
    later = kpi_series(scope(scenario.system, DAY2, DAY3))
    assert later == series[1:]


@pytest.mark.parametrize(
    ("start", "end", "rollup_days"),
    [
        (at(DAY1, 10, 7), at(DAY2, 10, 7), 0),  # partial days at both edges, no whole day
        (at(DAY0, 0), at(DAY2, 0), 2),
        (at(DAY1, 11, 2), at(DAY3, 0), 1),
        (at(DAY0, 23), at(DAY3, 0, 0, 2), 2),
    ],
)
def test_rollup_and_live_agree_on_any_period(scenario, start, end, rollup_days):
    live = dashboard_data(scope(scenario.system, start, end), now=NOW)
    rollup_refresh(now=NOW)
    built = dashboard_data(scope(scenario.system, start, end), now=NOW)
    assert built.figures.rollup_days == rollup_days
    assert built.kpis == live.kpis
    assert built.series == live.series
    assert built.reviewers == live.reviewers


def test_partial_period_counts_by_received_time(scenario):
    """[DAY1 10:07, DAY2 10:07): rev3, open1, sla1 on DAY1 and 4e1, 4e2 on DAY2 (gold left out)."""
    values = kpis(scope(scenario.system, at(DAY1, 10, 7), at(DAY2, 10, 7)), now=NOW)
    assert values["cases_total"] == 5 and values["auto_accepted"] == 0 and values["reviewed"] == 4
    assert values["sla_breaches"] == 2
    # rev3 30 s, 4e1 240 s, 4e2 900 s, sla1 600 s → p50 = 2nd = 240.
    assert values["time_to_resolution_s"]["p50"] == 240.0


def days_from(first: dt.date, last: dt.date) -> set[dt.date]:
    return {first + dt.timedelta(days=i) for i in range((last - first).days + 1)}


def test_incremental_refresh_recomputes_only_touched_days(scenario):
    # History rows carry real times: the first run's watermark is placed after the
    # scenario's writes plus the look-back overlap, so only later writes count as new.
    first = rollup_refresh(now=timezone.now() + OVERLAP)
    assert first.full
    before = kpis(scope(scenario.system), now=NOW)
    # Late ground truth on a DAY2 case (4e1: AI approve, final approve) through the service.
    case_report_outcome(actor=None, case=scenario.cases["4e1"], true_label="reject")
    # Until the next refresh, the rollup still shows the old figures (it lags by one run).
    assert kpis(scope(scenario.system), now=NOW) == before
    second = rollup_refresh(now=timezone.now() + OVERLAP + dt.timedelta(seconds=1))
    assert not second.full
    # DAY2 (touched) and every day from the last built day through today.
    assert second.days == len({DAY2} | days_from(first.built_through, second.built_through))
    after = kpis(scope(scenario.system), now=NOW)
    assert after["evaluated"] == 9
    assert after["accuracy_ai"] == pytest.approx(4 / 9) and after["accuracy_final"] == pytest.approx(6 / 9)
    # Nothing changed since: only the days from the last built day through today.
    third = rollup_refresh(now=timezone.now() + OVERLAP + dt.timedelta(seconds=2))
    assert third.days == len(days_from(second.built_through, third.built_through))
    # Idempotent: a full rebuild gives the same rows.
    def snapshot() -> tuple[list, list, list]:
        return (
            list(DailyRollup.objects.order_by("day").values("day", "cases_total", "truth_labels", "agreement_pairs")),
            list(RollupTtrBucket.objects.order_by("day", "bucket").values_list("day", "bucket", "count", "total_ms")),
            list(ReviewerPairRollup.objects.order_by("day", "reviewer_id", "own_label", "other_label")
                 .values_list("day", "reviewer_id", "own_label", "other_label", "count")),
        )

    rows = snapshot()
    rollup_refresh(full=True, now=timezone.now() + OVERLAP + dt.timedelta(seconds=3))
    assert snapshot() == rows


def test_touched_days_come_from_history(scenario):
    since = timezone.now()
    assert touched_days(since) == set()
    case_report_outcome(actor=None, case=scenario.cases["rev1"], true_label="reject",
                        reason="Ground truth corrected after the appeal.")
    decide(scenario.cases["blind1"], scenario.reviewers["r3"], label="approve", round=2)
    assert touched_days(since) == {DAY1, DAY2}


def test_new_day_after_the_last_build_is_read_live(scenario):
    rollup_refresh(now=at(DAY2, 23))
    assert RollupState.objects.get().built_through == DAY2
    figures = period_figures(scope(scenario.system, DAY1, dt.date(2026, 10, 4)))
    assert figures.rollup_days == 2
    assert figures.live_ranges == [(at(DAY3, 0), at(dt.date(2026, 10, 4), 0))]
    assert figures.total.cases_total == 15  # "after" on DAY3 comes from the cases


def test_bias_incidents_open_are_live(scenario):
    common = {"system": scenario.system, "description": "Selection rate gap", "aware_at": timezone.now()}
    Incident.objects.create(kind="bias", status="aware", **common)
    Incident.objects.create(kind="bias", status="closed", **common)
    Incident.objects.create(kind="other", status="aware", **common)
    Incident.objects.create(kind="bias", status="initial_report", description="x", aware_at=timezone.now())
    assert kpis(scope(scenario.system), now=NOW)["bias_incidents_open"] == 1
    assert kpis(scope(None), now=NOW)["bias_incidents_open"] == 2


def test_reopened_case_leaves_reviewed_and_joins_the_queue(scenario):
    case = Case.objects.get(pk=scenario.cases["rev1"].pk)
    case.status, case.resolution, case.final_label, case.decided_at = "escalated", None, None, None
    case.review_round = 2
    case.save()
    values = kpis(scope(scenario.system), now=NOW)
    assert values["reviewed"] == 8 and values["queue_depth"] == 2


def test_a_period_ending_now_reads_today_from_the_rollup(scenario):
    """No case is received in the future: [.., now) may use today's rollup row for the whole of today."""
    now = timezone.now()
    period = scope(scenario.system, DAY1, now)
    live = kpis(period, now=NOW)
    rollup_refresh()
    figures = period_figures(period)
    assert figures.live_ranges == []
    assert figures.rollup_days == len(period.days)
    assert kpis(period, figures=figures, now=NOW) == live
    # A period that ended an hour ago still reads its last, partial day from the cases.
    earlier = scope(scenario.system, DAY1, now - dt.timedelta(hours=1))
    assert period_figures(earlier).live_ranges[-1][1] == now - dt.timedelta(hours=1)
