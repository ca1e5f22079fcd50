"""The case's system and AI label copied onto each decision, and the quality figures read from those copies.

The automation-bias figures (per reviewer, and every reviewer at once on the quality
index) are counted from ``Decision.system`` and ``Decision.prediction_label``; here
they are held against the figures computed as before, from the cases' own columns,
and every path that records a decision is held to fill the copies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import io
import json
import random
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from quality import selectors
from quality.selectors import (
    _bias_add,
    _bias_bucket,
    _bias_figures,
    _stratified_gap,
    automation_bias,
    gold_figures,
    gold_figures_by_reviewer,
    reviewers_overview,
)
from reviews.models import Case, CaseStatus, Decision, InterventionPoint
from reviews.services.escalations import case_officer_adjudicate
from reviews.services.queue import claim_next
from tests.quality.helpers import (
    answer_gold,
    decide,
    make_case,
    make_point,
    make_reviewer,
    make_system,
    make_user,
)

pytestmark = pytest.mark.django_db


def copies_match_cases() -> list[tuple[int, Any, Any]]:
    """Decisions whose copies differ from their case's columns (none, when every path fills them)."""
    return [
        (pk, (system_id, label), (case_system_id, case_label))
        for pk, system_id, label, case_system_id, case_label in Decision.objects.values_list(
            "pk", "system_id", "prediction_label", "case__system_id", "case__prediction_label")
        if (system_id, label) != (case_system_id, case_label)
    ]


# --- Every path that records a decision fills the copies -------------------------------------------------------


def test_classification_decisions_copy_the_cases_system_and_ai_label() -> None:
    point = make_point()
    reviewer = make_reviewer()
    for kwargs, label in (({}, "approve"), ({}, "reject"), ({"blind": True}, "reject"), ({"label": None}, "approve")):
        case = make_case(point, **kwargs)
        claimed = claim_next(reviewer=reviewer, point=point)
        assert claimed is not None and claimed.pk == case.pk
        decide(reviewer, claimed, label)
    decisions = list(Decision.objects.order_by("id").values_list("system_id", "prediction_label"))
    assert decisions == [(point.system_id, "approve")] * 3 + [(point.system_id, None)]
    assert copies_match_cases() == []


def test_an_officers_adjudication_copies_them_too() -> None:
    point = make_point()
    case = make_case(point)
    only = make_reviewer(adjudicator=True)
    claimed = claim_next(reviewer=only, point=point)
    assert claimed is not None
    from reviews.services.decisions import decision_record

    decision_record(reviewer=only, case=claimed, outcome="escalate", label=None, rationale="Forged payslip?")
    officer = make_user("compliance_officer")
    case_officer_adjudicate(officer=officer, case=case, outcome="override", label="reject", rationale="Forged.")
    adjudication = Decision.objects.get(case=case, reviewer=officer)
    assert (adjudication.system_id, adjudication.prediction_label) == (point.system_id, "approve")
    assert copies_match_cases() == []


def test_generation_and_action_decisions_copy_them_too() -> None:
    from tests.reviews.test_kinds import claim, generation_point, integration, submit_generation
    from tests.reviews.test_kinds import decide as decide_kind

    generation_point()
    created = submit_generation(integration(), "We guarantee delivery tomorrow.")
    reviewer = make_reviewer()
    claim(reviewer)
    response = decide_kind(reviewer, created["id"], outcome="edit", text="We expect delivery tomorrow.")
    assert response.status_code == 201, response.content
    decision = Decision.objects.get(case_id=created["id"])
    assert decision.system_id == Case.objects.get(pk=created["id"]).system_id
    assert copies_match_cases() == []


def test_demo_traffic_copies_them_too() -> None:
    from django.core.management import call_command

    call_command("demo_data", "--cases", "60", stdout=io.StringIO())
    assert Decision.objects.filter(is_adjudication=False).exists()
    assert Decision.objects.filter(is_adjudication=True).exists()
    assert copies_match_cases() == []


def test_the_migration_fills_the_decisions_recorded_before_it(monkeypatch) -> None:
    migration = importlib.import_module("reviews.migrations.0011_decision_case_copies")
    monkeypatch.setattr(migration, "BATCH", 2)  # several batches, one of them partial
    point = make_point()
    other = make_point(make_system("fraud-check"), "tx-review")
    reviewer = make_reviewer()
    for target, label in ((point, "approve"), (other, "reject"), (point, None), (other, "approve"), (point, "x")):
        case = make_case(target, label=label)
        Decision.objects.create(case=case, reviewer=reviewer, outcome="override", label="reject")
    assert Decision.objects.filter(system__isnull=True).count() == 5
    migration.copy_case_columns(apps, SimpleNamespace(connection=connection))
    assert copies_match_cases() == []
    assert Decision.objects.filter(system__isnull=True).count() == 0


# --- The figures from the copies equal the figures from the cases ----------------------------------------------


