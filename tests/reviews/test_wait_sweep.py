"""The wait hub's sweep: waiters whose decision notification was lost still wake (one query for all)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reviews.models import CaseStatus, Resolution
from reviews.services import waiting
from tests.reviews.queue_helpers import make_case, make_point


def _closed(status: str, resolution: str) -> dict[str, Any]:
    return {"status": status, "resolution": resolution, "final_label": "approve", "decided_at": timezone.now()}


# The sweep reads on its own thread, so on its own connection: the rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def test_sweep_wakes_only_the_waiters_of_decided_cases(monkeypatch: Any) -> None:
    point = make_point()
    decided = make_case(point, **_closed(CaseStatus.DECIDED, Resolution.REVIEWED))
    auto = make_case(point, routed=False, **_closed(CaseStatus.AUTO_ACCEPTED, Resolution.AUTO_ACCEPTED))
    still_open = make_case(point)
    monkeypatch.setattr(waiting, "POLL_SECONDS", 0.01)

    async def sweep_once() -> dict[int, bool]:
        hub = waiting._Hub()
        events = {case.pk: hub.register(case.pk) for case in (decided, auto, still_open)}
        sweeper = asyncio.get_running_loop().create_task(hub._sweep())
        try:
            await asyncio.wait_for(asyncio.gather(events[decided.pk].wait(), events[auto.pk].wait()), timeout=30)
        finally:
            sweeper.cancel()
        return {pk: event.is_set() for pk, event in events.items()}

    # On a thread of its own: a browser test's sync Playwright may have left an event loop
    # running on the main thread, where asyncio.run() refuses to start.
    with ThreadPoolExecutor(max_workers=1) as pool:
        woken = pool.submit(asyncio.run, sweep_once()).result(timeout=60)
    assert woken == {decided.pk: True, auto.pk: True, still_open.pk: False}


def test_the_sweep_asks_once_for_every_waiter() -> None:
    point = make_point()
    cases = [make_case(point, **_closed(CaseStatus.DECIDED, Resolution.REVIEWED)) for _ in range(5)]
    cases.append(make_case(point))
    with CaptureQueriesContext(connection) as queries:
        found = waiting._decided_among([case.pk for case in cases])
    assert sorted(found) == sorted(case.pk for case in cases[:5])
    assert len(queries) == 1
