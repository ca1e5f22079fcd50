"""The MCP server (hitl_portal_client.mcp_server) driven by the official ``mcp`` client (issue 14).

Over stdio (the server as a subprocess, token from its environment) and over
streamable HTTP (a subprocess on a free port, token per request), both against
the live test portal; the test decides the submitted case as a reviewer.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from reviews.models import Case
from tests.clients.conftest import SDK_SRC
from tests.clients.helpers import REPLIES, SYSTEM, TOOLS, agent_setup, decide_next, run_async

pytestmark = pytest.mark.django_db(transaction=True)


def _args(live_server: Any) -> list[str]:
    return ["-m", "hitl_portal_client.mcp_server", "--portal", live_server.url, "--system", SYSTEM,
            "--action-point", TOOLS, "--review-point", REPLIES]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SDK_SRC), **extra}


def _structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result
    return result.structured_content


def test_stdio_lists_tools_and_answers_request_approval(live_server: Any) -> None:
    setup = agent_setup()
    params = StdioServerParameters(command=sys.executable, args=_args(live_server),
                                   env=_env(HITL_TOKEN=setup["token"]))

    async def scenario() -> tuple[set[str], dict[str, Any]]:
        async with Client(params, read_timeout_seconds=60) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            call = asyncio.create_task(client.call_tool(
                "request_approval",
                {"tool": "send_payment", "arguments": {"amount": 1200, "to": "ACME"}, "agent": "mcp-agent",
                 "rationale": "Invoice 42", "timeout_seconds": 60},
            ))
            await asyncio.to_thread(decide_next, setup["reviewer"], outcome="modify",
                                    arguments={"amount": 1000, "to": "ACME"}, rationale="Partial payment.")
            return tools, _structured(await call)

    tools, answer = run_async(scenario())
    assert {"request_approval", "request_review", "get_case"} <= tools
    assert answer["decision"] == "approved"
    assert answer["arguments"] == {"amount": 1000, "to": "ACME"} and answer["modified"] is True
    assert Case.objects.get(pk=answer["case_id"]).submitted_by_id == setup["integration"].pk


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_streamable_http_needs_a_token_and_answers_request_review(live_server: Any) -> None:
    setup = agent_setup()
    port = _free_port()
    process = subprocess.Popen([sys.executable, *_args(live_server), "--transport", "http", "--port", str(port)],
                               env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)

        async def call(headers: dict[str, str], name: str, arguments: dict[str, Any],
                       decide: dict[str, Any] | None = None) -> Any:
            http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60))
            async with Client(streamable_http_client(url, http_client=http), read_timeout_seconds=60) as client:
                names = {tool.name for tool in (await client.list_tools()).tools}
                assert "request_review" in names
                task = asyncio.create_task(client.call_tool(name, arguments))
                if decide is not None:
                    await asyncio.to_thread(decide_next, setup["reviewer"], **decide)
                return await task

        refused = run_async(call({}, "get_case", {"case_id": 1}))
        assert refused.is_error and "Authorization" in str(refused.content)
        answer = _structured(run_async(call(
            {"Authorization": f"Bearer {setup['token']}"}, "request_review",
            {"text": "Refunds take 90 days.", "timeout_seconds": 60},
            decide={"outcome": "edit", "text": "Refunds take 30 days."},
        )))
        assert answer["decision"] == "edited" and answer["text"] == "Refunds take 30 days."
        case = _structured(run_async(call({"Authorization": f"Bearer {setup['token']}"}, "get_case",
                                            {"case_id": answer["case_id"]})))
        assert case["status"] == "decided" and case["kind"] == "generation"
    finally:
        process.terminate()
        process.wait(timeout=10)
