"""The reviewer workbench in a real browser: log in, claim, override with a rationale.

Screenshots of the queue and the case page go to ``test-artifacts/`` (git-ignored);
with ``HITL_WRITE_DOCS_SCREENSHOTS=1`` the case page is also written to
``docs/img/workbench.png`` (``scripts/screenshots.py`` does that; CI does not).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from reviews.models import Case, Decision
from tests.conftest import wait_until
from tests.reviews.workbench_helpers import make_point, make_queued_case
from tests.token_helpers import new_token_key

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DOCS_IMG = ROOT / "docs" / "img"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _requirements_catalog(transactional_db: object) -> object:
    """Live-server tests flush the database; creating a system needs the catalog its migration loaded."""
    from compliance.catalog import load_catalog

    return load_catalog()


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_reviewer_claims_and_overrides_a_case(page, live_server, login, make_user):
    point = make_point(reviewers_required=1, high_stakes=[{"field": "amount", "op": "gt", "value": 10000}])
    other = make_point(point_slug="fraud-check", guidelines="")
    first = make_queued_case(point, external_id="app-10023", reasons=["confidence_below", "high_stakes"],
                             age_seconds=5400)
    second = make_queued_case(point, external_id="app-10024", age_seconds=1200)
    make_queued_case(other, external_id="tx-884", label="reject", confidence=0.41, age_seconds=300)
    make_user("reviewer", "rev1", systems=["credit-scoring"])
    admin_token = new_token_key(make_user("admin", "root-admin"))

    login("rev1")
    # A reviewer's start page is the queue.
    assert page.url.endswith("/review/")
    assert page.get_by_role("heading", name="Review queue").is_visible()
    assert page.locator("table.wb-table tbody tr").first.inner_text().startswith("Credit Scoring")
    shoot(page, "workbench-queue.png")

    page.get_by_role("button", name="Claim next case").click()
    page.wait_for_url(re.compile(rf"/review/case/{first.pk}/$"))
    assert page.locator("#wb-ai-label").inner_text() == "approve"
    assert "62.0 %" in page.locator(".wb-ai").inner_text()
    assert "confidence is below the review threshold" in page.content()
    # The countdown runs (a "m:ss" time, not the server-rendered fallback text).
    wait_until(page, "/^\\d+:\\d\\d$/.test(document.getElementById('wb-lease-left').textContent)")

    # Keyboard: "o" chooses override and focuses the label picker; "r" the rationale.
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("o")
    assert page.locator('input[name="outcome"][value="override"]').is_checked()
    assert page.evaluate("document.activeElement.id") == "id_label"
    page.select_option("#id_label", "reject")
    page.locator("#id_label").press("Escape")
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "id_rationale"
    page.keyboard.type("Income is not documented; the payslip is from another employer.")
    shoot(page, "workbench-case.png")
    if os.environ.get("HITL_WRITE_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / "workbench.png"), full_page=True)

    # "Renew lease" works in place: nothing typed so far is lost to a reload.
    with page.expect_response(lambda r: r.url.endswith(f"/review/case/{first.pk}/renew/")) as renewed:
        page.get_by_role("button", name="Renew lease").click()
    assert renewed.value.status == 200
    assert page.input_value("#id_rationale").startswith("Income is not documented")
    assert AuditEvent.objects.filter(case_id=first.pk, action="case.lease_renewed").count() == 1

    page.get_by_role("button", name="Submit decision").click()
    # The next case opens by itself.
    page.wait_for_url(re.compile(rf"/review/case/{second.pk}/$"))
    assert f"Decision saved on case #{first.pk}." in page.locator(".messages").inner_text()
    page.get_by_role("link", name="Review queue").click()
    assert page.get_by_role("link", name=f"Continue case #{second.pk}").is_visible()
    assert "Override" in page.locator("table.wb-table").last.inner_text()
    shoot(page, "workbench-queue-after.png")

    response = page.request.get(f"{live_server.url}/api/v1/cases/{first.pk}/",
                                headers={"Authorization": f"Token {admin_token}"})
    assert response.status == 200, response.text()
    body = response.json()
    assert body["status"] == "decided"
    assert body["final_label"] == "reject"
    assert [(d["reviewer"], d["outcome"], d["label"]) for d in body["decisions"]] == [("rev1", "override", "reject")]

    actions = set(AuditEvent.objects.filter(case_id=first.pk).values_list("action", flat=True))
    assert {"case.claimed", "decision.recorded", "case.decided"} <= actions


def test_blind_case_errors_and_an_expired_lease_are_explained(page, live_server, login, make_user):
    point = make_point()
    case = make_queued_case(point, external_id="app-blind", blind=True, label="reject",
                            reasons=["confidence_below", "random_sample"])
    make_user("reviewer", "rev2", systems=["credit-scoring"])

    login("rev2")
    page.keyboard.press("n")  # the queue page's shortcut for "Claim next"
    page.wait_for_url(re.compile(rf"/review/case/{case.pk}/$"))
    assert "AI suggestion hidden for this case" in page.locator(".wb-ai").inner_text()
    assert page.locator("#wb-ai-label").count() == 0
    assert page.locator('input[name="outcome"][value="approve"]').count() == 0

    # Escalating without a rationale: the service's error appears next to the field.
    page.keyboard.press("e")
    assert page.locator('input[name="outcome"][value="escalate"]').is_checked()
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#err-rationale")
    assert "rationale is required" in page.locator("#err-rationale").inner_text().lower()
    shoot(page, "workbench-case-error.png")
    assert not Decision.objects.exists()

    # The lease runs out while the reviewer types: the decision is refused, clearly, and kept as a draft.
    page.keyboard.press("o")
    page.select_option("#id_label", "approve")
    page.fill("#id_rationale", "Documents are complete.")
    Case.objects.filter(pk=case.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    page.get_by_role("button", name="Submit decision").click()
    page.wait_for_url(re.compile(r"/review/$"))
    message = page.locator(".messages").inner_text()
    assert "expired" in message and "NOT saved" in message and "Documents are complete." in message
    shoot(page, "workbench-lease-expired.png")
    assert not Decision.objects.exists()
