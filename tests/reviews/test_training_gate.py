"""Art. 26(2): a reviewer without a valid required training cannot claim the system's cases."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from hitl_portal.models import Notification
from reviews.models import TrainingRecord
from reviews.services.errors import ReviewerNotAllowed
from reviews.services.people import training_expiry_alerts, training_record_add
from reviews.services.queue import claim_next
from tests.reviews.factories import ingest, make_system_with_point
from tests.reviews.queue_helpers import client_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued():
    system, _ = make_system_with_point(confidence_below=0.9)
    integration = make_user("integration", systems=[system.slug])
    case = ingest(integration, external_id="c-1", confidence=0.2)
    return system, case


def test_an_untrained_reviewer_gets_403_training_required_naming_the_training(queued) -> None:
    system, _ = queued
    reviewer = make_user("reviewer", systems=[system.slug], trained=False)
    response = client_for(reviewer).post("/api/v1/queue/claim/", {}, format="json")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "training_required" and "ai_literacy" in body["detail"]


def test_an_expired_training_closes_the_queue_and_a_renewal_opens_it(queued) -> None:
    system, case = queued
    reviewer = make_user("reviewer", systems=[system.slug], trained=False)
    profile = reviewer.reviewer_profile
    today = timezone.localdate()
    training_record_add(actor=None, profile=profile, title="AI literacy 2025", completed_at=dt.date(2025, 1, 1),
                        expires_at=today - dt.timedelta(days=1))
    with pytest.raises(ReviewerNotAllowed) as refused:
        claim_next(reviewer=reviewer)
    assert refused.value.code_name == "training_required"
    training_record_add(actor=None, profile=profile, title="AI literacy 2026", completed_at=today,
                        expires_at=today + dt.timedelta(days=365))
    assert claim_next(reviewer=reviewer).pk == case.pk


def test_a_system_specific_requirement_closes_only_that_queue() -> None:
    make_system_with_point("open-sys", confidence_below=0.9)
    strict, _ = make_system_with_point("strict-sys", confidence_below=0.9,
                                       system_fields={"required_trainings": ["ai_literacy", "radiology"]})
    integration = make_user("integration", systems=["open-sys", "strict-sys"])
    strict_case = ingest(integration, system="strict-sys", external_id="s-1", confidence=0.1)
    open_case = ingest(integration, system="open-sys", external_id="o-1", confidence=0.5)
    reviewer = make_user("reviewer", systems=["open-sys", "strict-sys"])  # AI literacy only
    claimed = claim_next(reviewer=reviewer)
    assert claimed.pk == open_case.pk != strict_case.pk
    with pytest.raises(ReviewerNotAllowed):
        claim_next(reviewer=reviewer, system=strict)
    client = Client()
    client.force_login(reviewer)
    page = client.get("/review/").content.decode()
    assert "Strict Sys needs radiology" in page


def test_the_workbench_says_why_nothing_can_be_claimed(queued) -> None:
    system, _ = queued
    reviewer = make_user("reviewer", systems=[system.slug], trained=False)
    client = Client()
    client.force_login(reviewer)
    page = client.get("/review/").content.decode()
    assert "required training is missing or expired" in page and "ai_literacy" in page


def test_officers_see_who_is_blocked(queued) -> None:
    system, _ = queued
    reviewer = make_user("reviewer", "untrained", systems=[system.slug], trained=False)
    officer = Client()
    officer.force_login(make_user("compliance_officer"))
    page = officer.get(f"/quality/reviewers/{reviewer.username}/").content.decode()
    assert "ai_literacy" in page


def test_expiring_trainings_alert_thirty_days_ahead_once(queued) -> None:
    system, _ = queued
    make_user("compliance_officer")
    reviewer = make_user("reviewer", systems=[system.slug], trained=False)
    today = timezone.localdate()
    TrainingRecord.objects.create(reviewer=reviewer.reviewer_profile, title="AI literacy", kind="ai_literacy",
                                  completed_at=today - dt.timedelta(days=300), expires_at=today + dt.timedelta(days=20))
    assert training_expiry_alerts() == 1
    assert training_expiry_alerts() == 0
    notification = Notification.objects.get(kind="training_expiry")
    assert reviewer.username in notification.subject
    assert notification.recipients.filter(user=reviewer).exists()


def test_required_trainings_are_written_through_the_api(api_client_for) -> None:
    make_system_with_point("api-sys")
    officer = api_client_for("compliance_officer")
    response = officer.patch("/api/v1/systems/api-sys/", {"required_trainings": ["ai_literacy", "fraud"]},
                             format="json")
    assert response.status_code == 200 and response.json()["required_trainings"] == ["ai_literacy", "fraud"]
    bad = officer.patch("/api/v1/systems/api-sys/", {"required_trainings": [""]}, format="json")
    assert bad.status_code == 400 and "required_trainings" in bad.json()
