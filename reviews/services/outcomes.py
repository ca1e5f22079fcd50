"""Ground truth reported by an integration after the fact (accuracy of AI and of humans)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import record_event
from hitl_portal.actors import Actor
from reviews.models import Case


@transaction.atomic
def case_report_outcome(*, actor: Actor, case: Case, true_label: str, reason: str = "") -> Case:
    """Record (or correct) a case's true label; audited with the value it replaced.

    A correction is allowed (a chargeback reversed, an appeal won) but never
    silent: it needs a ``reason``, and the event keeps the previous label, the
    new one and the reason. Reporting the same label again changes nothing and
    records nothing.
    """
    locked = Case.objects.select_for_update(of=("self",)).select_related("system").get(pk=case.pk)
    labels = locked.system.labels or []
    if true_label not in labels:
        raise ValidationError({"true_label": ["Not one of the system's labels."]})
    if locked.true_label == true_label:
        return locked
    before = locked.true_label
    reason = reason.strip()
    if before is not None and not reason:
        raise ValidationError(
            {"reason": [f"This case already has the outcome {before!r}: say why it is replaced."]}
        )
    locked.true_label = true_label
    locked.true_label_at = timezone.now()
    locked._history_user = actor  # type: ignore[attr-defined]
    locked.save(update_fields=["true_label", "true_label_at"])
    record_event(
        "case.outcome_reported",
        actor=actor,
        obj=locked,
        system_id=locked.system_id,
        case_id=locked.pk,
        before={"true_label": before},
        after={"true_label": true_label},
        reason=reason,
        data={
            "matches_ai": locked.prediction_label == true_label,
            "matches_final": locked.final_label == true_label,
            "correction": before is not None,
        },
    )
    return locked
