"""The case browser in a real browser: an officer finds a case by its external id and reads its timeline.

Screenshots go to ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.incidents.incident_helpers import make_case
from tests.records.test_case_browser import decided_case

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_officer_finds_a_case_and_reads_its_timeline(page, live_server, login, make_user):
    case, _reviewer, officer = decided_case(make_user, external_id="app-10023")
    for n in range(4):
        make_case(f"app-2000{n}", confidence=0.99 if n % 2 else 0.5)

    login(officer.username)
    page.goto(f"{live_server.url}/audit/cases/")
    assert page.get_by_role("heading", name="Case browser").is_visible()
    assert page.locator("#case-list tbody tr").count() == 5
    shoot(page, "case-browser-list.png")

    page.fill("#id_q", "app-10023")
    page.get_by_role("button", name="Search").click()
    page.wait_for_load_state("networkidle")
    rows = page.locator("#case-list tbody tr")
    assert rows.count() == 1
    assert "Escalated" in rows.first.inner_text()
    rows.first.get_by_role("link", name="app-10023").click()
    page.wait_for_url(re.compile(rf"/audit/cases/{case.pk}/$"))

    assert page.get_by_role("heading", name=re.compile(r"Case #\d+ app-10023")).is_visible()
    timeline = page.locator("#timeline")
    text = timeline.inner_text()
    # Events and recorded changes, who, what and why.
    for expected in ("case.created", "case.claimed", "decision.recorded", "case.decided", "case.reopened",
                     "Applicant appealed (Art. 86).", "Income is not documented.", "rev1", "officer1"):
        assert expected in text, expected
    assert timeline.locator("li.tl-event").count() >= 6
    assert timeline.locator("li.tl-change").count() >= 4
    assert "status: queued → claimed" in re.sub(r"\s+", " ", text)
    shoot(page, "case-timeline.png")
