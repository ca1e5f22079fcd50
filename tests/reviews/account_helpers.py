"""Helpers for the accounts, systems and API-convention tests.

Valid request bodies, each test breaks one field of.
"""

from __future__ import annotations

from typing import Any

from reviews.models import AISystem, InterventionPoint
from reviews.services.systems import intervention_point_create, system_create

PASSWORD = "pass-word-123"


def system_body(**overrides: Any) -> dict[str, Any]:
    """A valid ``POST /api/v1/systems/`` body."""
    body: dict[str, Any] = {
        "slug": "credit-scoring",
        "name": "Credit scoring",
        "purpose": "Scores consumer credit applications.",
        "provider": "Acme Bank",
        "role": "deployer",
        "sector": "finance",
        "risk_tier": "high",
        "annex_iii_area": "5b",
        "labels": ["approve", "reject"],
        "positive_label": "approve",
        "protected_attributes": ["gender", "age_band"],
    }
    body.update(overrides)
    return body


def point_body(**overrides: Any) -> dict[str, Any]:
    """A valid ``POST /api/v1/systems/{slug}/intervention-points/`` body."""
    body: dict[str, Any] = {
        "slug": "loan-review",
        "name": "Loan review",
        "stage": "validation",
        "confidence_below": 0.7,
        "always_review_labels": ["reject"],
        "high_stakes": [{"field": "amount", "op": "gt", "value": 10000}],
        "random_sample_rate": 0.05,
        "sla_seconds": 3600,
    }
    body.update(overrides)
    return body


def make_system(slug: str = "credit-scoring", **fields: Any) -> AISystem:
    values = system_body(slug=slug, **fields)
    values["declared_tier"] = values.pop("risk_tier") or ""
    return system_create(actor=None, **values)


def make_point(system: AISystem, slug: str = "loan-review", **rules: Any) -> InterventionPoint:
    values = point_body(slug=slug, **rules)
    return intervention_point_create(actor=None, system=system, **values)


def assert_field_error(response: Any, field: str, status: int = 400) -> None:
    """A 4xx JSON body that names ``field``."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert field in body, body
