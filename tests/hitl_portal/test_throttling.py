"""The integration throttle counts in fixed windows (hitl_portal.api.throttling), on Redis and in memory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache, caches
from django.test import override_settings
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from hitl_portal.api.throttling import WindowedUserRateThrottle

BACKENDS = {"locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if os.environ.get("REDIS_URL"):
    BACKENDS["redis"] = {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                         "LOCATION": os.environ["REDIS_URL"]}


class _Throttle(WindowedUserRateThrottle):
    rate = "3/min"
    clock = 1_000_040.0  # 20 s into a minute window (60 × 16,667 = 1,000,020)

    def timer(self) -> float:
        return self.clock


def _request(user: Any) -> Any:
    request = APIRequestFactory().get("/x/")
    force_authenticate(request, user=user)
    return APIView().initialize_request(request)


def _window_key(throttle: _Throttle, request: Any) -> str:
    return f"{throttle.get_cache_key(request, None)}:w{int(_Throttle.clock // 60)}"


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    with override_settings(CACHES={"default": BACKENDS[request.param]}):
        cache.clear()
        yield request.param
        cache.clear()


@pytest.mark.django_db
def test_the_rate_holds_within_a_window_and_resets_in_the_next(backend: str, make_user: Any) -> None:
    request = _request(make_user("integration"))
    throttles = [_Throttle() for _ in range(4)]
    assert [t.allow_request(request, None) for t in throttles] == [True, True, True, False]
    assert throttles[-1].wait() == pytest.approx(40.0)  # the next window starts in 40 s

    later = _Throttle()
    later.clock = 1_000_040.0 + 60
    assert later.allow_request(request, None) is True


@pytest.mark.django_db
def test_each_client_has_its_own_counter(backend: str, make_user: Any) -> None:
    first, second = _request(make_user("integration")), _request(make_user("integration"))
    for _ in range(3):
        assert _Throttle().allow_request(first, None)
    assert not _Throttle().allow_request(first, None)
    assert _Throttle().allow_request(second, None)


@pytest.mark.django_db
def test_the_cache_holds_one_counter_per_window_with_its_expiry(backend: str, make_user: Any) -> None:
    request = _request(make_user("integration"))
    throttle = _Throttle()
    throttle.num_requests = 1000
    for _ in range(50):
        assert throttle.allow_request(request, None)
    assert cache.get(_window_key(throttle, request)) == 50
    if backend == "redis":
        ttl = cache._cache.get_client(write=False).ttl(cache.make_and_validate_key(_window_key(throttle, request)))
        assert 40 <= ttl <= 41  # the rest of the window and one second


@pytest.mark.django_db
def test_an_evicted_counter_starts_again_at_one(make_user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with override_settings(CACHES={"default": BACKENDS["locmem"]}):
        request = _request(make_user("integration"))
        throttle = _Throttle()
        monkeypatch.setattr(caches["default"], "add", lambda *a, **k: False)  # gone before the incr
        assert throttle.allow_request(request, None) is True
        assert cache.get(_window_key(throttle, request)) == 1


@pytest.mark.skipif("redis" not in BACKENDS, reason="needs REDIS_URL")
def test_on_redis_one_client_per_backend_is_built_once_reused_and_freed_with_its_backend() -> None:
    import gc
    import weakref

    from django.core.cache.backends.redis import RedisCache

    from hitl_portal.api.throttling import _redis_client

    location = BACKENDS["redis"]["LOCATION"]
    backend = RedisCache(location, {})
    first = _redis_client(backend)
    assert _redis_client(backend) is first
    assert first.connection_pool is backend._cache._get_connection_pool(True)
    other = RedisCache(location.rsplit("/", 1)[0] + "/15", {})
    elsewhere = _redis_client(other)
    assert elsewhere is not first and elsewhere.connection_pool.connection_kwargs["db"] == 15

    # A backend made per request context (the ASGI long-polls) must not leave its client,
    # pool and connections behind.
    gone = weakref.ref(first)
    pool = weakref.ref(first.connection_pool)
    del backend, first
    gc.collect()
    assert gone() is None and pool() is None
