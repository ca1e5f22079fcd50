"""Publishing "case decided" for waiting agents: one kept Redis client per process, not one per decision."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from reviews.services import waiting

redis = pytest.importorskip("redis")


@pytest.fixture
def redis_url(monkeypatch: pytest.MonkeyPatch) -> str:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14"
    try:
        redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("needs the Redis of REDIS_URL")
    monkeypatch.setattr(waiting, "_redis_url", lambda: url)
    return url


def _listener(url: str) -> tuple[Any, Any]:
    client = redis.Redis.from_url(url, socket_timeout=10)
    pubsub = client.pubsub()
    pubsub.subscribe(waiting.CHANNEL)
    confirmed = pubsub.get_message(timeout=10)  # subscribed before anything is published
    assert confirmed is not None and confirmed["type"] == "subscribe"
    return client, pubsub


def _next_message(pubsub: Any) -> Any:
    message = pubsub.get_message(timeout=10)
    assert message is not None and message["type"] == "message", "nothing was published"
    return json.loads(message["data"])


def test_decisions_are_published_over_one_kept_connection(redis_url: str) -> None:
    waiting._publish([10])  # the process's client and its connection exist from here on
    publisher = waiting._publisher(redis_url)
    opened = publisher.connection_pool._created_connections
    client, pubsub = _listener(redis_url)
    try:
        waiting._publish([11, 12])
        waiting._publish([13])
        assert _next_message(pubsub) == [11, 12]
        assert _next_message(pubsub) == [13]
    finally:
        pubsub.close()
        client.close()
    assert waiting._publisher(redis_url) is publisher
    assert publisher.connection_pool._created_connections == opened  # no connection opened for either publish


def test_a_publish_after_the_server_dropped_the_connection_still_arrives(redis_url: str) -> None:
    """Redis restarted, or closed an idle client: the kept client reconnects instead of losing the wake-up."""
    waiting._publish([21])  # the kept connection exists
    kept_id = waiting._publisher(redis_url).client_id()
    client, pubsub = _listener(redis_url)
    try:
        assert client.client_kill_filter(_id=kept_id) == 1
        waiting._publish([22])
        assert _next_message(pubsub) == [22]
    finally:
        pubsub.close()
        client.close()


def test_an_unreachable_redis_is_logged_not_raised(caplog: pytest.LogCaptureFixture, monkeypatch: Any) -> None:
    monkeypatch.setattr(waiting, "_redis_url", lambda: "redis://127.0.0.1:1/0")  # nothing listens there
    waiting._publish([31])
    assert "could not publish decided cases [31]" in caplog.text
