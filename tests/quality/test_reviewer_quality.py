"""The reviewer quality endpoint and pages: gold figures, agreement, automation bias, rubber-stamp flags."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from quality.models import ReviewerQualitySnapshot
from quality.selectors import automation_bias
from quality.services.snapshots import snapshot_reviewer_quality
from quality.tasks import snapshot_reviewer_quality_task
from reviews.models import Case, CaseStatus, Decision, InterventionPoint
from tests.quality.helpers import (
    answer_gold,
    client_for,
    decided_multi_case,
    make_case,
    make_point,
    make_reviewer,
    make_system,
    make_user,
    page_client,
)

pytestmark = pytest.mark.django_db


def url(username: str) -> str:
    return f"/api/v1/reviewers/{username}/quality/"


def decisions(reviewer: User, point: InterventionPoint, rows: list[tuple[bool, str, str]], *,
              spent_ms: int = 10_000) -> None:
    """One decided case per row ``(ai_shown, ai_label, reviewer_label)``."""
    now = timezone.now()
    for index, (shown, ai_label, label) in enumerate(rows):
        data = {"i": index}
        case = Case.objects.create(
            system=point.system, intervention_point=point, external_id=f"ab-{reviewer.pk}-{index}-{now.timestamp()}",
            input=data, input_hash=hashlib.sha256(json.dumps(data).encode()).hexdigest(),
            prediction_label=ai_label, prediction_confidence=0.5, status=CaseStatus.DECIDED, resolution="reviewed",
            routed=True, routing_reasons=["confidence_below"], blind=not shown, received_at=now, decided_at=now,
            final_label=label,
        )
        Decision.objects.create(case=case, reviewer=reviewer, outcome="approve" if label == ai_label else "override",
                                label=label, ai_shown=shown, time_spent_ms=spent_ms, decided_at=now,
                                system_id=case.system_id, prediction_label=case.prediction_label)


# --- Roles --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["manager", "compliance_officer", "admin"])
def test_oversight_roles_read_any_reviewer(api_client_for, role: str) -> None:
    reviewer = make_reviewer()
    response = api_client_for(role).get(url(reviewer.username))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert {"gold_accuracy", "gold_answered", "agreement", "status", "qualifications"} <= body.keys()
    assert body["status"] == "active" and body["qualifications"] == ["credit-scoring"]
    assert body["gold_accuracy"] is None and body["gold_answered"] == 0 and body["agreement"] is None


def test_a_reviewer_reads_only_themself(api_client_for, anon_client) -> None:
    reviewer, other = make_reviewer(), make_reviewer()
    assert client_for(reviewer).get(url(reviewer.username)).status_code == 200
    assert client_for(reviewer).get(url(other.username)).status_code == 403
    assert client_for(reviewer).get(url("nobody")).status_code == 403  # no existence leak
    assert api_client_for("integration").get(url(reviewer.username)).status_code == 403
    assert anon_client.get(url(reviewer.username)).status_code == 401
    assert api_client_for("manager").get(url("nobody")).status_code == 404
    assert api_client_for("manager").get(url(reviewer.username), {"from": "yesterday"}).json().keys() == {"from"}


# --- Gold figures: live for managers, daily snapshot for the reviewer ---------------------------------------


def test_reviewer_sees_gold_figures_only_from_the_daily_snapshot(api_client_for, monkeypatch) -> None:
    point = make_point(gold_rate=0.5)
    make_case(point)
    reviewer = make_reviewer()
    manager = api_client_for("manager")
    answer_gold(monkeypatch, reviewer, point, ["reject", "approve"])
    own = client_for(reviewer).get(url(reviewer.username)).json()
    assert own["gold_answered"] == 0 and own["gold_accuracy"] is None and own["gold_as_of"] is None
    assert manager.get(url(reviewer.username)).json()["gold_accuracy"] == 0.5

    assert snapshot_reviewer_quality_task.delay().get() == 1
    own = client_for(reviewer).get(url(reviewer.username)).json()
    assert (own["gold_answered"], own["gold_accuracy"]) == (2, 0.5)
    assert own["gold_as_of"] == timezone.localdate().isoformat()

    # A new answer moves the live figure at once, the reviewer's own view only at the next snapshot.
    answer_gold(monkeypatch, reviewer, point, ["reject"])
    assert manager.get(url(reviewer.username)).json()["gold_answered"] == 3
    assert client_for(reviewer).get(url(reviewer.username)).json()["gold_answered"] == 2
    assert snapshot_reviewer_quality() == 1  # same day: an upsert
    assert ReviewerQualitySnapshot.objects.count() == 1
    assert client_for(reviewer).get(url(reviewer.username)).json()["gold_answered"] == 3


def test_the_reviewers_own_page_shows_the_snapshot_not_live_gold(monkeypatch) -> None:
    point = make_point(gold_rate=0.5)
    make_case(point)
    reviewer = make_reviewer()
    answer_gold(monkeypatch, reviewer, point, ["reject"])
    page = page_client(reviewer).get(reverse("quality:reviewer", args=[reviewer.username]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "no snapshot yet" in html and "100.0 %" not in html
    assert "Suspend reviewer" not in html and "Record a training" not in html
    assert page_client(reviewer).get(reverse("quality:index")).url == reverse(
        "quality:reviewer", args=[reviewer.username])
    other = make_reviewer()
    assert page_client(reviewer).get(reverse("quality:reviewer", args=[other.username])).status_code == 403


# --- Agreement with co-reviewers -------------------------------------------------------------------------


def test_agreement_with_co_reviewers_on_multi_review_cases(api_client_for) -> None:
    point = make_point(reviewers_required=2)
    a, b, c = make_reviewer(), make_reviewer(), make_reviewer()
    decided_multi_case(point, [a, b], ["approve", "approve"])
    decided_multi_case(point, [a, c], ["approve", "reject"])
    decided_multi_case(point, [b, c], ["reject", "reject"])
    body = api_client_for("manager").get(url(a.username)).json()
    assert body["agreement"] == 0.5 and body["agreement_pairs"] == 2
    assert api_client_for("manager").get(url(c.username)).json()["agreement"] == 0.5


# --- Automation bias and rubber-stamp flags -------------------------------------------------------------------


def test_automation_bias_gap_per_system(api_client_for) -> None:
    credit = make_point()
    fraud = make_point(credit.system, "limit-review")  # a second point of the same system
    reviewer = make_reviewer()
    # Shown: agrees with the AI on 9 of 10; hidden: on 5 of 10 → gap +0.4.
    decisions(reviewer, credit, [(True, "approve", "approve")] * 9 + [(True, "approve", "reject")])
    decisions(reviewer, fraud, [(False, "approve", "approve")] * 5 + [(False, "approve", "reject")] * 5)
    figures = automation_bias(reviewer_id=reviewer.pk, since=timezone.now() - dt.timedelta(days=1),
                              until=timezone.now() + dt.timedelta(minutes=1))
    overall = figures["overall"]
    assert overall["agreement_ai_shown"] == 0.9 and overall["agreement_ai_hidden"] == 0.5
    assert overall["automation_bias_gap"] == pytest.approx(0.4)
    assert [s["system"] for s in figures["systems"]] == ["credit-scoring"]
    body = api_client_for("compliance_officer").get(url(reviewer.username)).json()
    assert body["automation_bias"]["overall"]["automation_bias_gap"] == pytest.approx(0.4)
    # Blind decisions say nothing about approving a visible suggestion.
    assert overall["approval_rate"] == 0.9


def test_overall_gap_agrees_with_the_per_system_gaps() -> None:
    """No system shows a gap, so neither does the overall figure (pooled counts would: Simpson's paradox)."""
    credit = make_point()
    fraud = make_point(make_system("fraud-check"), "tx-review")
    reviewer = make_reviewer()
    yes, no = ("approve", "approve"), ("approve", "reject")
    # Credit: agreement 0.9 shown and hidden (mostly shown); fraud: 0.5 shown and hidden (mostly hidden).
    decisions(reviewer, credit, [(True, *yes)] * 18 + [(True, *no)] * 2 + [(False, *yes)] * 9 + [(False, *no)])
    decisions(reviewer, fraud, [(True, *yes)] * 5 + [(True, *no)] * 5 + [(False, *yes)] * 10 + [(False, *no)] * 10)
    figures = automation_bias(reviewer_id=reviewer.pk, since=timezone.now() - dt.timedelta(days=1),
                              until=timezone.now() + dt.timedelta(minutes=1))

    assert [s["automation_bias_gap"] for s in figures["systems"]] == [pytest.approx(0.0), pytest.approx(0.0)]
    overall = figures["overall"]
    # The pooled rates differ (23/30 vs 19/30) only because the systems' blind shares differ.
    assert overall["agreement_ai_shown"] == pytest.approx(23 / 30)
    assert overall["agreement_ai_hidden"] == pytest.approx(19 / 30)
    assert overall["automation_bias_gap"] == pytest.approx(0.0)


def test_overall_gap_is_the_weighted_mean_of_system_gaps() -> None:
    credit = make_point()
    fraud = make_point(make_system("fraud-check"), "tx-review")
    reviewer = make_reviewer()
    yes, no = ("approve", "approve"), ("approve", "reject")
    # Credit: 10 shown (all agree) vs 10 hidden (5 agree): gap 0.5, weight 5. Fraud: only shown: no weight.
    decisions(reviewer, credit, [(True, *yes)] * 10 + [(False, *yes)] * 5 + [(False, *no)] * 5)
    decisions(reviewer, fraud, [(True, *no)] * 10)
    figures = automation_bias(reviewer_id=reviewer.pk, since=timezone.now() - dt.timedelta(days=1),
                              until=timezone.now() + dt.timedelta(minutes=1))
    assert figures["overall"]["automation_bias_gap"] == pytest.approx(0.5)


def test_rubber_stamp_flags(settings) -> None:
    point = make_point()
    now = timezone.now()
    since, until = now - dt.timedelta(days=1), now + dt.timedelta(minutes=1)
    stamper, careful, quick, few = make_reviewer(), make_reviewer(), make_reviewer(), make_reviewer()
    decisions(stamper, point, [(True, "approve", "approve")] * 30, spent_ms=2000)
    decisions(careful, point, [(True, "approve", "approve")] * 28 + [(True, "approve", "reject")] * 2)
    decisions(quick, point, [(True, "approve", "approve")] * 20 + [(True, "approve", "reject")] * 10, spent_ms=1500)
    decisions(few, point, [(True, "approve", "approve")] * 29, spent_ms=1000)
    flags = {user.username: automation_bias(reviewer_id=user.pk, since=since, until=until)["overall"]
             for user in (stamper, careful, quick, few)}
    assert flags[stamper.username]["rubber_stamp_flags"] == ["approval_rate", "time_spent"]
    assert flags[stamper.username]["rubber_stamp"] is True
    assert flags[careful.username]["rubber_stamp_flags"] == []  # 28/30 = 0.933 < 0.98
    assert flags[quick.username]["rubber_stamp_flags"] == ["time_spent"]
    assert flags[few.username]["rubber_stamp_flags"] == []  # 29 decisions: below the minimum
    assert flags[stamper.username]["median_time_spent_s"] == 2.0
    settings.HITL_RUBBER_STAMP_TIME_FLOOR_S = 1.0
    assert automation_bias(reviewer_id=quick.pk, since=since, until=until)["overall"]["rubber_stamp_flags"] == []


def test_overview_counts_in_sql_what_automation_bias_counts_per_reviewer() -> None:
    """The quality index's grouped counts are an optimisation: every reviewer's figures equal the oracle."""
    from quality.selectors import reviewers_overview

    credit = make_point()
    fraud = make_point(make_system("fraud-check"), "tx-review")
    now = timezone.now()
    since, until = now - dt.timedelta(days=1), now + dt.timedelta(minutes=1)
    a, b, c, idle = make_reviewer(), make_reviewer(), make_reviewer(), make_reviewer()
    yes, no = ("approve", "approve"), ("approve", "reject")
    decisions(a, credit, [(True, *yes)] * 31 + [(False, *no)] * 3, spent_ms=1500)
    decisions(a, fraud, [(True, *no)] * 4 + [(False, *yes)] * 6, spent_ms=4000)
    decisions(b, credit, [(True, *yes)] * 3 + [(True, *no)] * 1 + [(False, *yes)] * 2, spent_ms=12_000)
    decisions(b, fraud, [(True, None, "approve")] * 2)  # labeling without a prediction: nothing to agree with
    decisions(c, fraud, [(True, *yes)] * 2, spent_ms=7000)
    # c escalates one shown case (no verdict, still a decision shown the AI), and decided one outside the period.
    first = Decision.objects.filter(reviewer=c).order_by("id").first()
    Decision.objects.filter(pk=first.pk).update(outcome="escalate", time_spent_ms=1000)
    decisions(c, credit, [(True, *no)] * 5)
    Decision.objects.filter(reviewer=c, case__system=credit.system).update(decided_at=now - dt.timedelta(days=3))

    rows = {row["username"]: row for row in reviewers_overview(since=since, until=until)}
    for user in (a, b, c, idle):
        oracle = automation_bias(reviewer_id=user.pk, since=since, until=until)["overall"]
        row = rows[user.username]
        assert row["automation_bias_gap"] == (pytest.approx(oracle["automation_bias_gap"])
                                              if oracle["automation_bias_gap"] is not None else None), user
        assert row["approval_rate"] == oracle["approval_rate"], user
        assert row["rubber_stamp_flags"] == oracle["rubber_stamp_flags"], user
    assert rows[a.username]["rubber_stamp_flags"] == ["time_spent"]  # median 1.5 s over 35 shown decisions
    assert rows[idle.username]["approval_rate"] is None and rows[idle.username]["automation_bias_gap"] is None


def test_quality_index_lists_reviewers_for_managers_and_officers() -> None:
    point = make_point()
    reviewer = make_reviewer("rev-stamp")
    decisions(reviewer, point, [(True, "approve", "approve")] * 30, spent_ms=500)
    for role in ("manager", "compliance_officer", "admin"):
        response = page_client(make_user(role)).get(reverse("quality:index"))
        assert response.status_code == 200
        html = response.content.decode()
        assert "rev-stamp" in html and "rubber stamp" in html
    assert page_client(make_user("integration")).get(reverse("quality:index")).status_code == 403
    assert page_client(make_user("manager")).get(reverse("quality:reviewer", args=["rev-stamp"])).status_code == 200


def test_quality_pages_need_a_login(client) -> None:
    for name in ("quality:index", "quality:agreement", "quality:calibration", "quality:gold", "quality:thresholds"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/accounts/login/" in response.url
