"""Portal-side set-up for the SDK, MCP and end-to-end tests: an agent system, its points, a reviewer."""

from __future__ import annotations

import time
from typing import Any

from django.db import connection

from reviews.models import Case, CaseStatus
from reviews.services.decisions import decision_record
from reviews.services.queue import claim_next
from tests.reviews.queue_helpers import make_point, make_reviewer, make_system, make_user
from tests.token_helpers import new_token_key

SYSTEM = "credit-scoring"
TOOLS = "agent-tools"
REPLIES = "replies"
PAYMENT_SCHEMA = {
    "type": "object",
    "properties": {"amount": {"type": "number", "maximum": 5000}, "to": {"type": "string"}},
    "required": ["amount", "to"],
}


def agent_setup() -> dict[str, Any]:
    """Action and generation points on one system, an integration with a token, a qualified reviewer."""
    system = make_system(SYSTEM)
    make_point(system, slug=TOOLS, kind="action", confidence_below=None, guidelines="Check payee and amount.",
               tool_rules={"always": ["send_payment"], "never": ["lookup_balance"]},
               tool_schemas={"send_payment": PAYMENT_SCHEMA})
    make_point(system, slug=REPLIES, kind="generation", confidence_below=None, guidelines="Check the facts.",
               text_rules={"max_length": 0})
    integration = make_user("integration", systems=[SYSTEM])
    return {"integration": integration, "token": new_token_key(integration), "reviewer": make_reviewer()}


def wait_for_open_case(timeout: float = 20.0) -> Case:
    """The first case an agent submitted (polled from the test's side while the agent waits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        case = Case.objects.filter(status=CaseStatus.QUEUED).order_by("id").first()
        if case is not None:
            return case
        time.sleep(0.1)
    raise AssertionError("no case was submitted")


def decide_next(reviewer: Any, **verdict: Any) -> Case:
    """Claim the next case as ``reviewer`` and decide it (``outcome``, ``rationale``, ``text``, ``arguments``)."""
    wait_for_open_case()
    case = claim_next(reviewer=reviewer)
    assert case is not None
    verdict.setdefault("rationale", "")
    decided = decision_record(reviewer=reviewer, case=case, label=None, **verdict)
    connection.close()
    return decided


def run_async(coroutine: Any) -> Any:
    """``asyncio.run`` in a thread of its own: Playwright's sync API (session-wide in the browser
    tests) leaves an event loop running in the main thread, where ``asyncio.run`` refuses to start."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
