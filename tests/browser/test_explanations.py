"""Issue 13 item 3 "Must show", as people do it: an affected person asks for an explanation on the
public page, an officer answers with a letter (PDF text checked), the person contests, and the case
goes to a reviewer who did not decide it before.

Screenshots (desktop and 390 px) go to ``test-artifacts/``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from pypdf import PdfReader

from audit.models import AuditEvent
from compliance.models import ExplanationRequest, ExplanationStatus
from compliance.services.explanations import reference_issue
from reviews.models import Case, CaseStatus
from reviews.services.queue import claim_next
from tests.compliance.explanation_helpers import SYSTEM, adjudicator, clear_rate_limits, decided_case

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _requirements_catalog(transactional_db: object) -> object:
    """Live-server tests flush the database; creating a system needs the catalog its migration loaded."""
    from compliance.catalog import load_catalog

    clear_rate_limits()
    return load_catalog()


def shoot(page, name: str) -> None:
    """Desktop, then the same page at a phone's 390 px width."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    size = page.viewport_size
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)  # let the narrow layout settle before the full-page capture
    page.screenshot(path=str(ARTIFACTS / f"{name}-390.png"), full_page=True)
    page.set_viewport_size(size)


def fill_reference(person, case: Case, code: str) -> None:
    person.fill("#id_system", SYSTEM)
    person.fill("#id_external_id", case.external_id)
    person.fill("#id_code", code)


def test_request_answer_letter_and_contest_to_a_fresh_reviewer(browser, page, live_server, login, make_user):
    case = decided_case(make_user, external_id="loan-7781")
    first_reviewer = case.decisions.get().reviewer
    code = reference_issue(actor=None, case=case)  # what the integration hands the person (API tested apart)
    make_user("compliance_officer", "officer-ana")
    adjudicator(make_user, "adj-fresh")

    # The affected person, not signed in, in a browser of their own.
    person_context = browser.new_context(viewport={"width": 1366, "height": 900})
    person = person_context.new_page()
    person.goto(f"{live_server.url}/explain/")
    fill_reference(person, case, "WRONG-CODE-0000")
    person.get_by_role("button", name="Send my request").click()
    assert "could not find a case" in person.locator("#ex-error").inner_text()
    fill_reference(person, case, code)
    person.fill("#id_message", "Why was my loan refused? I have the payslip.")
    shoot(person, "explanations-public-request")
    person.get_by_role("button", name="Send my request").click()
    done = person.locator("#ex-done").inner_text()
    request = ExplanationRequest.objects.get(case=case)
    assert f"Request number {request.pk}" in done and request.deadline.strftime("%Y") in done
    shoot(person, "explanations-public-registered")

    # The officer finds it assigned to them, adds a note and sends the letter.
    login("officer-ana")
    page.goto(f"{live_server.url}/compliance/")
    page.get_by_role("link", name="Explanation requests").click()
    assert "Requests" in page.locator("#ex-kpis").inner_text()
    row = page.locator("#ex-requests tbody tr").first
    assert "loan-7781" in row.inner_text() and "officer-ana" in row.inner_text()
    shoot(page, "explanations-officer-list")
    row.get_by_role("link", name=f"#{request.pk}").click()
    page.wait_for_url(re.compile(rf"/compliance/explanations/{request.pk}/$"))
    draft = page.locator("#ex-letter").inner_text()
    assert "not confident enough" in draft and first_reviewer.username not in draft
    page.fill("#id_note", "We checked your file again before answering.")
    shoot(page, "explanations-officer-detail")
    page.get_by_role("button", name="Send letter").click()
    assert "Letter sent and recorded" in page.locator(".msg-success").inner_text()
    with page.expect_download() as download_info:
        page.locator("#ex-letter-pdf").click()
    pdf = Path(download_info.value.path()).read_bytes()
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())
    for expected in ("Explanation of the decision about you", "loan-7781", "not confident enough",
                     "not what the system proposed", "another employer", "We checked your file again",
                     "How to contest the decision"):
        assert expected in text, expected
    assert first_reviewer.username not in text
    request.refresh_from_db()
    answered = AuditEvent.objects.get(action="explanation.answered")
    assert request.status == ExplanationStatus.ANSWERED and request.letter_pdf_sha256 in answered.payload
    assert bytes(request.letter_pdf) == pdf

    # The person contests through the public page with the same reference and code.
    person.goto(f"{live_server.url}/explain/contest/")
    fill_reference(person, case, code)
    person.fill("#id_reason", "I have never worked for the employer named on that payslip.")
    person.get_by_role("button", name="Contest the decision").click()
    assert "looked at again by a person who did not take part" in person.locator("#ex-done").inner_text()
    person_context.close()
    case.refresh_from_db()
    assert case.status == CaseStatus.ESCALATED and case.review_round == 2
    assert AuditEvent.objects.filter(action="explanation.contested", case_id=case.pk).exists()
    assert AuditEvent.objects.filter(action="case.reopened", case_id=case.pk).exists()
    assert claim_next(reviewer=first_reviewer) is None  # never back to whoever decided it

    # A reviewer who did not decide it before gets it from the queue.
    page.context.clear_cookies()
    login("adj-fresh")
    page.get_by_role("button", name="Claim next case").click()
    page.wait_for_url(re.compile(rf"/review/case/{case.pk}/$"))
    assert Case.objects.get(pk=case.pk).claimed_by.username == "adj-fresh"
