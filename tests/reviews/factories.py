"""Test data for cases: systems with an intervention point, submissions, ingested cases.

Everything goes through the services, as production data does.
"""

from __future__ import annotations

from typing import Any

from reviews.api.serializers.cases import CaseSubmissionValidator
from reviews.models import AISystem, Case, InterventionPoint
from reviews.services.ingest import case_ingest
from reviews.services.systems import intervention_point_create, system_create

PASSWORD = "pass-word-123"
LABELS = ("approve", "reject")


def make_system_with_point(
    slug: str = "credit-scoring",
    point: str = "loan-review",
    *,
    labels: tuple[str, ...] | list[str] = LABELS,
    actor: Any = None,
    system_fields: dict[str, Any] | None = None,
    **rules: Any,
) -> tuple[AISystem, InterventionPoint]:
    """A registered system and one intervention point with ``rules`` (service defaults otherwise).

    Reuses the system when ``slug`` already exists (a second point on it).
    """
    system = AISystem.objects.filter(slug=slug).first()
    if system is None:
        fields = {"purpose": "Scores applications.", "declared_tier": "high", **(system_fields or {})}
        system = system_create(actor=actor, slug=slug, name=slug.replace("-", " ").title(), labels=list(labels),
                               **fields)
    rules.setdefault("stage", "validation")
    intervention_point = intervention_point_create(
        actor=actor, system=system, slug=point, name=point.replace("-", " ").title(), **rules
    )
    return system, intervention_point


def submission(
    system: str = "credit-scoring",
    point: str = "loan-review",
    external_id: str = "app-1",
    *,
    label: str | None = "approve",
    confidence: float | None = 0.95,
    model_version: str = "v3.1",
    input: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A valid case submission body (``label=None`` leaves the prediction out)."""
    body: dict[str, Any] = {
        "system": system,
        "intervention_point": point,
        "external_id": external_id,
        "input": {"amount": 2500, "text": "Loan application"} if input is None else input,
    }
    if label is not None:
        body["prediction"] = {"label": label, "confidence": confidence, "model_version": model_version}
    body.update(extra)
    return body


def ingest(actor: Any, **kwargs: Any) -> Case:
    """Validate and ingest one submission through the same code as the API."""
    validator = CaseSubmissionValidator(actor=actor)
    data, errors = validator.validate(submission(**kwargs))
    assert errors is None, errors
    assert data is not None
    return case_ingest(actor=actor, data=data)
