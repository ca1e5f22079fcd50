"""Celery tasks of the audit app: sealing (every second), signed checkpoints (every ten
minutes) and the nightly verification."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from audit.services import ChainBroken, checkpoint_sign, seal_pending
from hitl_portal.actors import current_actor

logger = logging.getLogger(__name__)


@shared_task(name="audit.seal_pending", ignore_result=True)
def seal_pending_task() -> int:
    """Seal whatever the inline after-commit sealer left behind (contended or failed).

    Waits for the advisory lock rather than skipping: beat is the safety net, so it
    must make progress even while another sealer is busy. Idempotent: sealing an
    empty backlog does nothing.
    """
    return seal_pending(wait=True)


@shared_task(name="audit.checkpoint", ignore_result=True)
def checkpoint_task() -> int | None:
    """Sign a checkpoint of the chain head; returns its seq (None: nothing new, or a broken chain).

    Idempotent: with nothing new since the last checkpoint it does nothing. A broken
    chain is never signed over; it is logged here and filed as an incident by the
    nightly verification.
    """
    try:
        checkpoint = checkpoint_sign(actor=current_actor())
    except ChainBroken as exc:
        logger.error("no checkpoint signed: %s", exc)
        return None
    return checkpoint.seq if checkpoint is not None else None


# Verification reads the whole chain: minutes for tens of millions of events. The hard
# limit stays under the broker's one-hour visibility timeout so it is never redelivered.
@shared_task(name="audit.verify_nightly", ignore_result=True, soft_time_limit=3000, time_limit=3300)
def verify_nightly_task() -> dict[str, Any]:
    """Verify the whole chain and its checkpoints; a break is filed as an incident (once per break)."""
    from audit.selectors import verify_chain
    from audit.services import chain_verification_record

    seal_pending(wait=True)
    result = verify_chain()
    chain_verification_record(result=result)
    return result.as_report()
