"""The seal-request coordination shared by all web processes (``audit.services._SEAL_SCRIPT``, in Redis).

Each verdict says whether a commit's events will be sealed by a request that starts
after the commit: 0 publish now (lead), n > 0 publish a trailing request due in n ms,
-n another process's trailing request is due in n ms. Run against the real Redis.
"""

from __future__ import annotations

import os
import uuid

import pytest

from audit.services import _SEAL_SCRIPT

redis = pytest.importorskip("redis")


@pytest.fixture
def redis_script():
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14"
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("needs the Redis of REDIS_URL")
    prefix = f"test:seal:{uuid.uuid4()}"
    keys = [f"{prefix}:lead", f"{prefix}:trail"]
    yield client, client.register_script(_SEAL_SCRIPT), keys
    client.delete(*keys)


def test_lead_then_one_trailing_request_per_interval(redis_script) -> None:
    _, script, keys = redis_script
    assert script(keys=keys, args=[60_000]) == 0  # first commit: publish now
    trailing = script(keys=keys, args=[60_000])
    assert 0 < trailing <= 60_000  # a later commit in the interval: one trailing request at its end
    assert -60_000 <= script(keys=keys, args=[60_000]) < 0  # others rely on that trailing request


def test_a_trail_never_outlives_the_lead_it_trails(redis_script) -> None:
    """The trailing request runs when the lead expires, so its key must expire then too.

    A trail key kept for a whole interval from its own start outlived the lead: the next
    interval's commits were told that an already-run trailing request would cover them,
    and their events stayed unsealed until the next request (found by bench/pipeline.py).
    """
    client, script, keys = redis_script
    lead, trail = keys
    assert script(keys=keys, args=[60_000]) == 0
    client.pexpire(lead, 20_000)  # as if 40 s of the interval had passed
    due = script(keys=keys, args=[60_000])
    assert 0 < due <= 20_000
    # The lead's TTL is read first: both count down, so the trail read a moment later cannot show
    # more unless it really expires later (reading them the other way round failed by one ms).
    lead_ttl = client.pttl(lead)
    trail_ttl = client.pttl(trail)
    assert 0 < trail_ttl <= lead_ttl
