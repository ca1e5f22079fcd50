"""Publishing Celery tasks from requests: fast, and never at the cost of the request.

Work a request hands to the worker (sealing audit events, delivering webhooks,
running bias audits) is also kept in tables that beat's sweepers read, so a
lost message only delays it. A request must therefore never wait for a broker
that is down: the publish is tried once, with the short connect timeout of the
settings (``CELERY_BROKER_CONNECTION_TIMEOUT``, ``max_retries: 0`` in the transport
options), and no retry loop. After a failure this process stops trying for a few
seconds, so even a broker that swallows packets (each attempt waiting out the
connect timeout) costs one slow request, not every request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

# After a failed publish, skip publishing in this process for this long (beat and the
# sweepers catch up with whatever was skipped).
BROKER_BACKOFF_S = 5.0
_broker_down_until = 0.0


def enqueue(task: Any, *args: Any, countdown: float | None = None, **kwargs: Any) -> bool:
    """Publish ``task(*args, **kwargs)`` once, without retries; False (logged) when the broker is unreachable.

    ``countdown``: run it that many seconds from now (Celery's ``countdown``).
    """
    from django.conf import settings

    if settings.CELERY_TASK_PUBLISH_RETRY:  # the whole design rests on it: fail loudly, not slowly
        raise RuntimeError("CELERY_TASK_PUBLISH_RETRY must be False: a request must never wait for the broker")
    global _broker_down_until
    now = time.monotonic()
    if now < _broker_down_until:
        logger.info("broker marked down: %s not published; its sweeper will pick the work up", task.name)
        return False
    try:
        # Publish retries are off for every publish (CELERY_TASK_PUBLISH_RETRY = False).
        if countdown is None:
            task.delay(*args, **kwargs)
        else:
            task.apply_async(args, kwargs, countdown=countdown)
    except Exception:  # any transport error: the request has committed and must not fail now
        _broker_down_until = time.monotonic() + BROKER_BACKOFF_S
        logger.warning("could not publish %s; its sweeper will pick the work up", task.name, exc_info=True)
        return False
    return True


def enqueue_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    """``enqueue`` once the current transaction commits (never for a rolled-back one)."""
    transaction.on_commit(lambda: enqueue(task, *args, **kwargs))


def reset_backoff() -> None:
    """Forget a recorded broker failure (tests, and after the broker is known to be back)."""
    global _broker_down_until
    _broker_down_until = 0.0


__all__ = ["BROKER_BACKOFF_S", "enqueue", "enqueue_on_commit", "reset_backoff"]
