"""Celery tasks of the fairness app: they take ids and call the services (``fairness.services``).

Every task is idempotent, acknowledged late (a worker lost mid-task gets its
message redelivered) and keeps no result in the backend: results live in the
audit tables. Chunks fan in through the database, never through a chord.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError, InterfaceError, OperationalError

from fairness import services

logger = logging.getLogger(__name__)

# Transient database trouble (a restart, a dropped connection, a deadlock victim) is retried.
TRANSIENT = (OperationalError, InterfaceError)
MAX_RETRIES = 3


def _give_up(audit_id: int, exc: BaseException) -> None:
    logger.exception("bias audit %s failed", audit_id)
    try:
        services.bias_audit_fail(audit_id=audit_id, error=f"{type(exc).__name__}: {exc}")
    except DatabaseError:
        logger.exception("could not mark bias audit %s failed", audit_id)


@shared_task(bind=True, name="fairness.run_bias_audit", acks_late=True, ignore_result=True, max_retries=MAX_RETRIES)
def run_bias_audit(self, audit_id: int) -> int:
    """Plan the audit and enqueue its chunks (or resume the chunks not done); returns how many were enqueued."""
    try:
        return len(services.bias_audit_start(audit_id=audit_id))
    except TRANSIENT as exc:
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=2 ** self.request.retries) from exc
        _give_up(audit_id, exc)
        raise
    except Exception as exc:
        _give_up(audit_id, exc)
        raise


@shared_task(bind=True, name="fairness.audit_chunk", acks_late=True, ignore_result=True, max_retries=MAX_RETRIES)
def audit_chunk(self, audit_id: int, index: int) -> None:
    """Count chunk ``index`` of the audit's plan (upsert) and finish the audit if it was the last one."""
    try:
        services.bias_audit_run_chunk(audit_id=audit_id, index=index)
    except TRANSIENT as exc:
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=2 ** self.request.retries) from exc
        _give_up(audit_id, exc)
        raise
    except Exception as exc:
        _give_up(audit_id, exc)
        raise


@shared_task(name="fairness.schedule_nightly_audits", ignore_result=True)
def schedule_nightly_audits() -> int:
    """Beat, nightly: an audit per active system × protected attribute over the last 30 days."""
    return len(services.schedule_nightly_audits())


@shared_task(name="fairness.resume_stale_audits", ignore_result=True)
def resume_stale_audits() -> int:
    """Beat, every few minutes: resume open audits that stopped making progress (a killed worker)."""
    return len(services.resume_stale_audits())
