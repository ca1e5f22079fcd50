"""The benchmark's WSGI entry point: the portal, and ``POST /bench/bare/`` answered without Django.

``/bench/bare/`` reads the body and answers a 201 with a small JSON body straight from
WSGI: its cost per request is gunicorn's, the loopback connection's and the client's,
the floor under any Django request. Every other path goes to the portal (profiled
under ``--profile``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

if os.environ.get("HITL_BENCH_PROFILE_DIR"):
    from profiled_wsgi import application as portal_application
else:
    from hitl_portal.wsgi import application as portal_application

BARE_BODY = b'{"id": null, "status": "bare"}'


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/bench/bare/":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        environ["wsgi.input"].read(length)
        start_response("201 Created", [("Content-Type", "application/json"),
                                       ("Content-Length", str(len(BARE_BODY)))])
        return [BARE_BODY]
    return portal_application(environ, start_response)
