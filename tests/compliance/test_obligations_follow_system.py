"""Obligations follow the system (issue: a system declared high-risk through the API showed none)."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from compliance.models import Obligation, ObligationStatus

pytestmark = pytest.mark.django_db

BODY = {"slug": "loans", "name": "Loans", "purpose": "credit", "provider": "x", "role": "deployer",
        "sector": "finance", "labels": ["approve", "reject"], "risk_tier": "high", "annex_iii_area": "5b"}


def _applicable(slug: str) -> set[str]:
    return set(Obligation.objects.filter(system__slug=slug, applicable=True).values_list("requirement__ref",
                                                                                          flat=True))


def test_a_high_risk_system_registered_through_the_api_has_its_obligations_at_once(api_client_for: Any) -> None:
    response = api_client_for("compliance_officer").post("/api/v1/systems/", BODY, format="json")
    assert response.status_code == 201, response.content
    refs = _applicable("loans")
    assert {"AIA-26.1", "AIA-27.1"} <= refs  # deployer duties, and the FRIA for Annex III 5(b)
    listed = api_client_for("compliance_officer").get("/api/v1/systems/loans/obligations/")
    assert listed.status_code == 200
    assert {row["ref"] for row in listed.json()["results"] if row["status"] != "not_applicable"} >= {"AIA-27.1"}
    events = AuditEvent.objects.filter(action="obligation.updated", system_id=response.json()["id"],
                                       payload__contains='"change":"generated"')
    assert events.count() == len(refs)


def test_lowering_the_declared_tier_retires_the_high_risk_obligations(api_client_for: Any) -> None:
    officer = api_client_for("compliance_officer")
    assert officer.post("/api/v1/systems/", BODY, format="json").status_code == 201
    response = officer.patch("/api/v1/systems/loans/", {"risk_tier": "minimal", "annex_iii_area": None,
                                                         "reason": "re-assessed"}, format="json")
    assert response.status_code == 200, response.content
    retired = Obligation.objects.get(system__slug="loans", requirement__ref="AIA-27.1")
    assert retired.applicable is False and retired.status == ObligationStatus.NOT_APPLICABLE
    assert AuditEvent.objects.filter(action="obligation.updated", object_id=str(retired.pk),
                                     payload__contains='"change":"retired"').exists()


def test_a_change_that_does_not_touch_the_profile_syncs_nothing(api_client_for: Any) -> None:
    officer = api_client_for("compliance_officer")
    assert officer.post("/api/v1/systems/", BODY, format="json").status_code == 201
    before = AuditEvent.objects.filter(action__startswith="obligation.").count()
    assert officer.patch("/api/v1/systems/loans/", {"purpose": "credit scoring"}, format="json").status_code == 200
    assert AuditEvent.objects.filter(action__startswith="obligation.").count() == before
