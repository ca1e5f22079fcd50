"""Test data for the compliance workspace: systems, classification answers, users with roles.

Everything goes through the services, as production data does.
"""

from __future__ import annotations

from typing import Any

from compliance.services.classification import system_classify
from reviews.models import AISystem, InterventionPoint
from reviews.services.systems import intervention_point_create, system_create

CREDIT_ANSWERS: dict[str, Any] = {"annex_iii": ["5b"], "profiling": True}


def make_system(slug: str = "credit-scoring", **fields: Any) -> AISystem:
    """A registered (not yet classified) system; credit scoring by default, with us as deployer."""
    values: dict[str, Any] = {
        "name": slug.replace("-", " ").title(), "purpose": "Scores consumer credit applications.",
        "provider": "Acme Scoring Ltd", "role": "deployer", "sector": "finance",
        "labels": ["approve", "reject"], "positive_label": "approve", "protected_attributes": ["gender"],
    }
    values.update(fields)
    return system_create(actor=None, slug=slug, **values)


def make_point(system: AISystem, slug: str = "loan-review", **rules: Any) -> InterventionPoint:
    values: dict[str, Any] = {"name": "Loan review", "stage": "validation", "confidence_below": 0.7,
                              "high_stakes": [{"field": "amount", "op": "gt", "value": 10000}]}
    values.update(rules)
    return intervention_point_create(actor=None, system=system, slug=slug, **values)


def classified(system: AISystem, answers: dict[str, Any] | None = None, actor: Any = None) -> AISystem:
    system, _, _ = system_classify(actor=actor, system=system, answers=CREDIT_ANSWERS if answers is None else answers)
    return system
