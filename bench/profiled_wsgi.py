"""cProfile around the portal's WSGI app: used only by ``bench/pipeline.py --profile``.

Each worker keeps one profile per benchmark phase (the client names the phase in
an ``X-Bench-Phase`` header) and writes ``<phase>-<pid>.prof`` into
``$HITL_BENCH_PROFILE_DIR`` when it exits (``bench/gunicorn_profile.py`` hooks
that in). The response body is consumed inside the profile, so the on-commit
work and the connection handling of ``request_finished`` are counted too.

The profiler's clock is the process CPU time (``HITL_BENCH_PROFILE_CLOCK=cpu``,
the default): on a shared two-core machine wall time mostly measures waiting for
a CPU; ``wall`` measures latency instead (database waits included).

It also records the SQL statements of one request per phase and endpoint (the
``SAMPLE_REQUEST``-th one a worker serves) into ``<phase>-<pid>.sql``, so
the round trips of each endpoint can be read off directly. Savepoints appear
there; COMMIT and psycopg's implicit BEGIN do not pass through Django's execute
wrappers, so each transaction costs one more round trip than listed.
"""

from __future__ import annotations

import cProfile
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.db import connection

from hitl_portal.wsgi import application as portal_application

OUT_DIR = os.environ["HITL_BENCH_PROFILE_DIR"]
CLOCK = time.process_time if os.environ.get("HITL_BENCH_PROFILE_CLOCK", "cpu") == "cpu" else time.perf_counter
SAMPLE_REQUEST = 10

_profiles: dict[str, cProfile.Profile] = {}
_served: dict[str, int] = {}
_sql: dict[str, dict[str, list[str]]] = {}


def _recorder(log: list[str]) -> Callable[..., Any]:
    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            log.append(f"[{elapsed:7.2f} ms]{' (many)' if many else ''} {' '.join(sql.split())[:600]}")

    return record


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    phase = "".join(ch for ch in environ.get("HTTP_X_BENCH_PHASE", "other") if ch.isalnum() or ch in "-_")[:40]
    phase = phase or "other"
    profile = _profiles.setdefault(phase, cProfile.Profile(CLOCK))
    endpoint = f"{environ.get('REQUEST_METHOD')} {re.sub(r'/[0-9]+/', '/{id}/', environ.get('PATH_INFO', ''))}"
    key = f"{phase} {endpoint}"
    _served[key] = _served.get(key, 0) + 1
    sample = _served[key] == SAMPLE_REQUEST
    log: list[str] = []
    wrapper = connection.execute_wrapper(_recorder(log)) if sample else None
    if wrapper is not None:
        wrapper.__enter__()
    profile.enable()
    try:
        result = portal_application(environ, start_response)
        try:
            body = list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    finally:
        profile.disable()
        if wrapper is not None:
            wrapper.__exit__(None, None, None)
            _sql.setdefault(phase, {})[endpoint] = [f"{endpoint}: {len(log)} statements", *log]
    return body


def dump() -> None:
    """Write every phase's profile and SQL sample of this worker (gunicorn's worker_exit hook)."""
    for phase, profile in _profiles.items():
        profile.dump_stats(os.path.join(OUT_DIR, f"{phase}-{os.getpid()}.prof"))
    for phase, endpoints in _sql.items():
        with open(os.path.join(OUT_DIR, f"{phase}-{os.getpid()}.sql"), "w", encoding="utf-8") as handle:
            for lines in endpoints.values():
                handle.write("\n".join(lines) + "\n\n")
