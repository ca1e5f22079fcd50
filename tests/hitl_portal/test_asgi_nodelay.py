"""``hitl_portal.asgi``: every connection served by uvicorn has Nagle's algorithm off.

uvicorn's ``--workers`` path binds the listening socket itself (``Config.bind_socket``)
without ``IPPROTO_TCP``, so asyncio leaves ``TCP_NODELAY`` off on the connections it
accepts, and a response whose body is written after its headers waits for the
client's delayed ACK (~40 ms a request on a keep-alive connection; uvicorn issue
#3149). The portal's ASGI entry point turns it on for each connection. Checked here
on a real uvicorn server bound that way; nothing is timed.
"""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Any

import pytest
import uvicorn

import hitl_portal.asgi as portal_asgi


def _connection_socket(send: Any) -> Any:
    return send.__self__.transport.get_extra_info("socket")


async def _report_nodelay(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Stands in for the WSGI app behind the portal's router: answers with the connection's TCP_NODELAY."""
    value = _connection_socket(send).getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    body = str(int(bool(value))).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, int]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    sock = config.bind_socket()  # as the --workers supervisor binds it
    server = uvicorn.Server(config)
    # A thread of its own, with its own event loop (no loop is left on the test's thread).
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        thread.join(0.01)
    assert server.started, "uvicorn did not start"
    return server, thread, sock.getsockname()[1]


def _nodelay_of_requests(port: int, count: int) -> list[str]:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        answers = []
        for _ in range(count):  # one keep-alive connection, as an agent's client keeps it
            client.request("GET", "/api/v1/cases/")
            answers.append(client.getresponse().read().decode())
        return answers
    finally:
        client.close()


@pytest.fixture
def portal_router_with_probe(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(portal_asgi, "wsgi", _report_nodelay)
    server, thread, port = _serve(portal_asgi.application)
    yield port
    server.should_exit = True
    thread.join(10)


def test_portal_turns_nagle_off_on_every_request_of_a_keep_alive_connection(portal_router_with_probe):
    assert _nodelay_of_requests(portal_router_with_probe, 3) == ["1", "1", "1"]


def test_no_delay_leaves_a_send_without_a_transport_alone():
    async def send(message: Any) -> None:  # another server's send: nothing to reach
        return None

    portal_asgi._no_delay(send)  # no error, nothing to do
