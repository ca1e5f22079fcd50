"""Applying a recommended confidence threshold (an officer's confirmed act)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.services import record_event
from quality.selectors import GRID_STEPS, threshold_curve
from reviews.models import InterventionPoint
from reviews.services.systems import intervention_point_update


@transaction.atomic
def threshold_apply(
    *, actor: Any, point: InterventionPoint, threshold: float, reason: str, target_error: float | None = None
) -> InterventionPoint:
    """Set the point's ``confidence_below`` to ``threshold`` (a new rules version), audited twice.

    ``intervention_point.updated`` records the rule change (by the systems service)
    and ``threshold.applied`` what the curve promised at that threshold (review
    rate, error of auto-accepted cases, the ground truth it rests on, the
    recommendation). Refused without a reason, off the 0.01 grid, or without
    enough ground truth to stand on.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["A reason is required."]})
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0 <= threshold <= 1:
        raise ValidationError({"threshold": ["Must be a number between 0 and 1."]})
    step = round(threshold * GRID_STEPS)
    if abs(step - threshold * GRID_STEPS) > 1e-6:
        raise ValidationError({"threshold": ["Must be on the 0.01 grid of the curve."]})
    threshold = round(step / GRID_STEPS, 2)
    point = InterventionPoint.objects.select_related("system").get(pk=point.pk)
    curve = threshold_curve(point=point, target_error=target_error)
    if not curve["enough_ground_truth"]:
        raise ValidationError({"threshold": [
            f"Only {curve['ground_truth_cases']} cases with ground truth; at least {curve['min_ground_truth']} needed."
        ]})
    row = curve["curve"][step]
    previous = point.confidence_below
    point = intervention_point_update(actor=actor, point=point, changes={"confidence_below": threshold},
                                      reason=reason)
    record_event(
        "threshold.applied", actor=actor, obj=point, system_id=point.system_id, reason=reason,
        before={"confidence_below": previous},
        after={"confidence_below": threshold, "version": point.version},
        data={
            "recommended_threshold": curve["recommended_threshold"],
            "target_error": curve["target_error"],
            "ground_truth_cases": curve["ground_truth_cases"],
            "expected_review_rate": row["review_rate"],
            "expected_error_rate": row["error_rate"],
        },
    )
    return point
