"""Integrations read and report outcomes only for their own cases, unless a system is explicitly shared.

Two integrations linked to one system: B gets 404 on A's case (detail, list,
``/outcome/``) until an officer turns on ``share_cases_between_integrations``
(audited). A replaced outcome needs a reason and is audited with both values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User

from audit.models import AuditEvent
from reviews.models import AISystem, Case, CaseStatus, InterventionPoint, Resolution
from reviews.selectors.visibility import cases_visible_to

pytestmark = pytest.mark.postgres


@pytest.fixture
def system(db: Any) -> AISystem:
    return AISystem.objects.create(slug="credit-scoring", name="Credit scoring", labels=["approve", "reject"])


@pytest.fixture
def point(system: AISystem) -> InterventionPoint:
    return InterventionPoint.objects.create(system=system, slug="loan-review", name="Loan review")


@pytest.fixture
def clients(point: InterventionPoint, api_client_for: Callable[..., Any]) -> tuple[Any, Any]:
    """Integration A and integration B, both linked to the same system."""
    return (api_client_for("integration", username="svc-a", systems=["credit-scoring"]),
            api_client_for("integration", username="svc-b", systems=["credit-scoring"]))


def submit(client: Any, external_id: str) -> int:
    response = client.post("/api/v1/cases/", {
        "system": "credit-scoring", "intervention_point": "loan-review", "external_id": external_id,
        "input": {"amount": 100}, "prediction": {"label": "approve", "confidence": 0.99},
        "subject": {"gender": "f"},
    }, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def listed_ids(client: Any) -> set[int]:
    response = client.get("/api/v1/cases/")
    assert response.status_code == 200
    return {item["id"] for item in response.json()["results"]}


def test_the_submitting_integration_is_recorded(clients: tuple[Any, Any]) -> None:
    a, _b = clients
    case_id = submit(a, "app-1")
    assert Case.objects.get(pk=case_id).submitted_by == a.user


def test_integration_b_gets_404_on_integration_a_case_on_a_shared_system(clients: tuple[Any, Any]) -> None:
    a, b = clients
    mine = submit(a, "app-1")
    theirs = submit(b, "app-2")
    # Allowed: each reads its own.
    assert a.get(f"/api/v1/cases/{mine}/").status_code == 200
    assert listed_ids(a) == {mine}
    assert a.post(f"/api/v1/cases/{mine}/outcome/", {"true_label": "approve"}, format="json").status_code == 200
    # Denied: the other's case does not exist for it (no existence leak: 404, not 403).
    assert b.get(f"/api/v1/cases/{mine}/").status_code == 404
    assert listed_ids(b) == {theirs}
    assert mine not in {item["id"] for item in b.get("/api/v1/cases/?system=credit-scoring").json()["results"]}
    response = b.post(f"/api/v1/cases/{mine}/outcome/", {"true_label": "reject"}, format="json")
    assert response.status_code == 404
    assert Case.objects.get(pk=mine).true_label == "approve"  # B could not overwrite A's ground truth


def test_sharing_is_an_officers_audited_setting(
    clients: tuple[Any, Any], api_client_for: Callable[..., Any], system: AISystem
) -> None:
    a, b = clients
    mine = submit(a, "app-1")
    body = {"share_cases_between_integrations": True, "reason": "Back office reports outcomes for the scorer."}
    # Denied: an integration (even a linked one) cannot open other integrations' cases to itself.
    assert b.patch("/api/v1/systems/credit-scoring/", body, format="json").status_code == 403
    assert api_client_for("manager").patch("/api/v1/systems/credit-scoring/", body, format="json").status_code == 403
    system.refresh_from_db()
    assert system.share_cases_between_integrations is False
    assert b.get("/api/v1/systems/credit-scoring/").json()["share_cases_between_integrations"] is False
    # Allowed: a compliance officer turns it on; audited with before, after and reason.
    officer = api_client_for("compliance_officer")
    response = officer.patch("/api/v1/systems/credit-scoring/", body, format="json")
    assert response.status_code == 200
    assert response.json()["share_cases_between_integrations"] is True
    event = AuditEvent.objects.filter(action="system.updated", system_id=system.pk).latest("pk")
    payload = json.loads(event.payload)
    assert payload["before"] == {"share_cases_between_integrations": False}
    assert payload["after"] == {"share_cases_between_integrations": True}
    assert event.reason == body["reason"]
    assert event.actor_name == officer.user.username
    # Now B reads A's case and may report its outcome.
    assert b.get(f"/api/v1/cases/{mine}/").status_code == 200
    assert mine in listed_ids(b)
    assert b.post(f"/api/v1/cases/{mine}/outcome/", {"true_label": "approve"}, format="json").status_code == 200
    # An integration not linked to the system still sees nothing.
    stranger = api_client_for("integration", username="svc-c")
    assert stranger.get(f"/api/v1/cases/{mine}/").status_code == 404


def test_sharing_rejects_a_non_boolean(api_client_for: Callable[..., Any], system: AISystem) -> None:
    officer = api_client_for("compliance_officer")
    response = officer.patch("/api/v1/systems/credit-scoring/", {"share_cases_between_integrations": "yes"},
                             format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["share_cases_between_integrations"]


def test_cases_without_a_known_submitter_are_visible_to_integrations_only_on_shared_systems(
    point: InterventionPoint, make_user: Callable[..., User], system: AISystem
) -> None:
    integration = make_user("integration", systems=["credit-scoring"])
    orphan = Case.objects.create(
        system=system, intervention_point=point, external_id="legacy-1", submitted_by=None, input={},
        prediction_label="approve", status=CaseStatus.AUTO_ACCEPTED, resolution=Resolution.AUTO_ACCEPTED,
        final_label="approve",
    )
    assert not cases_visible_to(integration).filter(pk=orphan.pk).exists()
    system.share_cases_between_integrations = True
    system.save(update_fields=["share_cases_between_integrations"])
    assert cases_visible_to(integration).filter(pk=orphan.pk).exists()
    # Oversight roles see it either way.
    assert cases_visible_to(make_user("compliance_officer")).filter(pk=orphan.pk).exists()


# --- A replaced outcome needs a reason -----------------------------------------------------------


def test_a_second_different_outcome_needs_a_reason_and_is_audited_with_both_values(
    clients: tuple[Any, Any],
) -> None:
    a, _b = clients
    case_id = submit(a, "app-1")
    url = f"/api/v1/cases/{case_id}/outcome/"
    assert a.post(url, {"true_label": "approve"}, format="json").status_code == 200
    first = AuditEvent.objects.get(action="case.outcome_reported", case_id=case_id)
    assert json.loads(first.payload)["before"] == {"true_label": None}

    # Denied: a different label without a reason (also an empty or blank one).
    for body in ({"true_label": "reject"}, {"true_label": "reject", "reason": "  "}):
        response = a.post(url, body, format="json")
        assert response.status_code == 400
        assert list(response.json()) == ["reason"]
    assert a.post(url, {"true_label": "reject", "reason": 5}, format="json").json() == {"reason": ["Must be a string."]}
    assert Case.objects.get(pk=case_id).true_label == "approve"
    assert AuditEvent.objects.filter(action="case.outcome_reported", case_id=case_id).count() == 1

    # Allowed: with a reason; the event keeps the old and the new value and the reason.
    response = a.post(url, {"true_label": "reject", "reason": "Chargeback upheld on appeal."}, format="json")
    assert response.status_code == 200
    assert response.json()["true_label"] == "reject"
    second = AuditEvent.objects.filter(action="case.outcome_reported", case_id=case_id).latest("pk")
    payload = json.loads(second.payload)
    assert payload["before"] == {"true_label": "approve"}
    assert payload["after"] == {"true_label": "reject"}
    assert payload["data"]["correction"] is True
    assert second.reason == "Chargeback upheld on appeal."

    # The same label again changes nothing and records nothing (no reason needed).
    assert a.post(url, {"true_label": "reject"}, format="json").status_code == 200
    assert AuditEvent.objects.filter(action="case.outcome_reported", case_id=case_id).count() == 2
