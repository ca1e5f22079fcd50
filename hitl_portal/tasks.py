"""Project-level periodic tasks."""

from celery import shared_task
from django.utils import timezone

from hitl_portal.models import Heartbeat


@shared_task(name="hitl_portal.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Leave a trace that beat scheduled and a worker ran something (read by /healthz)."""
    Heartbeat.objects.update_or_create(name="worker", defaults={"seen_at": timezone.now()})
