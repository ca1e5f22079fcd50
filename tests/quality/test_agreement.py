"""Agreement on live multi-review cases: statistics, scope (point, period), exclusions, API and page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from quality import stats
from quality.selectors import agreement_summary, live_agreement
from reviews.models import Case, Decision, InterventionPoint
from tests.quality.helpers import (
    decided_multi_case,
    make_point,
    make_reviewer,
    make_system,
    make_user,
    page_client,
    write_decisions,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/agreement/"


@pytest.fixture
def data():
    loans = make_point(reviewers_required=2)
    limits = make_point(loans.system, "limit-review", reviewers_required=3)
    a, b, c = make_reviewer("ra"), make_reviewer("rb"), make_reviewer("rc")
    loan_units = [{a: "approve", b: "approve"}, {a: "approve", b: "reject"}, {a: "reject", c: "reject"},
                  {b: "refer", c: "refer"}, {a: "approve", c: None}]
    limit_units = [{a: "approve", b: "approve", c: "reject"}, {a: "reject", b: "reject", c: "reject"},
                   {a: "refer", b: "approve", c: "approve"}]
    write_decisions(loans, loan_units)
    write_decisions(limits, limit_units)
    return loans, limits, (a, b, c), loan_units, limit_units


def values(units) -> list[list[str]]:
    return [[label for label in unit.values() if label is not None] for unit in units]


def window() -> tuple[dt.datetime, dt.datetime]:
    now = timezone.now()
    return now - dt.timedelta(days=7), now + dt.timedelta(minutes=1)


def test_live_agreement_matches_the_statistics_per_point_and_overall(data) -> None:
    _, _, _, loan_units, limit_units = data
    since, until = window()
    result = live_agreement(since=since, until=until)
    everything = values(loan_units) + values(limit_units)
    pairable = [v for v in everything if len(v) >= 2]
    assert result["overall"]["percent"] == pytest.approx(stats.percent_agreement(everything))
    assert result["overall"]["alpha"] == pytest.approx(stats.krippendorff_alpha_nominal(everything))
    assert result["overall"]["units"] == len(pairable) == 7
    points = {p["intervention_point"]: p for p in result["points"]}
    loan = points["loan-review"]["summary"]
    assert loan["percent"] == pytest.approx(stats.percent_agreement(values(loan_units)))
    assert loan["units"] == 4  # the escalation leaves one unit with a single rating
    # Fleiss' κ over the units with the common number of ratings (two here).
    assert loan["fleiss_kappa"] == pytest.approx(stats.fleiss_kappa(
        [{label: unit.count(label) for label in set(unit)} for unit in values(loan_units)[:4]]))
    limit = points["limit-review"]["summary"]
    assert limit["fleiss_kappa"] == pytest.approx(stats.fleiss_kappa(
        [{label: unit.count(label) for label in set(unit)} for unit in values(limit_units)]))
    assert limit["alpha"] == pytest.approx(stats.krippendorff_alpha_nominal(values(limit_units)))
    pair = next(p for p in loan["cohen_pairs"] if p["raters"] == ["ra", "rb"])
    assert pair["n"] == 2 and pair["kappa"] == pytest.approx(
        stats.cohen_kappa(["approve", "approve"], ["approve", "reject"]), nan_ok=True)
    assert [row["summary"]["units"] for row in points["loan-review"]["periods"]] == [4]


def test_scope_by_system_point_and_period(data) -> None:
    loans, _, _, _, _ = data
    since, until = window()
    only_loans = live_agreement(since=since, until=until, point=loans)
    assert [p["intervention_point"] for p in only_loans["points"]] == ["loan-review"]
    assert live_agreement(since=since, until=until, system="nope")["overall"]["units"] == 0
    later = live_agreement(since=until, until=until + dt.timedelta(days=1))
    assert later["overall"]["units"] == 0 and later["overall"]["percent"] is None
    by_day = live_agreement(since=since, until=until, period="day")
    assert by_day["points"][0]["periods"][0]["start"] == timezone.localdate(
        Case.objects.first().received_at).isoformat()
    with pytest.raises(ValueError):
        live_agreement(since=since, until=until, period="year")


def test_gold_single_review_and_adjudications_are_left_out() -> None:
    point = make_point(reviewers_required=2)
    single = make_point(point.system, "single", reviewers_required=1)
    a, b, adjudicator = make_reviewer(), make_reviewer(), make_reviewer(adjudicator=True)
    [gold_case] = write_decisions(point, [{a: "approve", b: "reject"}])
    Case.objects.filter(pk=gold_case.pk).update(is_gold=True, gold_label="approve")
    write_decisions(single, [{a: "approve"}])
    # A real four-eyes case, escalated by disagreement and adjudicated: the adjudication is not a rating.
    case = decided_multi_case(point, [a, b], ["approve", "reject"])
    from reviews.services.queue import claim_next
    from tests.quality.helpers import decide
    claimed = claim_next(reviewer=adjudicator)
    assert claimed.pk == case.pk
    decide(adjudicator, claimed, "approve")
    assert Decision.objects.filter(case=case, is_adjudication=True).count() == 1
    since, until = window()
    result = live_agreement(since=since, until=until)
    assert result["overall"]["units"] == 1 and result["overall"]["percent"] == 0.0
    assert result["overall"]["ratings"] == 2


def test_agreement_summary_of_two_raters_uses_cohens_kappa() -> None:
    units = [{"x": "a", "y": "a"}, {"x": "a", "y": "b"}, {"x": "b", "y": "b"}, {"x": "b", "y": "b"}]
    summary = agreement_summary(units)
    assert summary["kappa"] == pytest.approx(stats.cohen_kappa(["a", "a", "b", "b"], ["a", "b", "b", "b"]))
    assert summary["kappa_band"] == "moderate" and summary["alpha_band"] == "unreliable"
    empty = agreement_summary([])
    assert empty["percent"] is None and empty["kappa"] is None and empty["kappa_band"] == "undefined"


@pytest.mark.parametrize("role", ["manager", "compliance_officer", "admin"])
def test_api_allowed(api_client_for, data, role) -> None:
    response = api_client_for(role).get(URL, {"period": "day"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["overall"]["units"] == 7 and body["period"] == "day"
    assert {p["intervention_point"] for p in body["points"]} == {"loan-review", "limit-review"}
    filtered = api_client_for(role).get(URL, {"system": "credit-scoring", "intervention_point": "limit-review"})
    assert [p["intervention_point"] for p in filtered.json()["points"]] == ["limit-review"]


@pytest.mark.parametrize("role", ["reviewer", "integration"])
def test_api_denied(api_client_for, role) -> None:
    assert api_client_for(role).get(URL).status_code == 403


def test_api_anonymous_and_bad_input(api_client_for, anon_client) -> None:
    make_system()
    assert anon_client.get(URL).status_code == 401
    client = api_client_for("manager")
    for params, field in [({"period": "year"}, "period"), ({"system": "nope"}, "system"),
                          ({"intervention_point": "loan-review"}, "intervention_point"),
                          ({"system": "credit-scoring", "intervention_point": "nope"}, "intervention_point"),
                          ({"from": "2026-03-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}, "to"),
                          ({"from": "soon"}, "from")]:
        response = client.get(URL, params)
        assert response.status_code == 400 and field in response.json(), (params, response.json())


def test_agreement_page(data) -> None:
    for role in ("manager", "compliance_officer"):
        response = page_client(make_user(role)).get(reverse("quality:agreement"), {"period": "month"})
        assert response.status_code == 200
        html = response.content.decode()
        assert "Loan-Review" in html and "Krippendorff" in html and "Cohen" in html
        assert "the agreement rollup is not built yet" in html  # no refresh ran: all counted live
    assert page_client(make_user("reviewer")).get(reverse("quality:agreement")).status_code == 403


def test_agreement_page_says_how_fresh_the_rollup_is(data) -> None:
    from quality.services.agreement import agreement_days_rebuild

    today = timezone.now().date()
    agreement_days_rebuild([today - dt.timedelta(days=1), today], built_through=today)
    html = page_client(make_user("manager")).get(reverse("quality:agreement")).content.decode()
    assert "Past whole days come from the agreement rollup, refreshed" in html
    assert "today and partial days are counted from the cases now" in html


@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.one_of(st.none(), st.sampled_from(["approve", "reject", "refer"])),
                         min_size=2, max_size=4), min_size=1, max_size=25))
def test_sql_pair_counts_give_the_same_figures_as_the_units(ratings) -> None:
    # The live path (pair counts aggregated in SQL) against the unit path (checked against the oracles).
    Decision.objects.all().delete()
    Case.objects.all().delete()
    point = InterventionPoint.objects.filter(slug="loan-review").first() or make_point(reviewers_required=2)
    reviewers = list(User.objects.filter(username__startswith="hyp-").order_by("username"))
    while len(reviewers) < 4:
        reviewers.append(make_reviewer(f"hyp-{len(reviewers)}"))
    units = [{reviewers[i]: label for i, label in enumerate(unit)} for unit in ratings]
    write_decisions(point, units)
    since, until = window()
    live = live_agreement(since=since, until=until)["overall"]
    expected = agreement_summary([{r.username: label for r, label in unit.items()} for unit in units])
    for key in ("units", "ratings", "raters", "fleiss_units", "kappa_band", "alpha_band"):
        assert live[key] == expected[key], key
    for key in ("percent", "kappa", "fleiss_kappa", "alpha"):
        assert (live[key] is None) == (expected[key] is None), key
        if expected[key] is not None:
            assert live[key] == pytest.approx(expected[key]), key
    live_pairs = {tuple(p["raters"]): (p["n"], p["kappa"]) for p in live["cohen_pairs"]}
    expected_pairs = {tuple(p["raters"]): (p["n"], p["kappa"]) for p in expected["cohen_pairs"]}
    assert live_pairs.keys() == expected_pairs.keys()
    for raters, (n, kappa) in expected_pairs.items():
        assert live_pairs[raters][0] == n
        assert (live_pairs[raters][1] is None) == (kappa is None)
        if kappa is not None:
            assert live_pairs[raters][1] == pytest.approx(kappa)


def test_a_reopened_auto_accepted_case_is_rated_like_any_other() -> None:
    # The live statement reads cases through case_multi_review_cover_idx, which leaves auto-accepted cases
    # out: it relies on such a case having no decision until a reopen re-queues it (and so changes
    # its status). Reopen one and have it decided: whatever ratings it gets are counted.
    from reviews.models import Resolution
    from reviews.services.decisions import case_reopen
    from tests.quality.helpers import decide, make_case

    point = make_point(reviewers_required=2)
    a, b, adjudicator = make_reviewer("ra"), make_reviewer("rb"), make_reviewer("radj", adjudicator=True)
    officer = make_user("compliance_officer")
    case = make_case(point, status="auto_accepted", resolution=Resolution.AUTO_ACCEPTED, routed=False,
                     reviewers_required=2, decided_at=timezone.now())
    case_reopen(actor=officer, case=case, reason="the applicant appealed")
    case.refresh_from_db()
    assert case.status != "auto_accepted"
    from reviews.services.queue import claim_next
    deciders = []
    for reviewer in (a, b, adjudicator):
        claimed = claim_next(reviewer=reviewer, point=point)
        if claimed is None:
            continue
        decide(reviewer, claimed, "reject")
        deciders.append(reviewer)
        case.refresh_from_db()
        if case.status == "decided":
            break
    ratings = Decision.objects.filter(case=case, is_adjudication=False).exclude(label=None).count()
    since, until = window()
    result = live_agreement(since=since, until=until)
    # Today a reopened case goes to the adjudicators (an adjudication is no rating); if reopening ever
    # lets reviewers rate it, those ratings must still be counted.
    assert deciders and case.status == "decided"
    assert result["overall"]["ratings"] == (ratings if ratings >= 2 else 0)


@pytest.mark.parametrize("id_slice", [10_000, 2])
def test_reviewer_agreement_counts_each_rating_against_every_co_reviewers(data, monkeypatch, id_slice) -> None:
    # ra's ratings: loans 2 of 3 pairs agree (an escalation is no rating); limits 3 of 6. The co-reviewers'
    # decisions are read by case id in slices: a slice of 2 must give the same figures.
    from quality import selectors

    monkeypatch.setattr(selectors, "_ID_SLICE", id_slice)
    _loans, _limits, (a, _b, _c), _, _ = data
    since, until = window()
    assert selectors.reviewer_agreement(reviewer_id=a.pk, since=since, until=until) == {
        "pairs": 9, "agreeing": 5, "agreement": 5 / 9}
    assert selectors.reviewer_agreement(reviewer_id=a.pk, since=until, until=until + dt.timedelta(days=1)) == {
        "pairs": 0, "agreeing": 0, "agreement": None}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the units statement is PostgreSQL's")
@hypothesis_settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=3), st.integers(min_value=1, max_value=2),
                          st.lists(st.one_of(st.none(), st.sampled_from(["approve", "reject", "refer"])),
                                   min_size=1, max_size=4)),
                min_size=1, max_size=20))
def test_units_statement_gives_the_pair_counts_of_the_portable_one(units) -> None:
    # PostgreSQL counts units (raters and labels as arrays) and Python expands them into pairs; the
    # portable statement self-joins the ratings. Both must give the same counts, over several days
    # and rounds, with escalations (no label) and single-rating units among them.
    from collections import Counter

    from quality.selectors import _live_pairs_sql, _pairs_of_units, _units_sql

    Decision.objects.all().delete()
    Case.objects.all().delete()
    point = InterventionPoint.objects.filter(slug="loan-review").first() or make_point(reviewers_required=2)
    reviewers = list(User.objects.filter(username__startswith="hyp-").order_by("-username"))
    while len(reviewers) < 4:
        reviewers.append(make_reviewer(f"hyp-{len(reviewers)}"))
    now = timezone.now()
    for days_ago, rounds, labels in units:
        case = write_decisions(point, [{reviewers[i]: label for i, label in enumerate(labels)}])[0]
        Case.objects.filter(pk=case.pk).update(received_at=now - dt.timedelta(days=days_ago, hours=1))
        if rounds == 2:  # a second round (after a reopen), rated by the same reviewers in reverse order
            for i, label in enumerate(reversed(labels)):
                Decision.objects.create(
                    case=case, reviewer=reviewers[i], round=2, outcome="escalate" if label is None else "override",
                    label=label, ai_shown=True, time_spent_ms=1, system_id=case.system_id,
                    prediction_label=case.prediction_label)
    window = dict(since=now - dt.timedelta(days=5), until=now, system_id=None, point_id=None)

    def counted(sql_params: tuple[str, list]) -> Counter:
        with connection.cursor() as cursor:
            cursor.execute(*sql_params)
            return Counter({tuple(row[:-1]): row[-1] for row in cursor.fetchall()})

    with connection.cursor() as cursor:
        cursor.execute(*_units_sql(**window))
        day_rows, rater_rows = _pairs_of_units(cursor.fetchall())
    days: Counter = Counter()
    for *key, count in day_rows:
        days[tuple(key)] += count
    raters: Counter = Counter()
    for *key, count in rater_rows:
        raters[tuple(key)] += count
    assert raters == counted(_live_pairs_sql(**window, group="raters"))
    # Day rows: the labels of a pair are in rater order in both (the statistics are symmetric anyway).
    assert days == counted(_live_pairs_sql(**window, group="days"))