def case_based_automation_bias(reviewer: User, since: dt.datetime, until: dt.datetime) -> dict[str, Any]:
    """``automation_bias`` as it was computed before the copies: every decision joined to its case, in Python."""
    rows = Decision.objects.filter(
        reviewer=reviewer, is_adjudication=False, decided_at__gte=since, decided_at__lt=until,
    ).values_list("case__system__slug", "ai_shown", "outcome", "label", "case__prediction_label", "time_spent_ms")
    buckets: dict[str, dict[str, Any]] = {}
    overall = _bias_bucket()
    for system, ai_shown, outcome, label, ai_label, spent in rows:
        for bucket in (buckets.setdefault(system, _bias_bucket()), overall):
            _bias_add(bucket, ai_shown=ai_shown, outcome=outcome, label=label, ai_label=ai_label, spent=spent)
    figures = _bias_figures(overall)
    figures["automation_bias_gap"] = _stratified_gap(list(buckets.values()))
    return {"systems": [{"system": slug, **_bias_figures(bucket)} for slug, bucket in sorted(buckets.items())],
            "overall": figures}


def record(reviewer: User, point: InterventionPoint, *, ai_label: str | None, label: str | None, shown: bool,
           spent_ms: int, outcome: str | None = None, adjudication: bool = False,
           decided_at: dt.datetime | None = None) -> None:
    """One decided case and its decision, written directly with the copies (as the services write them)."""
    now = timezone.now()
    data = {"n": Case.objects.count(), "r": reviewer.pk}
    case = Case.objects.create(
        system=point.system, intervention_point=point, external_id=f"cp-{data['n']}-{now.timestamp()}", input=data,
        input_hash=hashlib.sha256(json.dumps(data).encode()).hexdigest(), prediction_label=ai_label,
        prediction_confidence=0.5, status=CaseStatus.DECIDED, resolution="reviewed", routed=True,
        routing_reasons=["confidence_below"], blind=not shown, received_at=now, decided_at=now, final_label=label,
    )
    Decision.objects.create(
        case=case, reviewer=reviewer, label=label, ai_shown=shown, time_spent_ms=spent_ms,
        outcome=outcome or ("approve" if label == ai_label else "override"), is_adjudication=adjudication,
        decided_at=decided_at or now, system_id=case.system_id, prediction_label=case.prediction_label,
    )


