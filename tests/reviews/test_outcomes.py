"""Ground truth: ``POST /api/v1/cases/{id}/outcome/`` and ``case_report_outcome``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from reviews.models import Case
from reviews.services.outcomes import case_report_outcome
from tests.reviews.factories import (
    ingest,
    make_system_with_point,
)

pytestmark = pytest.mark.django_db


def outcome_url(pk: int) -> str:
    return f"/api/v1/cases/{pk}/outcome/"


@pytest.fixture
def acme(make_user: Any) -> Any:
    make_system_with_point()
    make_system_with_point("triage", "intake", labels=["urgent", "routine"])
    return make_user("integration", "acme", systems=["credit-scoring"])


@pytest.fixture
def case(acme: Any) -> Case:
    return ingest(acme, external_id="o-1", confidence=0.99)


def test_integration_reports_ground_truth_audited(acme: Any, case: Case, api_client_for: Any) -> None:
    response = api_client_for(acme).post(outcome_url(case.pk), {"true_label": "reject"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["true_label"] == "reject"
    case.refresh_from_db()
    assert case.true_label == "reject" and case.true_label_at is not None
    event = AuditEvent.objects.get(action="case.outcome_reported", case_id=case.pk)
    assert event.actor_name == "acme"
    payload = json.loads(event.payload)
    assert payload["before"] == {"true_label": None}
    assert payload["after"] == {"true_label": "reject"}
    assert payload["data"] == {"matches_ai": False, "matches_final": False, "correction": False}
    assert Case.history.filter(id=case.pk, true_label="reject").exists()


def test_a_correction_is_audited_with_the_previous_label(acme: Any, case: Case) -> None:
    case_report_outcome(actor=acme, case=case, true_label="reject")
    with pytest.raises(ValidationError) as refused:
        case_report_outcome(actor=acme, case=case, true_label="approve")
    assert list(refused.value.message_dict) == ["reason"]
    case_report_outcome(actor=acme, case=case, true_label="approve", reason="Appeal won.")
    events = AuditEvent.objects.filter(action="case.outcome_reported").order_by("id")
    assert [json.loads(e.payload)["before"]["true_label"] for e in events] == [None, "reject"]
    assert [e.reason for e in events] == ["", "Appeal won."]
    # The same label again changes nothing and records nothing.
    case_report_outcome(actor=acme, case=case, true_label="approve")
    assert events.count() == 2


def test_unknown_label_is_400(acme: Any, case: Case, api_client_for: Any) -> None:
    client = api_client_for(acme)
    for body in ({"true_label": "maybe"}, {"true_label": 3}, {}, {"true_label": "x" * 101}, {"label": "reject"}):
        response = client.post(outcome_url(case.pk), body, format="json")
        assert response.status_code == 400, body
        assert set(response.json()) & {"true_label", "label"}, response.json()
    with pytest.raises(ValidationError):
        case_report_outcome(actor=acme, case=case, true_label="urgent")
    assert not AuditEvent.objects.filter(action="case.outcome_reported").exists()


def test_admin_may_report(case: Case, api_client_for: Any) -> None:
    response = api_client_for("admin").post(outcome_url(case.pk), {"true_label": "approve"}, format="json")
    assert response.status_code == 200


@pytest.mark.parametrize("role", ["reviewer", "compliance_officer", "manager"])
def test_other_roles_may_not_report(case: Case, api_client_for: Any, role: str) -> None:
    response = api_client_for(role).post(outcome_url(case.pk), {"true_label": "approve"}, format="json")
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="case.outcome_reported").exists()


def test_anonymous_may_not_report(case: Case, anon_client: Any) -> None:
    assert anon_client.post(outcome_url(case.pk), {"true_label": "approve"}, format="json").status_code == 401


def test_integration_of_another_system_gets_404(case: Case, make_user: Any, api_client_for: Any) -> None:
    other = api_client_for(make_user("integration", systems=["triage"]))
    assert other.post(outcome_url(case.pk), {"true_label": "approve"}, format="json").status_code == 404
    case.refresh_from_db()
    assert case.true_label is None
