"""Celery tasks of the compliance app (beat schedules them; see ``CELERY_BEAT_SCHEDULE``)."""

from __future__ import annotations

from celery import shared_task

from hitl_portal.actors import current_actor
from incidents.services import incident_overdue_alerts


@shared_task(name="compliance.incident_overdue_alerts", ignore_result=True, soft_time_limit=300, time_limit=360)
def incident_overdue_alerts_task() -> int:
    """Hourly: alert the compliance officers about overdue Art. 73 reports; returns how many incidents.

    Acts as the system user the task hooks bind (``hitl_portal.celery``), so the
    audit events and history rows say the system did it. Idempotent: each
    incident is alerted once.
    """
    return incident_overdue_alerts(actor=current_actor())
