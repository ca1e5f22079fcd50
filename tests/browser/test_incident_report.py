"""An officer downloads the Art. 73 report draft from an incident's page; the dossier shows oversight in operation."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.template.loader import render_to_string
from django.utils import timezone
from pypdf import PdfReader

from compliance.incident_report import incident_report_context
from incidents.services import incident_create
from tests.reviews.queue_helpers import make_system

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_officer_downloads_the_report_draft(page, live_server, login, make_user):
    system = make_system("face-id")
    incident = incident_create(actor=None, system=system, kind="serious_harm",
                               aware_at=timezone.now() - dt.timedelta(days=1), title="Wrongful stop",
                               description="A passer-by was stopped after a false match at the station entrance.")
    make_user("compliance_officer", "officer1")
    login("officer1")
    page.goto(f"{live_server.url}/compliance/incidents/{incident.pk}/")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "incident-report-button.png"))
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Art. 73 report draft (PDF)").click()
    path = download_info.value.path()
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(Path(path).read_bytes())).pages)
    assert "A passer-by was stopped" in " ".join(text.split())
    assert download_info.value.suggested_filename.startswith(f"art73-report-incident-{incident.pk}-")

    # The draft's layout as a browser shows the same HTML (WeasyPrint renders it to the PDF).
    html = render_to_string("compliance/incident_report.html",
                            incident_report_context(incident, generated_by="officer1"))
    page.set_content(html)
    page.screenshot(path=str(ARTIFACTS / "incident-report-draft.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/compliance/incidents/{incident.pk}/")
    assert page.get_by_role("link", name="Art. 73 report draft (PDF)").is_visible()
    page.screenshot(path=str(ARTIFACTS / "incident-report-button-390.png"))


def test_a_manager_sees_no_report_link(page, live_server, login, make_user):
    system = make_system("face-id")
    incident = incident_create(actor=None, system=system, kind="other", aware_at=timezone.now(),
                               description="Something to look at.")
    make_user("manager", "manager1")
    login("manager1")
    response = page.goto(f"{live_server.url}/compliance/incidents/{incident.pk}/")
    assert response.status == 200  # managers read the register; the report is the officers' to send
    assert page.get_by_role("heading", name=f"Incident #{incident.pk}").is_visible()
    assert page.get_by_role("link", name="Art. 73 report draft (PDF)").count() == 0
