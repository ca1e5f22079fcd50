"""Review-queue API: claim, decision, renew, release, reopen — allowed and denied, per the contract."""

from __future__ import annotations

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from reviews.models import Case, CaseStatus, Decision, ReviewerProfile
from tests.reviews.queue_helpers import (
    client_for,
    expire_claim,
    make_case,
    make_point,
    make_reviewer,
    make_system,
    make_user,
)

pytestmark = pytest.mark.django_db

CLAIM = "/api/v1/queue/claim/"


def action_url(case: Case, action: str) -> str:
    return f"/api/v1/cases/{case.pk}/{action}/"


# --- Claim -------------------------------------------------------------------------------------


def test_claim_returns_the_case_and_lease() -> None:
    point = make_point(guidelines="Check the payslip.")
    case = make_case(point, label="reject", confidence=0.55)
    reviewer = make_reviewer()
    response = client_for(reviewer).post(CLAIM, {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["case"]["id"] == case.pk
    assert body["case"]["prediction"] == {"label": "reject", "confidence": 0.55, "model_version": "v3.1"}
    assert body["case"]["labels"] == ["approve", "reject", "refer"]
    assert body["case"]["guidelines"] == "Check the payslip."
    assert body["case"]["routing"]["reasons"] == ["confidence_below"]
    assert body["case"]["input"] == {"amount": 25000, "text": "loan application"}
    assert body["lease_expires_at"].endswith("Z")
    assert AuditEvent.objects.filter(action="case.claimed", case_id=case.pk, actor_id=reviewer.pk).exists()


def test_claim_of_a_blind_case_hides_the_prediction() -> None:
    make_case(make_point(), blind=True)
    body = client_for(make_reviewer()).post(CLAIM, {}, format="json").json()
    assert body["case"]["prediction"] is None


def test_claim_204_when_nothing_is_claimable() -> None:
    make_point()
    response = client_for(make_reviewer()).post(CLAIM, {}, format="json")
    assert response.status_code == 204
    assert not AuditEvent.objects.filter(action="case.claimed").exists()


def test_claim_filters_by_system_and_point() -> None:
    credit = make_system("credit-scoring")
    fraud = make_system("fraud-check")
    make_case(make_point(credit, "loan-review"))
    fraud_case = make_case(make_point(fraud, "txn-review"))
    client = client_for(make_reviewer(systems=[credit, fraud]))
    body = client.post(CLAIM, {"system": "fraud-check"}, format="json").json()
    assert body["case"]["id"] == fraud_case.pk
    assert client.post(CLAIM, {"system": "fraud-check", "intervention_point": "txn-review"},
                       format="json").status_code == 204


def test_claim_unknown_filters_are_400_naming_the_field() -> None:
    make_point()
    client = client_for(make_reviewer())
    response = client.post(CLAIM, {"system": "nope"}, format="json")
    assert response.status_code == 400 and "system" in response.json()
    response = client.post(CLAIM, {"intervention_point": "nope"}, format="json")
    assert response.status_code == 400 and "intervention_point" in response.json()
    response = client.post(CLAIM, {"system": "credit-scoring", "intervention_point": "bad slug!"}, format="json")
    assert response.status_code == 400 and "intervention_point" in response.json()
    response = client.post(CLAIM, [1, 2], format="json")
    assert response.status_code == 400


def test_claim_403_for_a_suspended_reviewer() -> None:
    make_case(make_point())
    response = client_for(make_reviewer(suspended=True)).post(CLAIM, {}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "reviewer_suspended"


def test_claim_403_when_not_qualified_for_the_system_or_any() -> None:
    make_case(make_point(make_system("credit-scoring")))
    fraud = make_system("fraud-check")
    response = client_for(make_reviewer(systems=[])).post(CLAIM, {}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "not_qualified"
    response = client_for(make_reviewer(systems=[fraud])).post(CLAIM, {"system": "credit-scoring"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "not_qualified"


@pytest.mark.parametrize("role", ["compliance_officer", "manager", "integration"])
def test_claim_denied_to_other_roles(role: str) -> None:
    make_case(make_point())
    response = client_for(make_user(role)).post(CLAIM, {}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_claim_401_unauthenticated(anon_client) -> None:
    assert anon_client.post(CLAIM, {}, format="json").status_code == 401


# --- Decision -------------------------------------------------------------------------------------


def claimed_by(reviewer, **case_kwargs) -> Case:
    case = make_case(make_point(), **case_kwargs)
    assert client_for(reviewer).post(CLAIM, {}, format="json").status_code == 200
    return case


def test_decision_201_with_status_and_final_label() -> None:
    reviewer = make_reviewer()
    case = claimed_by(reviewer, label="approve")
    response = client_for(reviewer).post(action_url(case, "decision"),
                                         {"outcome": "override", "label": "reject", "rationale": "Debt too high."},
                                         format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {"case": case.pk, "case_status": "decided", "final_label": "reject"}
    assert AuditEvent.objects.filter(action="decision.recorded", case_id=case.pk, actor_id=reviewer.pk).exists()
    assert AuditEvent.objects.filter(action="case.decided", case_id=case.pk).exists()


def test_blind_decision_with_label_only() -> None:
    reviewer = make_reviewer()
    case = claimed_by(reviewer, label="approve", blind=True)
    response = client_for(reviewer).post(action_url(case, "decision"), {"label": "approve"}, format="json")
    assert response.status_code == 201
    assert Decision.objects.get(case=case).outcome == "approve"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"outcome": "override", "label": "reject"}, "rationale"),
        ({"outcome": "override", "rationale": "why"}, "label"),
        ({"outcome": "override", "label": "unknown", "rationale": "why"}, "label"),
        ({"outcome": "escalate"}, "rationale"),
        ({"outcome": "maybe"}, "outcome"),
        ({}, "outcome"),
        ({"outcome": "approve", "label": 5 * "x" * 30}, "label"),
        ({"outcome": "override", "label": ["reject"], "rationale": "why"}, "label"),
    ],
)
def test_decision_bad_input_is_400_naming_the_field(body: dict, field: str) -> None:
    reviewer = make_reviewer()
    case = claimed_by(reviewer)
    response = client_for(reviewer).post(action_url(case, "decision"), body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Decision.objects.exists()


def test_decision_without_a_live_claim_is_409() -> None:
    holder, other = make_reviewer(), make_reviewer()
    case = claimed_by(holder)
    response = client_for(other).post(action_url(case, "decision"), {"outcome": "approve"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "no_live_claim"
    expire_claim(case)
    response = client_for(holder).post(action_url(case, "decision"), {"outcome": "approve"}, format="json")
    assert response.status_code == 409
    assert not Decision.objects.exists()


def test_decision_on_a_missing_case_is_404() -> None:
    response = client_for(make_reviewer()).post("/api/v1/cases/999999/decision/", {"outcome": "approve"},
                                                format="json")
    assert response.status_code == 404


@pytest.mark.parametrize("role", ["compliance_officer", "manager", "integration"])
def test_decision_denied_to_other_roles(role: str) -> None:
    case = claimed_by(make_reviewer())
    response = client_for(make_user(role)).post(action_url(case, "decision"), {"outcome": "approve"}, format="json")
    assert response.status_code == 403


def test_decision_401_unauthenticated(anon_client) -> None:
    case = claimed_by(make_reviewer())
    assert anon_client.post(action_url(case, "decision"), {"outcome": "approve"}, format="json").status_code == 401


def test_decision_by_a_holder_suspended_meanwhile_is_403() -> None:
    reviewer = make_reviewer()
    case = claimed_by(reviewer)
    ReviewerProfile.objects.filter(user=reviewer).update(status="suspended")
    response = client_for(reviewer).post(action_url(case, "decision"), {"outcome": "approve"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "reviewer_suspended"


# --- Decision with claim_next (one round trip per case) -------------------------------------------


def test_decision_with_claim_next_returns_the_next_case_claimed() -> None:
    reviewer = make_reviewer()
    point = make_point()
    first = make_case(point, label="approve")
    second = make_case(point, label="reject", confidence=0.4)
    client = client_for(reviewer)
    assert client.post(CLAIM, {}, format="json").json()["case"]["id"] == first.pk
    response = client.post(action_url(first, "decision"), {"outcome": "approve", "claim_next": {}}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["case"], body["case_status"], body["final_label"]) == (first.pk, "decided", "approve")
    assert "next_refused" not in body
    claimed = body["next"]
    assert claimed["case"]["id"] == second.pk
    assert claimed["case"]["prediction"]["label"] == "reject"
    assert claimed["lease_expires_at"].endswith("Z")
    second.refresh_from_db()
    assert second.status == CaseStatus.CLAIMED and second.claimed_by_id == reviewer.pk
    assert AuditEvent.objects.filter(action="decision.recorded", case_id=first.pk, actor_id=reviewer.pk).exists()
    assert AuditEvent.objects.filter(action="case.claimed", case_id=second.pk, actor_id=reviewer.pk).exists()
    # The same body the claim endpoint gives: release it and claim it there.
    assert client.post(action_url(second, "release"), {}, format="json").status_code == 200
    again = client.post(CLAIM, {}, format="json").json()
    assert again["case"] == claimed["case"]


def test_decision_with_claim_next_on_an_empty_queue_answers_next_null() -> None:
    reviewer = make_reviewer()
    case = claimed_by(reviewer)
    response = client_for(reviewer).post(action_url(case, "decision"), {"outcome": "approve", "claim_next": {}},
                                         format="json")
    assert response.status_code == 201
    assert response.json()["next"] is None and "next_refused" not in response.json()
    assert AuditEvent.objects.filter(action="case.claimed").count() == 1


def test_decision_with_claim_next_keeps_to_its_scope() -> None:
    credit = make_system("credit-scoring")
    fraud = make_system("fraud-check")
    credit_point = make_point(credit, "loan-review")
    first = make_case(credit_point)
    make_case(credit_point)
    fraud_case = make_case(make_point(fraud, "txn-review"))
    reviewer = make_reviewer(systems=[credit, fraud])
    client = client_for(reviewer)
    assert client.post(CLAIM, {"system": "credit-scoring"}, format="json").json()["case"]["id"] == first.pk
    scope = {"system": "fraud-check", "intervention_point": "txn-review"}
    body = client.post(action_url(first, "decision"), {"outcome": "approve", "claim_next": scope},
                       format="json").json()
    assert body["next"]["case"]["id"] == fraud_case.pk


@pytest.mark.parametrize(
    ("claim_next", "field"),
    [({"system": "nope"}, "system"), ({"intervention_point": "nope"}, "intervention_point"),
     ({"system": "not a slug!"}, "system"), ("yes", "non_field_errors")],
)
def test_decision_with_a_bad_claim_next_is_400_and_saves_nothing(claim_next, field: str) -> None:
    reviewer = make_reviewer()
    point = make_point()
    case = make_case(point)
    make_case(point)
    assert client_for(reviewer).post(CLAIM, {}, format="json").status_code == 200
    response = client_for(reviewer).post(action_url(case, "decision"),
                                         {"outcome": "approve", "claim_next": claim_next}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["claim_next"]
    assert not Decision.objects.exists()
    case.refresh_from_db()
    assert case.status == CaseStatus.CLAIMED and case.claimed_by_id == reviewer.pk
    assert not AuditEvent.objects.filter(action="decision.recorded").exists()


def test_decision_with_claim_next_refused_keeps_the_decision() -> None:
    make_case(make_point(make_system("fraud-check"), "txn-review"))
    reviewer = make_reviewer()
    case = claimed_by(reviewer)
    response = client_for(reviewer).post(action_url(case, "decision"),
                                         {"outcome": "approve", "claim_next": {"system": "fraud-check"}},
                                         format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["case_status"] == "decided" and body["next"] is None
    assert body["next_refused"]["code"] == "not_qualified" and body["next_refused"]["detail"]
    assert Decision.objects.filter(case=case, reviewer=reviewer).exists()
    assert AuditEvent.objects.filter(action="case.decided", case_id=case.pk).exists()


def test_decision_with_claim_next_denied_to_other_roles_claims_nothing() -> None:
    case = claimed_by(make_reviewer())
    waiting = make_case(case.intervention_point)
    response = client_for(make_user("manager")).post(action_url(case, "decision"),
                                                      {"outcome": "approve", "claim_next": {}}, format="json")
    assert response.status_code == 403
    waiting.refresh_from_db()
    assert waiting.status == CaseStatus.QUEUED
    assert not Decision.objects.exists()


# --- Renew and release ---------------------------------------------------------------------------


def test_renew_200_and_audited() -> None:
    reviewer = make_reviewer()
    case = claimed_by(reviewer)
    response = client_for(reviewer).post(action_url(case, "renew"))
    assert response.status_code == 200
    assert response.json()["lease_expires_at"].endswith("Z")
    assert AuditEvent.objects.filter(action="case.lease_renewed", case_id=case.pk).exists()


def test_release_200_returns_the_case_to_the_queue() -> None:
    reviewer = make_reviewer()
    case = claimed_by(reviewer)
    response = client_for(reviewer).post(action_url(case, "release"))
    assert response.status_code == 200
    assert response.json() == {"case": case.pk, "case_status": "queued"}
    assert Case.objects.get(pk=case.pk).status == CaseStatus.QUEUED
    assert AuditEvent.objects.filter(action="case.released", case_id=case.pk, actor_id=reviewer.pk).exists()


@pytest.mark.parametrize("action", ["renew", "release"])
def test_renew_and_release_409_without_a_live_claim(action: str) -> None:
    case = claimed_by(make_reviewer())
    response = client_for(make_reviewer()).post(action_url(case, action))
    assert response.status_code == 409 and response.json()["code"] == "no_live_claim"


@pytest.mark.parametrize("action", ["renew", "release"])
@pytest.mark.parametrize("role", ["compliance_officer", "manager", "integration"])
def test_renew_and_release_denied_to_other_roles(action: str, role: str) -> None:
    case = claimed_by(make_reviewer())
    assert client_for(make_user(role)).post(action_url(case, action)).status_code == 403


@pytest.mark.parametrize("action", ["renew", "release"])
def test_renew_and_release_401_unauthenticated(action: str, anon_client) -> None:
    case = claimed_by(make_reviewer())
    assert anon_client.post(action_url(case, action)).status_code == 401


# --- Reopen -------------------------------------------------------------------------------------------


def decided_case() -> Case:
    reviewer = make_reviewer()
    case = claimed_by(reviewer)
    client_for(reviewer).post(action_url(case, "decision"), {"outcome": "approve"}, format="json")
    return case


@pytest.mark.parametrize("role", ["compliance_officer", "admin"])
def test_reopen_200_for_officers_and_admins(role: str) -> None:
    case = decided_case()
    officer = make_user(role)
    response = client_for(officer).post(action_url(case, "reopen"), {"reason": "Appeal (Art. 86)."}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"case": case.pk, "case_status": "escalated", "review_round": 2}
    assert AuditEvent.objects.filter(action="case.reopened", case_id=case.pk, actor_id=officer.pk).exists()


def test_reopen_needs_a_reason_and_a_decided_case() -> None:
    case = decided_case()
    client = client_for(make_user("compliance_officer"))
    response = client.post(action_url(case, "reopen"), {}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    response = client.post(action_url(case, "reopen"), {"reason": "   "}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    open_case = make_case(make_point(slug="other"))
    response = client.post(action_url(open_case, "reopen"), {"reason": "x"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "not_decided"
    assert client.post("/api/v1/cases/999999/reopen/", {"reason": "x"}, format="json").status_code == 404


@pytest.mark.parametrize("role", ["reviewer", "manager", "integration"])
def test_reopen_denied_to_other_roles(role: str) -> None:
    case = decided_case()
    response = client_for(make_user(role)).post(action_url(case, "reopen"), {"reason": "x"}, format="json")
    assert response.status_code == 403
    assert Case.objects.get(pk=case.pk).status == CaseStatus.DECIDED


def test_reopen_401_unauthenticated(anon_client) -> None:
    case = decided_case()
    assert anon_client.post(action_url(case, "reopen"), {"reason": "x"}, format="json").status_code == 401


# --- The whole loop through the API ----------------------------------------------------------------------


def test_four_eyes_through_the_api() -> None:
    case = make_case(make_point(reviewers_required=2), label="approve")
    first, second = make_reviewer(), make_reviewer()
    for reviewer, expected in ((first, "queued"), (second, "decided")):
        client = client_for(reviewer)
        assert client.post(CLAIM, {}, format="json").json()["case"]["id"] == case.pk
        response = client.post(action_url(case, "decision"), {"outcome": "approve"}, format="json")
        assert response.json()["case_status"] == expected
    # The first reviewer is not handed the case again.
    assert client_for(first).post(CLAIM, {}, format="json").status_code == 204
    case.refresh_from_db()
    assert case.final_label == "approve" and case.decided_at <= timezone.now()
