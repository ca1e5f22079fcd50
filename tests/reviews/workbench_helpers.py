"""Test data for the reviewer workbench: a system, an intervention point, queued cases.

Systems and points go through their services (as in production). Queued cases
are written directly in the state ingestion leaves a routed case in, so the
workbench tests depend only on the queue and decision services they exercise.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from django.utils import timezone

from reviews.models import AISystem, Case, CaseStatus, InterventionPoint
from reviews.services.systems import intervention_point_create, system_create

LABELS = ["approve", "reject", "refer"]
GUIDELINES = "Check the stated income against the documents.\nRefer when the applicant's identity is unclear."


def make_point(
    *, system_slug: str = "credit-scoring", point_slug: str = "loan-review", **rules: Any
) -> InterventionPoint:
    """A system with the credit labels and one validation-stage intervention point."""
    system = AISystem.objects.filter(slug=system_slug).first() or system_create(
        actor=None, slug=system_slug, name=system_slug.replace("-", " ").title(), labels=list(LABELS),
        declared_tier="high", annex_iii_area="5b",
    )
    rules.setdefault("stage", "validation")
    rules.setdefault("confidence_below", 0.8)
    rules.setdefault("guidelines", GUIDELINES)
    return intervention_point_create(actor=None, system=system, slug=point_slug,
                                     name=point_slug.replace("-", " ").title(), **rules)


def make_queued_case(
    point: InterventionPoint,
    *,
    external_id: str,
    label: str | None = "approve",
    confidence: float | None = 0.62,
    blind: bool = False,
    reasons: list[str] | None = None,
    input: dict[str, Any] | None = None,
    age_seconds: int = 60,
) -> Case:
    """A routed case waiting in the queue, as ingestion leaves it."""
    data = input if input is not None else {
        "amount": 25000,
        "applicant": {"name": "A. Example", "employment": {"type": "salaried", "years": 4}},
        "documents": ["payslip", "id-card"],
        "notes": (
            "Applicant asks for a loan to renovate the family house. Stated income is 3,200 EUR net per "
            "month; the attached payslip names a different employer than the application form. A previous "
            "loan was repaid early in 2023."
        ),
    }
    return Case.objects.create(
        system=point.system,
        intervention_point=point,
        external_id=external_id,
        input=data,
        input_hash=hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest(),
        prediction_label=label,
        prediction_confidence=confidence if label is not None else None,
        model_version="v3.1" if label is not None else "",
        status=CaseStatus.QUEUED,
        routed=True,
        routing_reasons=reasons if reasons is not None else ["confidence_below"],
        rules_version=point.version,
        reviewers_required=point.reviewers_required,
        blind=blind,
        received_at=timezone.now() - timedelta(seconds=age_seconds),
    )
