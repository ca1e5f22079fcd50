"""``GET /api/v1/cases/{id}/wait/?timeout=30``: an agent waits for a human decision.

An async view: under the ASGI server (``hitl_portal.asgi``) a waiting agent costs
a coroutine, not a worker thread. Each read of the case goes through the same
DRF view as ``GET /cases/{id}/`` (authentication, role, visibility, the case
representation), run in a thread for the moment it takes; between reads the
view awaits the decision's notification (``reviews.services.waiting``). It
answers 200 with the case as soon as it is decided, or with its current state
when the timeout passes (the agent then asks again).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import View

from hitl_portal.roles import COMPLIANCE_OFFICER, INTEGRATION, MANAGER, REVIEWER
from reviews.api.views.cases import CaseDetailView
from reviews.models import CaseStatus
from reviews.services.waiting import watch

MAX_TIMEOUT = 60
DEFAULT_TIMEOUT = 30
DONE_STATUSES = frozenset((CaseStatus.DECIDED, CaseStatus.AUTO_ACCEPTED))
# The reads of every wait in the process run on these few threads. Not on Django's
# thread-sensitive default: under ASGI that is a thread per request, each opening a
# database connection of its own that lives as long as the wait (and, with
# persistent connections, longer), so 200 waiting agents took 200 connections and
# exhausted PostgreSQL's max_connections (bench/agents_waiting.py). Here each thread
# keeps one connection, so a process's waiters cost at most READ_THREADS of them.
# Only under ASGI: served by WSGI (the test server, a plain gunicorn) the view runs on
# a loop of its own in the request's worker thread, whose connection the reads use.
READ_THREADS = 4
_reads = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="hitl-wait-read")


class _UnthrottledCaseRead(CaseDetailView):
    """The re-reads of a wait: the request was throttled once, at its first read."""

    throttle_classes: list[Any] = []


_first_read = CaseDetailView.as_view()
_re_read = _UnthrottledCaseRead.as_view()


def _read(request: HttpRequest, pk: int, *, first: bool) -> HttpResponse:
    response = (_first_read if first else _re_read)(request, pk=pk)
    response.render()
    return response


def _read_on_shared_thread(request: HttpRequest, pk: int, *, first: bool) -> HttpResponse:
    # What Django does around each request, done around each read on the shared
    # threads: drop a connection that is broken or past DB_CONN_MAX_AGE. (Not in the
    # request's own thread: there Django's request signals do it, and the test
    # client turns them off so as not to close the test's transaction.)
    close_old_connections()
    try:
        return _read(request, pk, first=first)
    finally:
        close_old_connections()


_read_shared = sync_to_async(_read_on_shared_thread, thread_sensitive=False, executor=_reads)
_read_in_request_thread = sync_to_async(_read)


def _timeout(request: HttpRequest) -> int | None:
    raw = request.GET.get("timeout")
    if raw is None or raw == "":
        return DEFAULT_TIMEOUT
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 0 <= value <= MAX_TIMEOUT else None


class CaseWaitView(View):
    """Long-poll for a case's decision (same access as ``GET /cases/{id}/``)."""

    roles = {"GET": {INTEGRATION, COMPLIANCE_OFFICER, MANAGER, REVIEWER}}
    http_method_names = ["get", "options"]

    async def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        timeout = _timeout(request)
        if timeout is None:
            return JsonResponse({"timeout": [f"Must be a whole number of seconds from 0 to {MAX_TIMEOUT}."]},
                                status=400)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        first = True
        read = _read_shared if isinstance(request, ASGIRequest) else _read_in_request_thread
        async with watch(pk) as watcher:
            while True:
                response = await read(request, pk, first=first)
                first = False
                if response.status_code != 200 or loop.time() >= deadline:
                    break
                if response.data.get("status") in DONE_STATUSES:  # type: ignore[attr-defined]
                    break
                await watcher.signal(deadline - loop.time())
        response["Cache-Control"] = "no-store"
        return response


def add_wait_operation(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: document ``GET /api/v1/cases/{id}/wait/``."""
    case_get = result.get("paths", {}).get("/api/v1/cases/{id}/", {}).get("get")
    if case_get is None:
        return result
    ok = case_get["responses"]["200"]
    result["paths"]["/api/v1/cases/{id}/wait/"] = {"get": {
        "operationId": "cases_wait",
        "summary": "Wait for a case's decision (long-poll)",
        "description": (
            "Blocks until the case is decided (or auto-accepted) or the timeout passes, then answers 200 "
            "with the case representation: its current state after a timeout, so the agent asks again. "
            "Same access as GET /api/v1/cases/{id}/."
        ),
        "tags": case_get.get("tags", ["cases"]),
        "security": case_get.get("security", []),
        "parameters": [
            {"in": "path", "name": "id", "required": True, "schema": {"type": "integer"}},
            {"in": "query", "name": "timeout", "required": False,
             "schema": {"type": "integer", "minimum": 0, "maximum": MAX_TIMEOUT, "default": DEFAULT_TIMEOUT},
             "description": "Seconds to wait at most."},
        ],
        "responses": {
            "200": ok,
            "400": {"description": "Invalid timeout (errors keyed by \"timeout\")."},
            **{code: body for code, body in case_get["responses"].items() if code in ("401", "403", "404")},
        },
    }}
    return result
