"""The incident register in a real browser: an officer files an incident, sees its Art. 73 clock and
moves it to the initial report. Screenshots go to ``test-artifacts/`` (git-ignored)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from incidents.models import Incident
from tests.incidents.incident_helpers import make_case

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_officer_files_an_incident_and_files_the_initial_report(page, live_server, login, make_user):
    case = make_case("app-10023")
    officer = make_user("compliance_officer", "officer1")
    login(officer.username)

    page.goto(f"{live_server.url}/compliance/incidents/")
    assert page.get_by_role("heading", name="Incident register").is_visible()
    assert "No incidents match." in page.content()
    page.get_by_role("link", name="File an incident").click()
    page.wait_for_url(re.compile(r"/compliance/incidents/new/$"))

    aware = (timezone.now() - dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    page.select_option("#id_system", "credit-scoring")
    page.select_option("#id_kind", "death")
    page.fill("#id_aware_at", aware)
    page.fill("#id_title", "Fatal outcome after refusal")
    page.fill("#id_description", "The applicant's family reported a death linked to the refused treatment loan.")
    page.fill("#id_case", str(case.pk))
    shoot(page, "incident-new.png")
    page.get_by_role("button", name="File incident").click()

    incident = Incident.objects.get()
    page.wait_for_url(re.compile(rf"/compliance/incidents/{incident.pk}/$"))
    clock = page.locator("#incident-clock")
    # Death: 10 days from awareness, two of them gone.
    assert re.fullmatch(r"Due in 7 d 2[23] h", clock.inner_text().strip()), clock.inner_text()
    assert "running" in clock.get_attribute("class")
    assert page.get_by_role("link", name=re.compile("app-10023")).is_visible()
    shoot(page, "incident-detail.png")

    page.select_option("#id_status", "initial_report")
    page.fill("#id_note", "Initial report sent to the market surveillance authority (Art. 73(5)).")
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#incident-status").inner_text() == "Initial report filed"
    assert page.locator("#incident-clock").inner_text().strip() == "Reported in time."
    assert "Initial report sent to the market surveillance authority" in page.locator(".reg-notes").inner_text()
    shoot(page, "incident-initial-report.png")

    incident.refresh_from_db()
    assert incident.status == "initial_report" and incident.initial_report_at is not None
    event = AuditEvent.objects.get(action="incident.updated")
    assert event.actor_name == "officer1"

    page.goto(f"{live_server.url}/compliance/incidents/")
    row = page.locator("table.reg-table tbody tr").first
    assert "Initial report filed" in row.inner_text() and "Reported in time." in row.inner_text()
    shoot(page, "incident-list.png")
