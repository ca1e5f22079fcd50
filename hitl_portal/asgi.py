"""ASGI entry point: the whole portal under one ASGI server (uvicorn).

Long-polls (``/api/v1/cases/{id}/wait/``) run as Django async views on the event
loop, so hundreds of waiting agents cost coroutines, not threads. Every other
request goes to the ordinary WSGI application in a pool of ``HITL_ASGI_THREADS``
threads (a2wsgi): Django's own ASGI handler would run every sync view on one
shared thread per process, serialising requests that wait on the database.

    uvicorn hitl_portal.asgi:application --workers 4
"""

from __future__ import annotations

import os
import re
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


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and not ASYNC_PATHS.match(scope.get("path", "")):
        await wsgi(scope, receive, send)  # type: ignore[arg-type]
        return
    await django_asgi(scope, receive, send)  # type: ignore[arg-type]
