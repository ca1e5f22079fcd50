"""End to end (issue 14): an agent's tool call and a generated text, reviewed in the browser.

The agent runs in a thread through the SDK (``require_approval``, ``submit_case``
+ ``wait_for_decision``); the reviewer works in Chromium. Screenshots go to
``test-artifacts/`` (desktop and 390 px phone width).
"""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pytest
from hitl_portal_client import Client, Denied, require_approval

from audit.models import AuditEvent
from audit.services import payload_of
from reviews.models import Case, WebhookDelivery
from reviews.services.kinds import digest
from tests.clients.helpers import REPLIES, SYSTEM, TOOLS, agent_setup, wait_for_open_case
from tests.reviews.queue_helpers import make_user
from tests.token_helpers import new_token_key

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def in_thread(func: Any) -> Future[Any]:
    future: Future[Any] = Future()

    def run() -> None:
        try:
            future.set_result(func())
        except BaseException as exc:  # the test asserts on it
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    return future


def claim_in_browser(page: Any, case: Case) -> None:
    page.get_by_role("button", name="Claim next case").click()
    page.wait_for_url(re.compile(rf"/review/case/{case.pk}/$"))


def test_agent_tool_call_approved_with_modified_argument_then_denied(page: Any, live_server: Any,
                                                                        login: Any) -> None:
    setup = agent_setup()
    ran: list[dict[str, Any]] = []
    with Client(live_server.url, setup["token"]) as portal:

        @require_approval(portal, system=SYSTEM, intervention_point=TOOLS, agent="billing-bot",
                          rationale="Invoice 42 is due.", timeout=60)
        def send_payment(amount: float, to: str) -> str:
            ran.append({"amount": amount, "to": to})
            return f"paid {amount} to {to}"

        result = in_thread(lambda: send_payment(1200, to="ACME Ltd"))
        case = wait_for_open_case()
        login(setup["reviewer"].username)
        claim_in_browser(page, case)
        assert page.locator("#wb-tool").inner_text() == "send_payment"
        assert json.loads(page.locator("#wb-arguments").inner_text()) == {"amount": 1200, "to": "ACME Ltd"}
        assert "This tool is always reviewed" in page.content()

        # Keyboard: "m" chooses "modify" and focuses the arguments editor.
        page.locator("body").click(position={"x": 5, "y": 300})
        page.keyboard.press("m")
        assert page.locator('input[name="outcome"][value="modify"]').is_checked()
        assert page.evaluate("document.activeElement.id") == "id_arguments"
        page.fill("#id_arguments", '{"amount": 1000, "to": "ACME Ltd"')
        assert "Not valid JSON" in page.locator("#wb-json-state").inner_text()
        page.fill("#id_arguments", '{"amount": 1000, "to": "ACME Ltd"}')
        assert page.locator("#wb-json-state").inner_text() == "Valid JSON."
        assert "amount changed: 1200 → 1000" in page.locator("#wb-diff").inner_text()
        page.fill("#id_rationale", "Only the undisputed part of the invoice.")
        shoot(page, "agent-action-desktop.png")
        page.set_viewport_size({"width": 390, "height": 844})
        shoot(page, "agent-action-phone.png")
        page.set_viewport_size({"width": 1366, "height": 900})
        page.get_by_role("button", name="Submit decision").click()
        page.wait_for_url(re.compile(r"/review/$"))
        assert "Decision saved" in page.content()

        assert result.result(timeout=30) == "paid 1000 to ACME Ltd"
        assert ran == [{"amount": 1000, "to": "ACME Ltd"}]
        events = {event.action: payload_of(event) for event in AuditEvent.objects.filter(case_id=case.pk)}
        assert {"case.created", "case.routed", "case.claimed", "decision.recorded", "case.arguments_modified",
                "case.decided"} <= set(events)
        assert events["case.arguments_modified"]["data"]["after_sha256"] == digest({"amount": 1000, "to": "ACME Ltd"})
        assert all("ACME" not in json.dumps(event) for event in events.values())

        # A second call, denied in the browser: the agent gets Denied with the reason.
        result = in_thread(lambda: send_payment(99999, to="Mallory"))
        case = wait_for_open_case()
        page.goto(f"{live_server.url}/review/")
        claim_in_browser(page, case)
        page.locator("body").click(position={"x": 5, "y": 300})
        page.keyboard.press("x")
        assert page.locator('input[name="outcome"][value="deny"]').is_checked()
        assert page.evaluate("document.activeElement.id") == "id_rationale"
        page.keyboard.type("Payee is not on the allow-list.")
        page.keyboard.press("Control+Enter")
        page.wait_for_url(re.compile(r"/review/$"))
        with pytest.raises(Denied) as denied:
            result.result(timeout=30)
        assert denied.value.reason == "Payee is not on the allow-list."
        assert len(ran) == 1


