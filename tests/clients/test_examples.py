"""examples/sdk_payment_agent.py runs end to end against the live test server."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import pytest
from hitl_portal_client import Client

from examples.sdk_payment_agent import run
from tests.clients.helpers import SYSTEM, TOOLS, agent_setup, decide_next

pytestmark = pytest.mark.django_db(transaction=True)


def test_payment_agent_example(live_server: Any) -> None:
    setup = agent_setup()
    future: Future[list[str]] = Future()
    with Client(live_server.url, setup["token"]) as portal:

        def agent() -> None:
            try:
                future.set_result(run(portal, system=SYSTEM, intervention_point=TOOLS, say=lambda _: None,
                                      timeout=60))
            except BaseException as exc:  # the test asserts on it
                future.set_exception(exc)

        threading.Thread(target=agent, daemon=True).start()
        decide_next(setup["reviewer"], outcome="modify",
                    arguments={"amount": 1000, "to": "ACME Ltd", "reference": "invoice 42"})
        decide_next(setup["reviewer"], outcome="deny", rationale="Payee unknown.")
        assert future.result(timeout=60) == ["paid 1000 to ACME Ltd (invoice 42)", "denied: Payee unknown."]
