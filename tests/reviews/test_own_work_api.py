"""A reviewer's own work over the API (comments, skip, undo): allowed, denied, audited, 4xx naming the field."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditEvent
from reviews.models import Case, CaseComment, CaseSkip, CaseStatus, Decision
from reviews.services.decisions import decision_record
from reviews.services.queue import claim_next
from tests.reviews.queue_helpers import client_for, make_case, make_point, make_reviewer, make_user

pytestmark = pytest.mark.django_db


def actions(case: Case, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(case_id=case.pk, action=action))


def test_comment_over_the_api_allowed_audited_and_listed() -> None:
    case = make_case(make_point())
    rev = make_reviewer()
    claim_next(reviewer=rev)
    api = client_for(rev)
    url = f"/api/v1/cases/{case.pk}/comments/"
    response = api.post(url, {"body": "  The payslip is from 2019.  "}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["body"] == "The payslip is from 2019." and response.json()["author"] == rev.username
    [event] = actions(case, "case.commented")
    assert event.actor_id == rev.pk and "payslip" not in event.payload  # the text by its hash only
    listed = api.get(url)
    assert listed.status_code == 200 and [c["body"] for c in listed.json()] == ["The payslip is from 2019."]
    officer = make_user("compliance_officer")
    assert client_for(officer).get(url).json()[0]["author"] == rev.username


def test_comment_denied_names_the_field_and_hides_other_systems_cases() -> None:
    case = make_case(make_point())
    rev = make_reviewer()
    claim_next(reviewer=rev)
    url = f"/api/v1/cases/{case.pk}/comments/"
    response = client_for(rev).post(url, {"body": "   "}, format="json")
    assert response.status_code == 400 and "body" in json.dumps(response.json())
    # A reviewer who neither holds nor decided the case does not see it: 404, as on the pages.
    stranger = client_for(make_reviewer())
    assert stranger.post(url, {"body": "Hi"}, format="json").status_code == 404
    assert stranger.get(url).status_code == 404
    # Managers and integrations are not in the role map; no token is 401.
    assert client_for(make_user("manager")).get(url).status_code == 403
    assert client_for(make_user("integration")).post(url, {"body": "x"}, format="json").status_code == 403
    from rest_framework.test import APIClient
    assert APIClient().get(url).status_code == 401
    assert client_for(rev).get("/api/v1/cases/999999/comments/").status_code == 404
    assert CaseComment.objects.count() == 0


def test_skip_over_the_api_returns_the_case_and_keeps_it_from_me() -> None:
    case = make_case(make_point())
    rev = make_reviewer()
    claim_next(reviewer=rev)
    api = client_for(rev)
    url = f"/api/v1/cases/{case.pk}/skip/"
    response = api.post(url, {}, format="json")
    assert response.status_code == 400 and "reason" in json.dumps(response.json())
    assert Case.objects.get(pk=case.pk).status == CaseStatus.CLAIMED  # nothing changed on a bad request
    response = api.post(url, {"reason": "I know the applicant."}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"case": case.pk, "case_status": "queued"}
    [event] = actions(case, "case.skipped")
    assert event.reason == "I know the applicant."
    assert CaseSkip.objects.filter(case=case, reviewer=rev).exists()
    assert api.post("/api/v1/queue/claim/", {}, format="json").status_code in (200, 204)
    assert Case.objects.get(pk=case.pk).claimed_by_id is None  # not offered to me again
    # No live claim any more: 409; an officer may not skip (reviewers only).
    assert api.post(url, {"reason": "again"}, format="json").status_code == 409
    assert client_for(make_user("compliance_officer")).post(url, {"reason": "x"}, format="json").status_code == 403


def test_undo_over_the_api_mine_only_within_the_window() -> None:
    case = make_case(make_point(reviewers_required=2))
    rev = make_reviewer()
    claimed = claim_next(reviewer=rev)
    decision_record(reviewer=rev, case=claimed, outcome="approve", label=None, rationale="")
    decision = Decision.objects.get(case=case, reviewer=rev)
    url = f"/api/v1/decisions/{decision.pk}/undo/"
    # Someone else's decision is not theirs to learn about.
    assert client_for(make_reviewer()).post(url).status_code == 404
    assert client_for(make_user("manager")).post(url).status_code == 403
    response = client_for(rev).post(url)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["case"] == case.pk and body["case_status"] == "claimed" and body["lease_expires_at"]
    assert not Decision.objects.filter(pk=decision.pk).exists()
    assert len(actions(case, "decision.undone")) == 1
    assert client_for(rev).post(url).status_code == 404  # gone


def test_undo_of_a_final_decision_is_a_409_with_its_code() -> None:
    case = make_case(make_point())
    rev = make_reviewer()
    decision_record(reviewer=rev, case=claim_next(reviewer=rev), outcome="approve", label=None, rationale="")
    decision = Decision.objects.get(case=case)
    response = client_for(rev).post(f"/api/v1/decisions/{decision.pk}/undo/")
    assert response.status_code == 409 and response.json()["code"] == "not_open"
    assert Decision.objects.filter(pk=decision.pk).exists()
    assert not actions(case, "decision.undone")