def test_generation_edited_in_the_browser(page: Any, live_server: Any, login: Any) -> None:
    setup = agent_setup()
    callback = "https://agent.example.org/hooks/portal"
    with Client(live_server.url, setup["token"]) as portal:
        created = portal.submit_case(
            system=SYSTEM, intervention_point=REPLIES, external_id="reply-7", callback_url=callback,
            generation={"text": "Refunds take 90 days.\nThank you for your patience.",
                        "prompt": "How long do refunds take?",
                        "conversation": [{"role": "user", "content": "How long do refunds take?"}],
                        "sources": [{"title": "Refund policy", "content": "Refunds are paid within 30 days."}]},
        )
        result = in_thread(lambda: portal.wait_for_decision(created["id"], timeout=60))
        case = Case.objects.get(pk=created["id"])
        login(setup["reviewer"].username)
        claim_in_browser(page, case)
        assert "Refunds are paid within 30 days." in page.locator(".kind-sources").inner_text()
        assert "How long do refunds take?" in page.locator(".kind-conversation").inner_text()
        page.locator("body").click(position={"x": 5, "y": 300})
        page.keyboard.press("t")
        assert page.evaluate("document.activeElement.id") == "id_text"
        page.fill("#id_text", "Refunds take 30 days.\nThank you for your patience.")
        assert page.locator('input[name="outcome"][value="edit"]').is_checked()
        assert page.locator("#wb-diff del").first.inner_text() == "90"
        assert page.locator("#wb-diff ins").first.inner_text() == "30"
        shoot(page, "agent-generation-desktop.png")
        page.set_viewport_size({"width": 390, "height": 844})
        shoot(page, "agent-generation-phone.png")
        page.set_viewport_size({"width": 1366, "height": 900})
        page.get_by_role("button", name="Submit decision").click()
        page.wait_for_url(re.compile(r"/review/$"))

        decided = result.result(timeout=30)
    final = decided["final_output"]
    assert final["text"] == "Refunds take 30 days.\nThank you for your patience."
    assert final["edited"] is True
    assert "-Refunds take 90 days." in final["diff"] and "+Refunds take 30 days." in final["diff"]
    delivery = WebhookDelivery.objects.get(case_id=case.pk, event="case.decided")
    body = json.loads(delivery.body)
    assert body["case"]["final_output"]["text"] == final["text"]
    assert body["case"]["final_output"]["diff"] == final["diff"]

    # The edit-rate KPI counts it, in the API and on the dashboard.
    officer = make_user("compliance_officer", "officer1")
    with httpx.Client(base_url=live_server.url,
                      headers={"Authorization": f"Token {new_token_key(officer)}"}) as api:
        rows = api.get("/api/v1/kpis/").json()["by_kind"]
    replies = next(row for row in rows if row["intervention_point"] == REPLIES)
    assert (replies["edited"], replies["edit_rate"]) == (1, 1.0)
    page.get_by_role("button", name="Log out").click()
    login("officer1")
    page.goto(f"{live_server.url}/dashboard/")
    table = page.locator("#kpi-kinds")
    assert "credit-scoring / replies" in table.inner_text()
    table.scroll_into_view_if_needed()
    shoot(page, "agent-kpis-desktop.png")
