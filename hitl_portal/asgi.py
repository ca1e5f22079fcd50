"""ASGI entry point: the whole portal under one ASGI server (uvicorn).

Long-polls (``/api/v1/cases/{id}/wait/``) run as Django async views on the event
loop, so hundreds of waiting agents cost coroutines, not threads. Every other
request goes to the ordinary WSGI application in a pool of ``HITL_ASGI_THREADS``
threads (a2wsgi): Django's own ASGI handler would run every sync view on one
shared thread per process, serialising requests that wait on the database.

    uvicorn hitl_portal.asgi:application --workers 4

Every HTTP connection gets ``TCP_NODELAY`` here (``_no_delay``): uvicorn (0.54)
sets it only when it opens the listening socket itself, not with ``--workers``.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from a2wsgi import WSGIMiddleware
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitl_portal.settings")

django_asgi = get_asgi_application()

from django.conf import settings  # noqa: E402 - after the settings module is set
from django.core.wsgi import get_wsgi_application  # noqa: E402

ASYNC_PATHS = re.compile(r"^/api/v1/cases/\d+/wait/$")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

wsgi = WSGIMiddleware(get_wsgi_application(), workers=settings.HITL_ASGI_THREADS)  # type: ignore[arg-type]


_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def _no_delay(send: Send) -> None:
    """Turn Nagle's algorithm off on the connection ``send`` writes to (uvicorn's protocols).

    Why: under ``uvicorn --workers N`` (and gunicorn's uvicorn worker) the listening
    socket is bound by uvicorn with ``proto`` 0, and asyncio enables ``TCP_NODELAY``
    on accepted connections only when ``proto`` is ``IPPROTO_TCP`` (uvicorn issue
    #3149). uvicorn writes a response's headers and its body in two writes, so on a
    keep-alive connection the body waited for the client's delayed ACK: ~40 ms on
    Linux added to every response but a connection's first (an agent's submit, its
    woken ``/wait/``: bench/approval_roundtrip.py). ``send`` is uvicorn's
    request-response cycle's bound method, which holds the transport; any other
    server (or a future uvicorn without that attribute) is left as it is.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    get_extra_info = getattr(transport, "get_extra_info", None)
    if get_extra_info is None:
        return
    sock = get_extra_info("socket")
    if sock is None or sock.family not in _TCP_FAMILIES:
        return
    with contextlib.suppress(OSError):  # the client has gone: nothing left to speed up
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        _no_delay(send)  # one setsockopt, a microsecond: cheaper than remembering the connections
    if scope["type"] == "http" and not ASYNC_PATHS.match(scope.get("path", "")):
        await wsgi(scope, receive, send)  # type: ignore[arg-type]
        return
    await django_asgi(scope, receive, send)  # type: ignore[arg-type]
