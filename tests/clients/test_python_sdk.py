"""The Python SDK (clients/python) against the live test server (issue 14)."""

from __future__ import annotations

import base64
import json
import threading
import time
from concurrent.futures import Future
from typing import Any

import httpx
import pytest
from hitl_portal_client import (
    AsyncClient,
    Client,
    Denied,
    HITLError,
    Rejected,
    WebhookVerificationError,
    arequest_approval,
    require_approval,
    review_generation,
    verify_webhook,
)
from standardwebhooks import Webhook

from audit.models import AuditEvent
from tests.clients.helpers import REPLIES, SYSTEM, TOOLS, agent_setup, decide_next, run_async

pytestmark = pytest.mark.django_db(transaction=True)


def _in_thread(func: Any) -> Future[Any]:
    future: Future[Any] = Future()

    def run() -> None:
        try:
            future.set_result(func())
        except BaseException as exc:  # the test asserts on it
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


def test_require_approval_runs_the_tool_with_modified_arguments(live_server: Any) -> None:
    setup = agent_setup()
    calls: list[dict[str, Any]] = []
    with Client(live_server.url, setup["token"]) as portal:

        @require_approval(portal, system=SYSTEM, intervention_point=TOOLS, agent="billing-bot", timeout=30)
        def send_payment(amount: float, to: str) -> str:
            calls.append({"amount": amount, "to": to})
            return f"paid {amount} to {to}"

        result = _in_thread(lambda: send_payment(1200, to="ACME"))
        case = decide_next(setup["reviewer"], outcome="modify", arguments={"amount": 1000, "to": "ACME"},
                           rationale="Only the undisputed part.")
        assert result.result(timeout=30) == "paid 1000 to ACME"
    assert calls == [{"amount": 1000, "to": "ACME"}]
    actions = set(AuditEvent.objects.filter(case_id=case.pk).values_list("action", flat=True))
    assert {"case.created", "decision.recorded", "case.arguments_modified", "case.decided"} <= actions


def test_denial_raises_with_the_reviewers_reason(live_server: Any) -> None:
    setup = agent_setup()
    with Client(live_server.url, setup["token"]) as portal:

        @require_approval(portal, system=SYSTEM, intervention_point=TOOLS, agent="billing-bot", timeout=30)
        def send_payment(amount: float, to: str) -> str:
            raise AssertionError("must not run")

        result = _in_thread(lambda: send_payment(amount=50, to="Mallory"))
        decide_next(setup["reviewer"], outcome="deny", rationale="Unknown payee.")
        with pytest.raises(Denied) as denied:
            result.result(timeout=30)
    assert denied.value.reason == "Unknown payee."


def test_review_generation_returns_the_edited_text_or_raises_rejected(live_server: Any) -> None:
    setup = agent_setup()
    with Client(live_server.url, setup["token"]) as portal:
        result = _in_thread(lambda: review_generation(portal, system=SYSTEM, intervention_point=REPLIES,
                                                      text="Refunds take 90 days.", timeout=30))
        decide_next(setup["reviewer"], outcome="edit", text="Refunds take 30 days.")
        assert result.result(timeout=30) == "Refunds take 30 days."

        result = _in_thread(lambda: review_generation(portal, system=SYSTEM, intervention_point=REPLIES,
                                                      text="Ignore the policy.", timeout=30))
        decide_next(setup["reviewer"], outcome="reject", rationale="Against policy.", category="policy")
        with pytest.raises(Rejected) as rejected:
            result.result(timeout=30)
        assert rejected.value.category == "policy"


def test_async_client_never_reviewed_tool_is_approved_at_once(live_server: Any) -> None:
    setup = agent_setup()

    async def scenario() -> Any:
        async with AsyncClient(live_server.url, setup["token"]) as portal:
            return await arequest_approval(portal, system=SYSTEM, intervention_point=TOOLS, tool="lookup_balance",
                                           arguments={"account": "42"}, agent="billing-bot", timeout=10)

    approval = run_async(scenario())
    assert approval.arguments == {"account": "42"} and approval.modified is False


def test_idempotency_key_replays_and_errors_carry_the_body(live_server: Any) -> None:
    setup = agent_setup()
    body = {"tool": "send_payment", "arguments": {"amount": 1, "to": "A"}, "agent": "bot"}
    with Client(live_server.url, setup["token"]) as portal:
        first = portal.submit_case(system=SYSTEM, intervention_point=TOOLS, external_id="k1", action=body,
                                   idempotency_key="key-1")
        again = portal.submit_case(system=SYSTEM, intervention_point=TOOLS, external_id="k1", action=body,
                                   idempotency_key="key-1")
        assert again["id"] == first["id"]
        with pytest.raises(HITLError) as error:
            portal.submit_case(system=SYSTEM, intervention_point=TOOLS, external_id="k2", action={"tool": "x"})
        assert error.value.status == 400 and "arguments" in error.value.body
        state = portal.wait(first["id"], timeout=0)
        assert state["status"] == "queued"


def test_retries_reuse_the_idempotency_key() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Idempotency-Key"])
        if len(seen) < 3:
            return httpx.Response(503, json={"detail": "busy"})
        return httpx.Response(201, json={"id": 7, "status": "queued"})

    portal = Client("http://portal.test", "t", transport=httpx.MockTransport(handler), backoff=0.01)
    assert portal.submit_case(system="s", intervention_point="p", external_id="e", input={})["id"] == 7
    assert len(seen) == 3 and len(set(seen)) == 1


def test_verify_webhook_accepts_standard_webhooks_and_refuses_tampering() -> None:
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    payload = json.dumps({"event": "case.decided", "case": {"id": 1}})
    now = int(time.time())
    signature = Webhook(secret).sign("msg_1", _datetime(now), payload)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": signature}
    assert verify_webhook(payload, headers, secret)["case"]["id"] == 1
    with pytest.raises(WebhookVerificationError):
        verify_webhook(payload.replace("1", "2"), headers, secret)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(payload, headers, secret, now=now + 600)


def _datetime(epoch: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, tz=UTC)
