"""Test data for bias audits: an audited system, and cases with chosen labels per group.

Systems go through the portal's services. Cases are written directly (one
``bulk_create``): the audits read finished cases, and the label combinations
the metrics need (AI, final and true label per group) would take hundreds of
claims and decisions to produce through the review pipeline.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from django.utils import timezone

from reviews.models import AISystem, Case, CaseStatus, InterventionPoint, Resolution
from reviews.services.systems import intervention_point_create, system_create

LABELS = ["approve", "reject"]
_ids = itertools.count(1)


def make_audited_system(
    slug: str = "credit-scoring",
    *,
    attributes: Sequence[str] = ("gender", "age_band"),
    positive_label: str = "approve",
    bias_thresholds: dict[str, Any] | None = None,
    **fields: Any,
) -> tuple[AISystem, InterventionPoint]:
    system = system_create(
        actor=None, slug=slug, name=slug.replace("-", " ").title(), labels=list(LABELS),
        purpose="Scores applications.", declared_tier="high", positive_label=positive_label,
        protected_attributes=list(attributes), bias_thresholds=bias_thresholds or {}, **fields,
    )
    point = intervention_point_create(actor=None, system=system, slug="review", name="Review", stage="validation")
    return system, point


def case_row(
    system: AISystem,
    point: InterventionPoint,
    *,
    group: Any,
    ai: str | None,
    final: str | None,
    truth: str | None = None,
    routed: bool = True,
    status: str | None = None,
    attribute: str = "gender",
    received_at: dt.datetime | None = None,
    is_gold: bool = False,
    subject: dict[str, Any] | None = None,
) -> Case:
    """One unsaved case. ``status`` defaults to decided (routed) or auto_accepted; group None leaves it out."""
    if status is None:
        status = CaseStatus.DECIDED if routed else CaseStatus.AUTO_ACCEPTED
    resolution = None
    if status == CaseStatus.DECIDED:
        resolution = Resolution.REVIEWED
    elif status == CaseStatus.AUTO_ACCEPTED:
        resolution = Resolution.AUTO_ACCEPTED
    if subject is None:
        subject = {} if group is None else {attribute: group}
    return Case(
        system=system,
        intervention_point=point,
        external_id=f"c-{next(_ids)}",
        input={"amount": 1},
        prediction_label=ai,
        prediction_confidence=0.9 if ai is not None else None,
        subject=subject,
        status=status,
        routed=routed,
        resolution=resolution,
        final_label=final,
        true_label=truth,
        is_gold=is_gold,
        gold_label="approve" if is_gold else None,
        received_at=received_at or timezone.now() - dt.timedelta(days=1),
        decided_at=timezone.now() if status in (CaseStatus.DECIDED, CaseStatus.AUTO_ACCEPTED) else None,
    )


def add_cases(system: AISystem, point: InterventionPoint, spec: Iterable[tuple[Any, ...]], **common: Any) -> list[Case]:
    """Create cases from ``(count, group, ai, final, truth[, routed])`` tuples."""
    rows: list[Case] = []
    for item in spec:
        count, group, ai, final, truth, *rest = item
        routed = rest[0] if rest else True
        rows.extend(
            case_row(system, point, group=group, ai=ai, final=final, truth=truth, routed=routed, **common)
            for _ in range(count)
        )
    return Case.objects.bulk_create(rows)
