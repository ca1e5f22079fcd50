"""Quality tasks (beat): daily reviewer snapshots and competence enforcement.

Both are idempotent (upserts; a suspended reviewer is not suspended again) and act
as the system actor (the Celery prerun hook binds it).
"""

from __future__ import annotations

from celery import shared_task

from quality.services.competence import enforce_competence
from quality.services.snapshots import snapshot_reviewer_quality

__all__ = ["enforce_competence_task", "snapshot_reviewer_quality_task"]


@shared_task(name="quality.snapshot_reviewer_quality", ignore_result=True, acks_late=True)
def snapshot_reviewer_quality_task() -> int:
    """Store today's quality figures of every reviewer (what reviewers see of their own gold figures)."""
    return snapshot_reviewer_quality()


@shared_task(name="quality.enforce_competence", ignore_result=True, acks_late=True)
def enforce_competence_task() -> int:
    """Suspend reviewers whose required training expired or whose gold accuracy fell below the threshold."""
    return enforce_competence()
