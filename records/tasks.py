"""Celery tasks of the records app: the nightly retention purge (task name kept from when it lived in audit)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from hitl_portal.actors import current_actor

logger = logging.getLogger(__name__)


@shared_task(name="audit.purge_expired", ignore_result=True, soft_time_limit=600, time_limit=660)
def purge_expired_task() -> dict[str, Any]:
    """Purge every system up to its retention (legal holds respected); continues in a new task if time runs out."""
    from records.retention import purge_expired

    report = purge_expired(actor=current_actor(), budget_s=300.0)
    if report["more"]:
        purge_expired_task.apply_async(countdown=1)
    return report
