"""Queue, lease, SLA and housekeeping tasks (beat runs them).

Both are idempotent and chunked in their services; they act as the system
actor (the Celery prerun hook binds it) and return how many cases they moved.
"""

from __future__ import annotations

from celery import shared_task

from reviews.services.decisions import decision_copies_fill
from reviews.services.escalations import alert_stuck_cases
from reviews.services.idempotency import idempotency_purge
from reviews.services.queue import expire_leases
from reviews.services.sla import apply_sla_breaches

__all__ = [
    "alert_stuck_cases_task", "apply_sla_breaches_task", "expire_leases_task", "fill_decision_copies_task",
    "purge_idempotency_keys_task",
]


@shared_task(name="reviews.expire_leases", ignore_result=True, acks_late=True)
def expire_leases_task() -> int:
    """Return cases whose claim lease expired to the queue."""
    return expire_leases()


@shared_task(name="reviews.apply_sla_breaches", ignore_result=True, acks_late=True)
def apply_sla_breaches_task() -> int:
    """Apply ``on_sla_breach`` to overdue open cases."""
    return apply_sla_breaches()


@shared_task(name="reviews.purge_idempotency_keys", ignore_result=True, acks_late=True)
def purge_idempotency_keys_task() -> int:
    """Drop idempotency keys past their retention (never under 24 h)."""
    return idempotency_purge()


@shared_task(name="reviews.training_expiry_alerts", ignore_result=True, soft_time_limit=300, time_limit=360)
def training_expiry_alerts_task() -> int:
    """Daily: alert 30 days before a reviewer's training expires (once per record)."""
    from reviews.services.people import training_expiry_alerts

    return training_expiry_alerts()


@shared_task(name="reviews.alert_stuck_cases", ignore_result=True, acks_late=True)
def alert_stuck_cases_task() -> int:
    """Alert the compliance officers about open cases nobody eligible can claim (once per case)."""
    return alert_stuck_cases()


@shared_task(name="reviews.fill_decision_copies", ignore_result=True, soft_time_limit=600, time_limit=660)
def fill_decision_copies_task() -> int:
    """Daily: copy the case's system and AI label onto decisions written without them (during a deploy)."""
    return decision_copies_fill()

