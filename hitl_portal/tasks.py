"""Project-level periodic tasks."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from hitl_portal.models import Heartbeat


@shared_task(name="hitl_portal.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Leave a trace that beat scheduled and a worker ran something (read by /healthz)."""
    Heartbeat.objects.update_or_create(name="worker", defaults={"seen_at": timezone.now()})


@shared_task(name="hitl_portal.prune_embedded_broker", ignore_result=True)
def prune_embedded_broker(max_age_s: int = 3600) -> int:
    """Delete messages the embedded broker delivered more than ``max_age_s`` ago.

    kombu's SQL transport marks a delivered message invisible and never deletes it;
    a message a worker gives back is stored again as a new row, so delivered rows
    are dead weight that every poll of the queue would otherwise scan. Returns the
    number of rows deleted (0 on a real broker, where there is nothing to do).
    """
    path = settings.HITL_EMBEDDED_BROKER_FILE
    if path is None or not Path(path).exists():
        return 0
    # kombu stamps delivery with naive local time (datetime.now), stored as ISO text.
    cutoff = (datetime.now() - timedelta(seconds=max_age_s)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with closing(sqlite3.connect(path, timeout=30)) as db:
        exists = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kombu_message'").fetchone()
        if not exists:
            return 0
        with db:
            deleted = db.execute(
                "DELETE FROM kombu_message WHERE visible = 0 AND timestamp < ?", (cutoff,)
            ).rowcount
    return deleted


@shared_task(name="hitl_portal.deliver_notifications", ignore_result=True, soft_time_limit=240, time_limit=300)
def deliver_notifications() -> int:
    """Send the notification deliveries that are due (new ones, and retries whose backoff passed)."""
    from hitl_portal.notifications import deliver_due

    return deliver_due()
