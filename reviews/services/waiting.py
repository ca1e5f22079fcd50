"""Agents waiting for a decision: publish "case decided" on commit, await it without a thread.

``notify_decided`` runs in the deciding transaction and publishes the case ids on
the Redis channel ``CHANNEL`` once the transaction commits (never before: a
waiter that re-reads the case must find the decision). ``wait_decided`` is the
async side, used by ``GET /api/v1/cases/{id}/wait/``: each server process holds
one subscription (``_Hub``) and wakes the waiters of a case when its id arrives.
Notifications may be lost (a restart, a Redis hiccup), so every ``POLL_SECONDS``
the hub also asks the database, in ONE statement for all its waiters, which of
their cases are decided, and wakes those; the view re-reads the case before
answering: the database is the truth, the channel only makes the answer prompt.
(Each waiter re-reading its own case every few seconds cost 200 waiters 40 full
case reads a second, a fifth of the ingest rate on 2 cores: bench/agents_waiting.py.)

Without ``REDIS_URL`` (the embedded default) nothing is published and waiters
poll the database every ``EMBEDDED_POLL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import weakref
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections, transaction

from reviews.models import Case, CaseStatus

logger = logging.getLogger(__name__)

CHANNEL = "hitl:case-decided"
# With Redis: how often the hub sweeps for decisions whose notification was lost.
POLL_SECONDS = 5.0
_DONE = (CaseStatus.DECIDED, CaseStatus.AUTO_ACCEPTED)
# The sweeps' one thread (and so one database connection per process).
_sweeps = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hitl-wait-sweep")
# Without Redis: how often a waiter re-reads its case.
EMBEDDED_POLL_SECONDS = 0.5


def _redis_url() -> str:
    return getattr(settings, "REDIS_URL", "") or ""


# One client (a thread-safe connection pool) per Redis URL and process, kept between
# decisions: a client made for each publish paid a TCP connect, a SELECT and a close
# inside the decider's request, before the waiting agent could hear anything (1.1 ms
# p50, 9.5 ms p99 against 0.03 / 2.3 ms reused, under load: docs/PERFORMANCE.md).
_publishers: dict[str, Any] = {}
_publishers_lock = threading.Lock()


def _publisher(url: str) -> Any:
    import redis

    client = _publishers.get(url)
    if client is None:
        with _publishers_lock:
            client = _publishers.get(url)
            if client is None:
                client = _publishers[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client


def _publish(case_ids: list[int]) -> None:
    import redis

    try:
        # The pool reopens a connection the server closed (checked on checkout); with
        # Redis down this fails as before, and the hubs' sweeps find the decision.
        _publisher(_redis_url()).publish(CHANNEL, json.dumps(case_ids))
    except redis.RedisError:
        # Waiters still see the decision at their next poll of the database.
        logger.warning("could not publish decided cases %s on %s", case_ids, CHANNEL, exc_info=True)


def notify_decided(case_ids: Iterable[int]) -> None:
    """After the current transaction commits, tell waiting agents these cases were decided."""
    ids = [int(pk) for pk in case_ids]
    if ids and _redis_url():
        transaction.on_commit(lambda: _publish(ids))


def _decided_among(case_ids: list[int]) -> list[int]:
    """Which of these cases are decided (or auto-accepted): one statement for every waiter of a process."""
    try:
        return list(Case.objects.filter(pk__in=case_ids, status__in=_DONE).values_list("pk", flat=True))
    finally:
        # A connection per sweep (one every POLL_SECONDS a process), never one left open on
        # this idle thread: it would outlive its server's use of it (and block a test database's drop).
        connections.close_all()


_decided_among_async = sync_to_async(_decided_among, thread_sensitive=False, executor=_sweeps)


class _Hub:
    """One Redis subscription per event loop, fanning out to the waiters of each case.

    Under uvicorn a process has one loop, so one subscription. Served by a WSGI
    server instead, each wait runs on a loop of its own (``async_to_sync``) and
    gets its own hub, which ends with it.
    """

    def __init__(self) -> None:
        self.waiters: dict[int, set[asyncio.Event]] = {}
        self.task: asyncio.Task[None] | None = None
        self.sweeper: asyncio.Task[None] | None = None
        self.ready: asyncio.Event | None = None

    async def ensure_listening(self) -> None:
        if self.task is None or self.task.done():
            self.ready = asyncio.Event()
            self.task = asyncio.get_running_loop().create_task(self._listen(self.ready))
        if self.sweeper is None or self.sweeper.done():
            self.sweeper = asyncio.get_running_loop().create_task(self._sweep())
        assert self.ready is not None
        # The first waiter of a process waits (briefly) for the subscription, so a
        # decision published right after its first read of the case is not missed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout=2.0)

    async def _listen(self, ready: asyncio.Event) -> None:
        import redis.asyncio as aioredis

        while True:
            client = aioredis.Redis.from_url(_redis_url())
            try:
                pubsub = client.pubsub()
                await pubsub.subscribe(CHANNEL)
                ready.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._dispatch(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception:  # any Redis failure: retry; waiters keep polling meanwhile
                logger.warning("wait hub lost its Redis subscription; retrying", exc_info=True)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _sweep(self) -> None:
        """Every ``POLL_SECONDS``: wake the waiters whose case was decided without a notification reaching us."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if not self.waiters:
                continue
            try:
                decided = await _decided_among_async(list(self.waiters))
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away: the waiters still answer at their timeout
                logger.warning("wait hub could not sweep for decided cases", exc_info=True)
                continue
            self._wake(decided)

    def _wake(self, ids: Iterable[Any]) -> None:
        for pk in ids:
            for event in self.waiters.get(pk, ()):
                event.set()

    def _dispatch(self, data: Any) -> None:
        try:
            ids = json.loads(data)
        except (TypeError, ValueError):
            return
        self._wake(ids if isinstance(ids, list) else [])

    def register(self, case_id: int) -> asyncio.Event:
        event = asyncio.Event()
        self.waiters.setdefault(case_id, set()).add(event)
        return event

    def unregister(self, case_id: int, event: asyncio.Event) -> None:
        events = self.waiters.get(case_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self.waiters[case_id]


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Hub] = weakref.WeakKeyDictionary()


def _hub_of_loop() -> _Hub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = _Hub()
    return hub


class Watch:
    """A registration for one case's decision; ``await watch.signal(timeout)`` between reads."""

    def __init__(self, case_id: int, event: asyncio.Event | None) -> None:
        self.case_id = case_id
        self.event = event

    async def signal(self, timeout: float) -> None:
        """Return when the case is (probably) decided, or after ``timeout``; then the caller re-reads it.

        With Redis: on its notification, or when the hub's sweep finds it decided.
        Embedded: at the next poll interval.
        """
        if timeout <= 0:
            return
        if self.event is None:
            await asyncio.sleep(min(timeout, EMBEDDED_POLL_SECONDS))
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout=timeout)
        self.event.clear()


@contextlib.asynccontextmanager
async def watch(case_id: int) -> Any:
    """Register for ``case_id``'s decision before the first read of the case (so none is missed)."""
    if not _redis_url():
        yield Watch(case_id, None)
        return
    hub = _hub_of_loop()
    await hub.ensure_listening()
    event = hub.register(case_id)
    try:
        yield Watch(case_id, event)
    finally:
        hub.unregister(case_id, event)
