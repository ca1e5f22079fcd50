"""The officers' records desk in a browser: verify the chain, place and release a legal hold, at 390 px too."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.models import AuditEvent
from compliance.catalog import load_catalog
from records.models import LegalHold
from tests.reviews.queue_helpers import make_system

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def catalog(transactional_db):
    """Live-server tests flush the database: reload the catalog the migration loaded."""
    return load_catalog()


@pytest.mark.parametrize("width", [1366, 390])
def test_officer_verifies_the_chain_and_manages_a_hold(browser, live_server, make_user, width):
    make_user("compliance_officer", "olga")
    make_system()
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "pass-word-123")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")

    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Audit trail and legal holds").click()
    page.get_by_role("button", name="Verify the chain").click()
    assert page.get_by_test_id("verify-result").inner_text().startswith("Chain intact:")

    page.select_option("#id_system", "credit-scoring")
    page.fill("#id_reason", "Litigation: applicant complaint 2026-17")
    page.fill("#id_reference", "LIT-17")
    page.get_by_role("button", name="Place the hold").click()
    assert "placed" in page.get_by_role("status").first.inner_text()
    hold = LegalHold.objects.get()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"records-trail-{width}.png"), full_page=True)

    page.get_by_label("Reason for the release").fill("Matter settled")
    page.get_by_role("button", name=f"Release hold #{hold.pk}").click()
    assert "released" in page.get_by_role("status").first.inner_text()
    hold.refresh_from_db()
    assert hold.released_at is not None
    assert AuditEvent.objects.filter(action__in=["audit.legal_hold_placed", "audit.legal_hold_released"]).count() == 2
    context.close()