def same_figures(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal, the gap up to float rounding (the per-system gaps are summed in another order)."""
    gap = expected["automation_bias_gap"]
    assert actual["automation_bias_gap"] == (None if gap is None else pytest.approx(gap))
    assert {k: v for k, v in actual.items() if k != "automation_bias_gap"} == {
        k: v for k, v in expected.items() if k != "automation_bias_gap"}


def test_automation_bias_and_the_overview_equal_the_case_based_figures(settings) -> None:
    settings.HITL_RUBBER_STAMP_TIME_FLOOR_S = 5.0
    settings.HITL_RUBBER_STAMP_MIN_DECISIONS = 30
    credit = make_point()
    fraud = make_point(make_system("fraud-check"), "tx-review")
    rng = random.Random(15)
    now = timezone.now()
    since, until = now - dt.timedelta(days=1), now + dt.timedelta(minutes=1)
    reviewers = [make_reviewer() for _ in range(4)]
    for reviewer in reviewers:
        for _ in range(rng.randrange(20, 60)):
            ai_label = rng.choice(["approve", "reject", None])
            escalated = rng.random() < 0.1
            label = None if escalated and rng.random() < 0.5 else rng.choice(["approve", "reject"])
            record(reviewer, rng.choice([credit, fraud]), ai_label=ai_label, label=label,
                   shown=ai_label is not None and rng.random() < 0.7, spent_ms=rng.randrange(1000, 9000),
                   outcome="escalate" if escalated else None, adjudication=rng.random() < 0.05,
                   decided_at=now - dt.timedelta(days=rng.choice([0, 0, 0, 3])))
    # Median exactly on the floor's edge: 30 shown decisions, 15 under the floor and 15 over it, so only the
    # two middle times decide: 4,900 and 5,000 ms (median 4,950: flagged); 4,000 and 6,001 ms (5,000.5: not).
    near, far = make_reviewer(), make_reviewer()
    for reviewer, (under, over) in ((near, (4900, 5000)), (far, (4000, 6001))):
        for index in range(30):
            record(reviewer, credit if index % 2 else fraud, ai_label="approve", label="reject", shown=True,
                   spent_ms=(under - index * 10) if index < 15 else (over + index * 10 - 150))
    idle = make_reviewer()
    everyone = [*reviewers, near, far, idle]

    for reviewer in everyone:
        expected = case_based_automation_bias(reviewer, since, until)
        actual = automation_bias(reviewer_id=reviewer.pk, since=since, until=until)
        assert [s["system"] for s in actual["systems"]] == [s["system"] for s in expected["systems"]]
        for got, want in zip(actual["systems"], expected["systems"], strict=True):
            same_figures(got, want)
        same_figures(actual["overall"], expected["overall"])

    rows = {row["username"]: row for row in reviewers_overview(since=since, until=until)}
    for reviewer in everyone:
        expected = case_based_automation_bias(reviewer, since, until)["overall"]
        row = rows[reviewer.username]
        gap = expected["automation_bias_gap"]
        assert row["automation_bias_gap"] == (None if gap is None else pytest.approx(gap)), reviewer
        assert row["approval_rate"] == expected["approval_rate"], reviewer
        assert row["rubber_stamp_flags"] == expected["rubber_stamp_flags"], reviewer
    assert case_based_automation_bias(near, since, until)["overall"]["median_time_spent_s"] == 4.95
    assert rows[near.username]["rubber_stamp_flags"] == ["time_spent"]
    assert rows[far.username]["rubber_stamp_flags"] == []


def test_the_overview_computes_an_exact_median_only_on_the_floors_edge(settings, monkeypatch) -> None:
    settings.HITL_RUBBER_STAMP_TIME_FLOOR_S = 5.0
    point = make_point()
    clear, edge = make_reviewer(), make_reviewer()
    for index in range(31):
        record(clear, point, ai_label="approve", label="approve", shown=True, spent_ms=1000 + index)
    for index in range(30):
        record(edge, point, ai_label="approve", label="approve", shown=True, spent_ms=4000 if index < 15 else 7000)
    asked: list[list[int]] = []
    median_times = selectors._median_times_shown

    def spy(decisions: Any, *, per_system: bool) -> Any:
        asked.append(sorted(set(decisions.values_list("reviewer_id", flat=True))))
        return median_times(decisions, per_system=per_system)

    monkeypatch.setattr(selectors, "_median_times_shown", spy)
    rows = {row["username"]: row for row in reviewers_overview()}
    assert asked == [[edge.pk]]
    assert rows[clear.username]["rubber_stamp_flags"] == ["approval_rate", "time_spent"]
    assert rows[edge.username]["rubber_stamp_flags"] == ["approval_rate"]  # median 5,500 ms


# --- Gold figures of every reviewer in one query ------------------------------------------------------------------


def test_gold_figures_of_every_reviewer_at_once_equal_each_reviewers(monkeypatch, settings) -> None:
    settings.HITL_GOLD_WINDOW = 3
    point = make_point(gold_rate=0.5)
    make_case(point)
    first, second, third, none = make_reviewer(), make_reviewer(), make_reviewer(), make_reviewer()
    answer_gold(monkeypatch, first, point, ["reject", "approve", "reject", "approve", "approve"])
    answer_gold(monkeypatch, second, point, ["reject", "reject"])
    answer_gold(monkeypatch, third, point, ["approve"])
    ids = [first.pk, second.pk, third.pk, none.pk]
    batched = gold_figures_by_reviewer(reviewer_ids=ids)
    assert batched == {pk: gold_figures(reviewer_id=pk) for pk in ids}
    assert batched[first.pk] == {"gold_answered": 3, "gold_correct": 1, "gold_accuracy": 1 / 3, "gold_window": 3}
    assert batched[none.pk]["gold_answered"] == 0 and batched[none.pk]["gold_accuracy"] is None
    assert gold_figures_by_reviewer(reviewer_ids=ids, window=10) == {
        pk: gold_figures(reviewer_id=pk, window=10) for pk in ids}


def test_the_quality_index_reads_in_a_fixed_number_of_queries(monkeypatch) -> None:
    """No query per reviewer: the count is the same for one reviewer and for four (gold answers included)."""
    point = make_point(gold_rate=0.5)
    make_case(point)

    def add_reviewer() -> None:
        reviewer = make_reviewer()
        answer_gold(monkeypatch, reviewer, point, ["reject"])
        record(reviewer, point, ai_label="approve", label="approve", shown=True, spent_ms=100)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            rows = reviewers_overview()
        assert all(row["gold_answered"] == 1 for row in rows)
        return len(captured)

    add_reviewer()
    alone = queries()
    for _ in range(3):
        add_reviewer()
    # Profiles, their qualifications, the grouped count (SAVEPOINT, SET LOCAL jit, count, RELEASE), the gold answers.
    assert queries() == alone == 7


def test_the_daily_task_fills_decisions_written_without_copies(settings) -> None:
    """A process still on the code from before migration 0011 (a deploy) writes decisions without the copies."""
    from reviews.tasks_queue import fill_decision_copies_task

    point = make_point()
    other = make_point(make_system("fraud-check"), "tx-review")
    reviewer = make_reviewer()
    for target, label in ((point, "approve"), (other, None), (other, "reject")):
        Decision.objects.create(case=make_case(target, label=label), reviewer=reviewer, outcome="override",
                                label="reject")
    filled = Decision.objects.exclude(system__isnull=True).count()
    assert Decision.objects.filter(system__isnull=True).count() == 3
    assert fill_decision_copies_task.apply().get() == 3
    assert copies_match_cases() == []
    assert Decision.objects.exclude(system__isnull=True).count() == filled + 3
    assert fill_decision_copies_task.apply().get() == 0
    schedule = settings.CELERY_BEAT_SCHEDULE["reviews-fill-decision-copies"]
    assert schedule["task"] == fill_decision_copies_task.name
