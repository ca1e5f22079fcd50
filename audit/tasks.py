"""Celery tasks of the audit app (beat runs the sealer every second)."""

from __future__ import annotations

from celery import shared_task

from audit.services import seal_pending


@shared_task(name="audit.seal_pending", ignore_result=True)
def seal_pending_task() -> int:
    """Seal whatever the inline after-commit sealer left behind (contended or failed).

    Waits for the advisory lock rather than skipping: beat is the safety net, so it
    must make progress even while another sealer is busy. Idempotent: sealing an
    empty backlog does nothing.
    """
    return seal_pending(wait=True)
