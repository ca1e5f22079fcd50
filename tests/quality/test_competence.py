"""The competence lifecycle: automatic suspension (gold accuracy, expired training), reinstatement, audit."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from hitl_portal.actors import SYSTEM_USERNAME
from quality.services.competence import competence_findings, enforce_competence
from quality.tasks import enforce_competence_task
from reviews.models import ReviewerProfile, TrainingRecord
from reviews.services.errors import ReviewerNotAllowed
from reviews.services.queue import claim_next
from tests.quality.helpers import (
    answer_gold,
    client_for,
    make_case,
    make_point,
    make_reviewer,
    make_user,
    page_client,
)

pytestmark = pytest.mark.django_db

CLAIM_URL = "/api/v1/queue/claim/"


@pytest.fixture(autouse=True)
def _window(settings) -> None:
    settings.HITL_COMPETENCE_WINDOW = 4
    settings.HITL_COMPETENCE_MIN_ACCURACY = 0.8


def profile_of(user) -> ReviewerProfile:
    return ReviewerProfile.objects.get(user=user)


def add_training(user, *, expires: dt.date | None, kind: str = "ai_literacy") -> TrainingRecord:
    today = timezone.localdate()
    return TrainingRecord.objects.create(reviewer=profile_of(user), title="AI literacy", kind=kind,
                                         completed_at=today - dt.timedelta(days=400), expires_at=expires)


def test_low_gold_accuracy_suspends_at_the_next_claim_and_says_why(monkeypatch) -> None:
    point = make_point(gold_rate=0.5)
    make_case(point)
    reviewer = make_reviewer()
    answer_gold(monkeypatch, reviewer, point, ["approve", "approve", "reject", "approve"])  # 1 of 4
    response = client_for(reviewer).post(CLAIM_URL, {}, format="json")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "reviewer_suspended"
    assert "Gold accuracy 25%" in body["detail"] and "below 80%" in body["detail"]
    profile = profile_of(reviewer)
    assert profile.status == "suspended" and "Gold accuracy" in profile.status_reason
    [event] = AuditEvent.objects.filter(action="reviewer.suspended")
    assert event.actor_name == SYSTEM_USERNAME and event.actor_type == "system"
    assert "Gold accuracy" in event.reason
    # Suspended: every later claim gets nothing and says why.
    again = client_for(reviewer).post(CLAIM_URL, {}, format="json")
    assert again.status_code == 403 and "Gold accuracy" in again.json()["detail"]
    assert AuditEvent.objects.filter(action="reviewer.suspended").count() == 1


def test_only_a_full_window_below_the_threshold_counts(monkeypatch) -> None:
    point = make_point(gold_rate=0.5)
    real = make_case(point)
    partial = make_reviewer()
    answer_gold(monkeypatch, partial, point, ["approve", "approve", "approve"])  # 0 of 3: window not full
    assert competence_findings(profile_of(partial)) == []
    weak = make_reviewer()
    answer_gold(monkeypatch, weak, point, ["reject", "reject", "reject", "approve"])  # 3 of 4 = 0.75 < 0.8
    assert [f.code for f in competence_findings(profile_of(weak))] == ["gold_accuracy"]
    good = make_reviewer()
    answer_gold(monkeypatch, good, point, ["reject", "reject", "reject", "reject"])
    assert competence_findings(profile_of(good)) == []
    assert claim_next(reviewer=good).pk == real.pk


def test_expired_required_training_closes_the_queue_without_suspending() -> None:
    point = make_point()
    make_case(point)
    reviewer = make_reviewer(trained=False)
    add_training(reviewer, expires=timezone.localdate() - dt.timedelta(days=1))
    response = client_for(reviewer).post(CLAIM_URL, {}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "training_required"
    assert "ai_literacy" in response.json()["detail"]
    # A gate, not a suspension: renewing the record is enough to claim again.
    assert profile_of(reviewer).status == "active"
    assert not AuditEvent.objects.filter(action="reviewer.suspended").exists()


@pytest.mark.parametrize(
    ("expiries", "claimable"),
    [
        ([], False),  # nothing recorded yet: the queue stays closed (Art. 4, Art. 26(2))
        ([dt.timedelta(days=30)], True),
        ([-dt.timedelta(days=30), dt.timedelta(days=1)], True),  # renewed
        ([-dt.timedelta(days=30), None], True),  # an open-ended record
        ([dt.timedelta(days=0)], True),  # valid through today
    ],
)
def test_valid_training_opens_the_queue_and_none_never_suspends(expiries: list, claimable: bool) -> None:
    point = make_point()
    case = make_case(point)
    reviewer = make_reviewer(trained=False)
    for delta in expiries:
        add_training(reviewer, expires=None if delta is None else timezone.localdate() + delta)
    if claimable:
        assert claim_next(reviewer=reviewer).pk == case.pk
    else:
        with pytest.raises(ReviewerNotAllowed):
            claim_next(reviewer=reviewer)
    assert profile_of(reviewer).status == "active"


def test_other_training_kinds_are_not_required() -> None:
    reviewer = make_reviewer()
    add_training(reviewer, expires=timezone.localdate() - dt.timedelta(days=5), kind="product_refresher")
    assert competence_findings(profile_of(reviewer)) == []


def test_beat_task_suspends_and_is_idempotent(monkeypatch) -> None:
    point = make_point(gold_rate=0.5)
    make_case(point)
    weak, lapsed, fine = make_reviewer(), make_reviewer(trained=False), make_reviewer(trained=False)
    answer_gold(monkeypatch, weak, point, ["approve"] * 4)
    add_training(lapsed, expires=timezone.localdate() - dt.timedelta(days=2))
    add_training(fine, expires=timezone.localdate() + dt.timedelta(days=2))
    # Gold accuracy suspends; a lapsed training only closes the queue (training_required at claim).
    assert enforce_competence_task.delay().get() == 1
    assert {p.user.username: p.status for p in ReviewerProfile.objects.select_related("user")} == {
        weak.username: "suspended", lapsed.username: "active", fine.username: "active"}
    assert enforce_competence() == 0
    assert AuditEvent.objects.filter(action="reviewer.suspended").count() == 1


def test_reinstatement_by_an_officer_is_not_undone_by_old_answers(api_client_for, monkeypatch) -> None:
    point = make_point(gold_rate=0.5)
    real = make_case(point)
    reviewer = make_reviewer()
    answer_gold(monkeypatch, reviewer, point, ["approve"] * 4)
    assert enforce_competence() == 1
    officer = api_client_for("compliance_officer")
    response = officer.patch(f"/api/v1/reviewers/{reviewer.username}/",
                             {"status": "active", "reason": "Retrained on the credit guidelines."}, format="json")
    assert response.status_code == 200, response.json()
    event = AuditEvent.objects.get(action="reviewer.reinstated")
    assert event.actor_id == officer.user.pk and event.reason == "Retrained on the credit guidelines."
    assert enforce_competence() == 0
    claimed = claim_next(reviewer=reviewer)
    assert claimed is not None and claimed.pk == real.pk


def test_officer_suspends_and_reinstates_on_the_quality_page() -> None:
    make_point()
    reviewer = make_reviewer()
    officer = make_user("compliance_officer")
    client = page_client(officer)
    url = reverse("quality:reviewer", args=[reviewer.username])
    page = client.get(url).content.decode()
    assert "Suspend reviewer" in page
    missing_reason = client.post(url, {"action": "status", "status": "suspended", "reason": ""})
    assert missing_reason.status_code == 400 and profile_of(reviewer).status == "active"
    response = client.post(url, {"action": "status", "status": "suspended", "reason": "Rubber-stamping."})
    assert response.status_code == 302 and profile_of(reviewer).status == "suspended"
    page = client.get(url).content.decode()
    assert "Reinstate reviewer" in page and "Rubber-stamping." in page
    response = client.post(url, {"action": "status", "status": "active", "reason": "Coached."})
    assert response.status_code == 302 and profile_of(reviewer).status == "active"
    actions = list(AuditEvent.objects.filter(action__startswith="reviewer.").order_by("id")
                   .values_list("action", "actor_id"))
    assert actions == [("reviewer.suspended", officer.pk), ("reviewer.reinstated", officer.pk)]


def test_training_is_recorded_on_the_page_and_through_the_api(api_client_for) -> None:
    make_point()
    reviewer = make_reviewer(trained=False)
    officer = make_user("compliance_officer")
    url = reverse("quality:reviewer", args=[reviewer.username])
    response = page_client(officer).post(url, {
        "action": "training", "title": "AI literacy 2026", "kind": "ai_literacy",
        "completed_at": "2026-01-10", "expires_at": "2027-01-10", "system": "credit-scoring",
    })
    assert response.status_code == 302
    record = TrainingRecord.objects.get(title="AI literacy 2026")
    assert record.system.slug == "credit-scoring" and record.expires_at == dt.date(2027, 1, 10)
    event = AuditEvent.objects.get(action="reviewer.training_recorded")
    assert event.actor_id == officer.pk and json.loads(event.payload)["after"]["training_record"] == record.pk
    bad = page_client(officer).post(url, {"action": "training", "title": "x", "kind": "ai_literacy",
                                          "completed_at": "2026-01-10", "expires_at": "2025-01-10"})
    assert bad.status_code == 400

    client = api_client_for("compliance_officer")
    api_url = f"/api/v1/reviewers/{reviewer.username}/training-records/"
    created = client.post(api_url, {"title": "Refresher", "completed_at": "2026-02-01"}, format="json")
    assert created.status_code == 201 and created.json()["valid"] is True and created.json()["kind"] == "ai_literacy"
    assert client.post(api_url, {"title": "x", "completed_at": "2026-02-01", "expires_at": "2026-01-01"},
                       format="json").json().keys() == {"expires_at"}
    assert client.post(api_url, {"title": "x", "completed_at": "nope"}, format="json").status_code == 400
    assert client.post(api_url, {"title": "x", "completed_at": "2026-02-01", "system": "nope"},
                       format="json").json().keys() == {"system"}
    listed = client.get(api_url).json()
    assert [r["title"] for r in listed["results"]] == ["Refresher", "AI literacy 2026"]
    assert AuditEvent.objects.filter(action="reviewer.training_recorded").count() == 2


def test_training_records_api_roles(api_client_for, anon_client) -> None:
    reviewer = make_reviewer()
    url = f"/api/v1/reviewers/{reviewer.username}/training-records/"
    data = {"title": "x", "completed_at": "2026-02-01"}
    assert api_client_for("manager").post(url, data, format="json").status_code == 403
    assert client_for(reviewer).post(url, data, format="json").status_code == 403
    assert anon_client.post(url, data, format="json").status_code == 401
    assert api_client_for("manager").get(url).status_code == 200
    assert client_for(reviewer).get(url).status_code == 200
    assert client_for(make_reviewer()).get(url).status_code == 403
    assert api_client_for("integration").get(url).status_code == 403
    assert api_client_for("compliance_officer").post("/api/v1/reviewers/nobody/training-records/", data,
                                                     format="json").status_code == 404


@pytest.mark.parametrize("role", ["manager", "reviewer"])
def test_only_officers_change_standing_on_the_page(role: str) -> None:
    reviewer = make_reviewer()
    user = reviewer if role == "reviewer" else make_user(role)
    response = page_client(user).post(reverse("quality:reviewer", args=[reviewer.username]),
                                      {"action": "status", "status": "suspended", "reason": "x"})
    assert response.status_code == 403
    assert profile_of(reviewer).status == "active"


def test_a_pass_is_kept_until_the_next_gold_answer_or_a_change_of_rules(monkeypatch, settings) -> None:
    point = make_point(gold_rate=0.5)
    for _ in range(3):
        make_case(point)
    reviewer = make_reviewer()
    assert claim_next(reviewer=reviewer) is not None
    passed = profile_of(reviewer).competence_verdict
    assert passed == "ok:4:0.8"  # the claim read the gold answers once and kept the pass
    # A gold answer clears it: the next claim reads the answers again and suspends (1 of 4 right).
    answer_gold(monkeypatch, reviewer, point, ["approve", "approve", "reject", "approve"])
    assert profile_of(reviewer).competence_verdict == ""
    with pytest.raises(ReviewerNotAllowed):
        claim_next(reviewer=reviewer)
    assert profile_of(reviewer).status == "suspended"
    # Under other rules a stored pass does not count.
    other = make_reviewer()
    assert claim_next(reviewer=other) is not None
    settings.HITL_COMPETENCE_WINDOW = 2
    ReviewerProfile.objects.filter(user=other).update(competence_verdict="ok:4:0.8")
    assert claim_next(reviewer=other) is not None
    assert profile_of(other).competence_verdict == "ok:2:0.8"
