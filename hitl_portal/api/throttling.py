"""Rate throttles counted in fixed windows: one counter per client and window, not a list of requests."""

from __future__ import annotations

import math
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache import cache as default_cache
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import UserRateThrottle

# One redis-py client per cache backend's write pool: Django's ``RedisCacheClient.get_client``
# builds a new ``Redis`` on every call, and its constructor (a table of ~170 response
# callbacks) cost 0.05 ms of CPU per throttled request. The client is kept on Django's
# RedisCacheClient itself, so it lives and dies with that backend and its pools (a backend
# made per request context, as under the ASGI long-polls, takes its client with it). A
# client is safe to share between threads: each command takes a connection from the pool.
_CLIENT_ATTR = "_hitl_write_client"


def _redis_client(backend: RedisCache) -> Any:
    cache_client: Any = backend._cache  # Django's RedisCacheClient (its pools are private, and untyped)
    pool = cache_client._get_connection_pool(True)
    kept = getattr(cache_client, _CLIENT_ATTR, None)
    if kept is None or kept.connection_pool is not pool:
        kept = cache_client._client(connection_pool=pool)
        setattr(cache_client, _CLIENT_ATTR, kept)
    return kept


class WindowedUserRateThrottle(UserRateThrottle):
    """DRF's per-user rate, counted with one atomic counter per client and window.

    DRF's ``SimpleRateThrottle`` keeps the time of every request of the last window in
    one cache value, reads it, drops the expired entries, prepends one and writes it
    all back on every request. The cost grows with the rate: at 400 requests a second
    one integration's list holds 24,000 timestamps, unpickled and pickled (and, with
    Redis, sent both ways) per request. The read and the write are also separate, so
    two processes serving one client overwrite each other's entries and the client
    gets more than its rate.

    Here each window of ``duration`` seconds has one counter: on Redis one round trip
    (``SET NX EX`` and ``INCR`` in one ``MULTI``, atomic across processes; Django's own
    ``add`` and ``incr`` would take three), elsewhere ``cache.add`` then ``cache.incr``. A client
    can send up to twice its rate across a window boundary; for the integration rate,
    which shapes traffic and is no security boundary, that is the right trade. The
    login and token throttles keep DRF's sliding window.
    """

    window_end: float = 0.0
    # Set by SimpleRateThrottle.__init__ from the rate (the stubs do not declare them).
    num_requests: int
    duration: int

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_end = (window + 1) * self.duration
        key = f"{self.key}:w{window}"
        # The counter outlives its window by a second, so a late increment never recreates it.
        return self._count(key, math.ceil(self.window_end - self.now) + 1) <= self.num_requests

    def _count(self, key: str, timeout: int) -> int:
        """Add one to the window's counter (created with its expiry) and return it."""
        backend: BaseCache = caches[DEFAULT_CACHE_ALIAS] if self.cache is default_cache else self.cache
        if isinstance(backend, RedisCache):
            full_key = backend.make_and_validate_key(key)
            # Django's Redis serializer stores an int as itself, so INCR works on what SET wrote
            # and ``cache.get`` reads the count back. ``_cache`` is Django's RedisCacheClient.
            client = _redis_client(backend)
            with client.pipeline(transaction=True) as pipe:
                pipe.set(full_key, 0, ex=timeout, nx=True)
                pipe.incr(full_key)
                return int(pipe.execute()[1])
        backend.add(key, 0, timeout)
        try:
            return backend.incr(key)
        except ValueError:  # evicted between add and incr
            backend.set(key, 1, timeout)
            return 1

    def wait(self) -> float | None:
        return max(0.0, self.window_end - self.timer())
