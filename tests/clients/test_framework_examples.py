"""examples/openai_agents_payment.py and examples/langgraph_payment.py end to end against the live test server.

The frameworks run with their own scripted models (no LLM, no network but the
portal); a reviewer decides over the portal's API, claiming the case as a reviewer
client would: what the claim hands over (kind, tool call, the tool's schema) is
what the agent proposed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import httpx
import pytest
from hitl_portal_client import AsyncClient, Client

from examples import langgraph_payment, openai_agents_payment
from tests.clients.helpers import PAYMENT_SCHEMA, SYSTEM, TOOLS, agent_setup
from tests.token_helpers import new_token_key

pytestmark = pytest.mark.django_db(transaction=True)

PAYMENT = {"amount": 1200, "to": "ACME Ltd", "reference": "invoice 42"}


def _in_thread(target: Callable[[], Any]) -> Future[Any]:
    """Run the agent beside the test (it blocks until the reviewer decides)."""
    future: Future[Any] = Future()

    def body() -> None:
        try:
            future.set_result(target())
        except BaseException as exc:  # the test asserts on it
            future.set_exception(exc)

    threading.Thread(target=body, daemon=True).start()
    return future


def _reviewer_decides(live_server: Any, reviewer: Any, **verdict: Any) -> dict[str, Any]:
    """Claim the agent's case over the API (once it is submitted), check what the claim carries, decide."""
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Token {new_token_key(reviewer)}"},
                      timeout=30) as api:
        deadline = time.monotonic() + 30
        while True:
            claimed = api.post("/api/v1/queue/claim/", json={"system": SYSTEM, "intervention_point": TOOLS})
            if claimed.status_code == 200:
                break
            assert claimed.status_code == 204, claimed.text
            assert time.monotonic() < deadline, "the agent never submitted its tool call"
            time.sleep(0.1)
        case = claimed.json()["case"]
        assert case["kind"] == "action"
        assert case["action"]["tool"] == "send_payment"
        assert {key: case["action"]["arguments"][key] for key in PAYMENT} == PAYMENT
        assert case["tool_schema"] == PAYMENT_SCHEMA
        decided = api.post(f"/api/v1/cases/{case['id']}/decision/", json={"rationale": "", **verdict})
        assert decided.status_code == 201, decided.text
        return case


def _run_openai_agent(live_server: Any, token: str) -> Future[Any]:
    async def go() -> Any:
        async with AsyncClient(live_server.url, token) as portal:
            return await openai_agents_payment.run(portal, system=SYSTEM, intervention_point=TOOLS,
                                                   payment=PAYMENT, timeout=60, say=lambda _: None)

    return _in_thread(lambda: asyncio.run(go()))


def _run_graph(live_server: Any, token: str) -> Future[Any]:
    def go() -> Any:
        with Client(live_server.url, token) as portal:
            return langgraph_payment.run(portal, system=SYSTEM, intervention_point=TOOLS, payment=PAYMENT,
                                         timeout=60, say=lambda _: None)

    return _in_thread(go)


def test_openai_agent_pays_with_the_reviewers_amount(live_server: Any) -> None:
    setup = agent_setup()
    agent = _run_openai_agent(live_server, setup["token"])
    case = _reviewer_decides(live_server, setup["reviewer"], outcome="modify", rationale="Cap at 1000.",
                             arguments={**PAYMENT, "amount": 1000})
    assert case["action"]["agent"] == "payments-agent"
    answer, ledger = agent.result(timeout=60)
    assert ledger == ["paid 1000 to ACME Ltd (invoice 42)"]
    assert answer == "Done: paid 1000 to ACME Ltd (invoice 42) [amount changed by the reviewer]"


def test_openai_agent_hears_the_denial_and_pays_nothing(live_server: Any) -> None:
    setup = agent_setup()
    agent = _run_openai_agent(live_server, setup["token"])
    _reviewer_decides(live_server, setup["reviewer"], outcome="deny", rationale="Payee unknown.")
    answer, ledger = agent.result(timeout=60)
    assert ledger == []
    assert answer == "Done: payment not made: a reviewer denied it (Payee unknown.)"


def test_langgraph_interrupt_resumes_with_the_approval(live_server: Any) -> None:
    setup = agent_setup()
    graph = _run_graph(live_server, setup["token"])
    case = _reviewer_decides(live_server, setup["reviewer"], outcome="approve")
    assert case["action"]["agent"] == "langgraph-payments"
    answer, payments = graph.result(timeout=60)
    assert payments == ["paid 1200 to ACME Ltd (invoice 42)"] and answer == payments[0]


def test_langgraph_interrupt_resumes_with_the_denial(live_server: Any) -> None:
    setup = agent_setup()
    graph = _run_graph(live_server, setup["token"])
    _reviewer_decides(live_server, setup["reviewer"], outcome="deny", rationale="Duplicate of invoice 41.")
    answer, payments = graph.result(timeout=60)
    assert payments == []
    assert answer == "payment not made: a reviewer denied it (Duplicate of invoice 41.)"
