"""The compliance workspace in a real browser: register, classify through the wizard, obligations, dossier PDF.

A compliance officer registers a credit-scoring system, walks the classification
wizard (→ high risk, FRIA required), sees the generated obligations, and
downloads the dossier PDF; its text holds the Annex IV section titles and the
system's real KPI figures (as the KPI API reports them). Screenshots go to
``test-artifacts/``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from audit.models import AuditEvent
from compliance.catalog import load_catalog
from compliance.models import Obligation
from reviews.models import AISystem
from tests.compliance.helpers import make_point
from tests.reviews.factories import ingest
from tests.token_helpers import new_token_key

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANNEX_IV_TITLES = [
    "1. General description", "2. Development process", "3. Monitoring, functioning and control",
    "4. Appropriateness of the performance metrics", "5. Risk management system", "6. Lifecycle changes",
    "7. Standards applied", "8. EU declaration of conformity", "9. Post-market monitoring plan",
]


@pytest.fixture(autouse=True)
def catalog(transactional_db: Any) -> Any:
    """Live-server tests flush the database: reload the catalog the migration loaded."""
    return load_catalog()


def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


def test_officer_classifies_a_credit_scoring_system_and_downloads_its_dossier(
    page: Any, live_server: Any, login: Any, make_user: Any, tmp_path: Path
) -> None:
    make_user("compliance_officer", "officer1")
    admin = make_user("admin", "root-admin")
    admin_token = new_token_key(admin)
    login("officer1")

    # Register the system through the workspace form.
    page.goto(f"{live_server.url}/compliance/")
    page.get_by_role("link", name="Register a system").click()
    page.fill("#id_slug", "credit-scoring")
    page.fill("#id_name", "Credit scoring")
    page.fill("#id_purpose", "Scores consumer credit applications for the loan desk.")
    page.fill("#id_provider", "Acme Scoring Ltd")
    page.select_option("#id_role", "deployer")
    page.fill("#id_sector", "consumer credit")
    page.fill("#id_labels", "approve, reject")
    page.fill("#id_positive_label", "approve")
    page.fill("#id_protected_attributes", "gender, age_band")
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(r"/compliance/systems/credit-scoring/classify/scope/$"))
    system = AISystem.objects.get(slug="credit-scoring")

    # Its backend starts sending cases (as the integration would): 3 auto-accepted, 1 routed.
    make_point(system)
    for n, confidence in enumerate([0.95, 0.91, 0.97, 0.42]):
        ingest(admin, external_id=f"app-{n}", confidence=confidence, subject={"gender": "fm"[n % 2]})

    # The wizard: one step per page, in the regulation's order.
    assert page.locator("ol.cw-steps li.current").inner_text() == "1. Scope"
    page.get_by_role("button", name="Next").click()
    page.wait_for_url(re.compile(r"/classify/prohibited/$"))
    page.get_by_role("button", name="Next").click()
    page.wait_for_url(re.compile(r"/classify/high-risk/$"))
    page.get_by_label("5(b) Creditworthiness or credit scoring").check()
    shoot(page, "compliance-wizard-high-risk.png")
    page.get_by_role("button", name="Next").click()
    page.wait_for_url(re.compile(r"/classify/exception/$"))
    page.get_by_label("It profiles natural persons").check()
    page.get_by_role("button", name="Next").click()
    page.wait_for_url(re.compile(r"/classify/transparency/$"))
    # Back and forth keeps the answers.
    page.get_by_role("button", name="Back").click()
    page.wait_for_url(re.compile(r"/classify/exception/$"))
    assert page.get_by_label("It profiles natural persons").is_checked()
    page.get_by_role("button", name="Next").click()
    page.wait_for_url(re.compile(r"/classify/transparency/$"))
    page.get_by_role("button", name="Next").click()
    page.wait_for_url(re.compile(r"/classify/summary/$"))
    assert page.locator("#classification-result").inner_text().startswith("High risk (Annex III 5(b))")
    assert page.locator("#preview-fria").is_visible()
    shoot(page, "compliance-wizard-summary.png")
    page.fill("#id_reason", "Initial assessment before go-live.")
    page.get_by_role("button", name="Save classification").click()

    # The system page: high risk, FRIA required.
    page.wait_for_url(re.compile(r"/compliance/systems/credit-scoring/$"))
    assert "Classified: High risk" in page.locator(".messages").inner_text()
    assert page.locator(".cw-tier").inner_text() == "High risk (Art. 6)"
    assert page.locator("#fria-required").is_visible()
    shoot(page, "compliance-system.png")
    system.refresh_from_db()
    assert (system.classified_tier, system.annex_iii_area) == ("high", "5b")
    assert AuditEvent.objects.filter(action="system.classified", system_id=system.pk).count() == 1

    # Its obligations.
    page.locator("nav.cw-tabs").get_by_role("link", name="Obligations").click()
    page.wait_for_url(re.compile(r"/obligations/$"))
    assert page.locator('tr[data-ref="AIA-27.1"][data-status="open"]').is_visible()
    assert page.locator('tr[data-ref="AIA-26.2"][data-status="open"]').is_visible()
    assert page.locator('tr[data-ref="AIA-9.1"]').count() == 0  # a provider duty; we deploy
    assert "Portal: 1 intervention point(s)" in page.locator('tr[data-ref="AIA-14.4.e"]').inner_text()
    total = Obligation.objects.filter(system=system).count()
    assert page.locator("#progress").text_content().strip() == f"0/{total} met"
    shoot(page, "compliance-obligations.png")
    page.get_by_role("link", name="Update AIA-26.2").click()
    page.wait_for_url(re.compile(r"/obligations/\d+/$"))
    assert "active qualified reviewer(s)" in page.locator("main").inner_text()
    shoot(page, "compliance-obligation-edit.png")
    page.goto(f"{live_server.url}/compliance/systems/credit-scoring/fria/")
    assert page.locator("#fria-required").is_visible()
    shoot(page, "compliance-fria.png")

    # The dossier PDF.
    page.locator("nav.cw-tabs").get_by_role("link", name="Dossier").click()
    page.wait_for_url(re.compile(r"/dossier/$"))
    shoot(page, "compliance-dossier-page.png")
    with page.expect_download() as download_info:
        page.locator("#download-pdf").click()
    download = download_info.value
    path = tmp_path / download.suggested_filename
    download.save_as(str(path))
    assert download.suggested_filename.startswith("dossier-credit-scoring-")
    content = path.read_bytes()
    assert content.startswith(b"%PDF")
    text = pdf_text(path)
    for title in ANNEX_IV_TITLES:
        assert title in text, title
    assert "Human oversight measures (Art. 14)" in text and "Loan review" in text

    # The KPI figures in the PDF are the system's real ones, as the KPI API reports them.
    response = page.request.get(f"{live_server.url}/api/v1/kpis/?system=credit-scoring",
                                headers={"Authorization": f"Token {admin_token}"})
    assert response.status == 200, response.text()
    kpis = response.json()
    assert kpis["cases_total"] == 4 and kpis["automation_rate"] == 0.75
    assert f"Cases {kpis['cases_total']}" in text
    assert f"Automation rate {kpis['automation_rate'] * 100:.1f} %" in text
    assert f"Reviewed {kpis['reviewed']}" in text

    # The generation is in the audit trail with the document's hash.
    event = AuditEvent.objects.filter(action="dossier.generated", system_id=system.pk).get()
    assert hashlib.sha256(content).hexdigest() in event.payload

    # The same dossier as HTML, for a look at it.
    page.goto(f"{live_server.url}/compliance/systems/credit-scoring/dossier.html")
    assert page.get_by_role("heading", name="1. General description").is_visible()
    shoot(page, "compliance-dossier-html.png")


def test_calendar_and_catalog_pages(page: Any, live_server: Any, login: Any, make_user: Any) -> None:
    make_user("manager", "manager1")
    login("manager1")
    page.goto(f"{live_server.url}/compliance/calendar/")
    row = page.locator("#m-annex-iii-regime")
    assert "2 Aug 2026" in row.inner_text() and "2 Dec 2027" in row.inner_text()
    shoot(page, "compliance-calendar.png")
    page.get_by_role("link", name="Requirements").click()
    page.wait_for_url(re.compile(r"/compliance/catalog/$"))
    assert page.locator("tr#AIA-14\\.4\\.e").is_visible()
    shoot(page, "compliance-catalog.png")
