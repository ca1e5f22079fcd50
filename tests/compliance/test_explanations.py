"""Art. 86 channel: the reference API, the public page's abuse resistance, the officers' API, the
letter, contests, KPIs and deadline reminders, each change with its audit event."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone
from pypdf import PdfReader

from audit.models import AuditEvent
from compliance.models import CaseReference, ExplanationRequest, ExplanationStatus
from compliance.selectors.explanations import explanation_kpis, reference_case
from compliance.services.explanations import (
    explanation_answer,
    explanation_contest,
    explanation_deadline_reminders,
    explanation_request_submit,
    reference_issue,
)
from compliance.views_explanations import IP_ATTEMPTS, NOT_MATCHED, REFERENCE_FAILURES, TOO_MANY
from hitl_portal.models import Notification
from reviews.models import Case, CaseStatus, ReviewerProfile
from reviews.services.decisions import decision_record
from reviews.services.queue import claim_next
from tests.compliance.explanation_helpers import SYSTEM, adjudicator, clear_rate_limits, decided_case

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_limits() -> None:
    clear_rate_limits()


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def payload_of(event: AuditEvent) -> dict[str, Any]:
    return json.loads(event.payload)


# --- The reference API ----------------------------------------------------------------------------


def test_owning_integration_issues_a_code_once_and_reissuing_invalidates_it(make_user, api_client_for) -> None:
    case = decided_case(make_user)
    integration = api_client_for("integration", systems=[SYSTEM])
    Case.objects.filter(pk=case.pk).update(submitted_by=integration.user)  # the integration that sent it
    first = integration.post(f"/api/v1/cases/{case.pk}/reference/")
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["external_id"] == case.external_id and body["system"] == SYSTEM and len(body["code"]) == 14
    stored = CaseReference.objects.get(case=case)
    assert body["code"] not in stored.code_hash and len(stored.code_hash) == 64  # only a hash is kept
    assert reference_case(system_slug=SYSTEM, external_id=case.external_id, code=body["code"]) == case
    # Typed by a person: case and dashes do not matter.
    assert reference_case(system_slug=SYSTEM, external_id=case.external_id,
                          code=body["code"].lower().replace("-", " ")) == case

    second = integration.post(f"/api/v1/cases/{case.pk}/reference/").json()
    assert reference_case(system_slug=SYSTEM, external_id=case.external_id, code=body["code"]) is None
    assert reference_case(system_slug=SYSTEM, external_id=case.external_id, code=second["code"]) == case
    issued = events("explanation.reference_issued")
    assert [payload_of(e)["data"]["reissued"] for e in issued] == [False, True]
    assert all(body["code"] not in e.payload and second["code"] not in e.payload for e in issued)
    assert issued[0].case_id == case.pk and issued[0].actor_id == integration.user.pk


def test_reference_api_denies_other_integrations_404_and_reviewers_403(make_user, api_client_for) -> None:
    case = decided_case(make_user)
    owner = make_user("integration", systems=[SYSTEM])
    Case.objects.filter(pk=case.pk).update(submitted_by=owner)
    unlinked = api_client_for("integration", systems=[])
    assert unlinked.post(f"/api/v1/cases/{case.pk}/reference/").status_code == 404
    # Linked to the same system but not the case's submitter: not its case either.
    same_system = api_client_for("integration", systems=[SYSTEM])
    assert same_system.post(f"/api/v1/cases/{case.pk}/reference/").status_code == 404
    reviewer = api_client_for("reviewer", systems=[SYSTEM])
    refused = reviewer.post(f"/api/v1/cases/{case.pk}/reference/")
    assert refused.status_code == 403
    officer = api_client_for("compliance_officer")
    assert officer.post(f"/api/v1/cases/{case.pk}/reference/").status_code == 403
    assert not CaseReference.objects.exists() and not events("explanation.reference_issued")


# --- The public page ------------------------------------------------------------------------------


def _issued(make_user: Any) -> tuple[Case, str]:
    case = decided_case(make_user)
    return case, reference_issue(actor=None, case=case)


def test_public_request_registers_with_deadline_and_least_loaded_officer(make_user) -> None:
    case, code = _issued(make_user)
    busy = make_user("compliance_officer", "officer-busy")
    idle = make_user("compliance_officer", "officer-idle")
    other_case = decided_case(make_user, external_id="loan-0043", reviewer_name="rev-other")
    ExplanationRequest.objects.create(case=other_case, received_at=timezone.now(), assignee=busy,
                                      deadline=timezone.now() + timedelta(days=30))
    client = Client()
    page = client.get("/explain/")
    assert page.status_code == 200 and b"verification code" in page.content.lower()
    with override_settings(HITL_EXPLANATION_DEADLINE_DAYS=21):
        response = client.post("/explain/", {"system": SYSTEM, "external_id": case.external_id, "code": code,
                                             "message": "Why was my loan refused?", "contact": "p@example.org"})
    assert response.status_code == 200, response.content
    request = ExplanationRequest.objects.get(case=case)
    assert f"Request number {request.pk}".encode() in response.content
    assert request.assignee == idle and request.status == ExplanationStatus.RECEIVED
    assert abs((request.deadline - request.received_at) - timedelta(days=21)) < timedelta(seconds=1)
    (event,) = events("explanation.requested")
    assert payload_of(event)["data"]["assignee"] == "officer-idle" and event.actor_id is None
    assert "Why was my loan" not in event.payload and "p@example.org" not in event.payload
    assert Notification.objects.filter(kind="explanation_deadline", recipients__user=idle).exists()


def test_unassigned_request_notifies_the_officers_when_no_officer_is_active(make_user) -> None:
    case, _ = _issued(make_user)
    request = explanation_request_submit(case=case)
    assert request.assignee is None
    assert Notification.objects.get(dedupe_key=f"explanation:{request.pk}:unassigned").subject.startswith(
        "Unassigned")


def test_wrong_code_and_unknown_reference_get_the_same_answer_and_are_limited(make_user) -> None:
    case, code = _issued(make_user)
    client = Client()
    wrong = client.post("/explain/", {"system": SYSTEM, "external_id": case.external_id, "code": "AAAA-BBBB-CCCC"})
    unknown = client.post("/explain/", {"system": SYSTEM, "external_id": "no-such-case", "code": "AAAA-BBBB-CCCC"})
    assert wrong.status_code == unknown.status_code == 400
    assert NOT_MATCHED.encode() in wrong.content and NOT_MATCHED.encode() in unknown.content
    # Byte for byte the same page, but for the echoed reference and the form's CSRF token.
    token = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
    assert token.sub(b"", wrong.content.replace(case.external_id.encode(), b"X")) == token.sub(
        b"", unknown.content.replace(b"no-such-case", b"X"))
    # Per reference: after a few failed codes even the right code is refused for a while.
    for _ in range(REFERENCE_FAILURES - 1):
        client.post("/explain/", {"system": SYSTEM, "external_id": case.external_id, "code": "AAAA-BBBB-CCCC"},
                    REMOTE_ADDR="198.51.100.9")
    limited = client.post("/explain/", {"system": SYSTEM, "external_id": case.external_id, "code": code},
                          REMOTE_ADDR="198.51.100.10")
    assert limited.status_code == 429 and TOO_MANY.encode() in limited.content
    assert not ExplanationRequest.objects.exists()
    # The unknown reference is limited exactly the same way.
    for _ in range(REFERENCE_FAILURES):
        client.post("/explain/", {"system": SYSTEM, "external_id": "no-such-case", "code": "AAAA-BBBB-CCCC"},
                    REMOTE_ADDR="198.51.100.11")
    assert client.post("/explain/", {"system": SYSTEM, "external_id": "no-such-case", "code": "x"},
                       REMOTE_ADDR="198.51.100.12").status_code == 429
    assert not events("explanation.requested")


def test_one_address_gets_a_budget_of_attempts(make_user) -> None:
    case, code = _issued(make_user)
    client = Client()
    for n in range(IP_ATTEMPTS):
        client.post("/explain/", {"system": SYSTEM, "external_id": f"guess-{n}", "code": "AAAA"},
                    REMOTE_ADDR="192.0.2.50")
    over = client.post("/explain/", {"system": SYSTEM, "external_id": case.external_id, "code": code},
                       REMOTE_ADDR="192.0.2.50")
    assert over.status_code == 429
    elsewhere = client.post("/explain/", {"system": SYSTEM, "external_id": case.external_id, "code": code},
                            REMOTE_ADDR="192.0.2.51")
    assert elsewhere.status_code == 200 and ExplanationRequest.objects.filter(case=case).count() == 1


def test_missing_fields_are_named(make_user) -> None:
    response = Client().post("/explain/", {"system": SYSTEM})
    assert response.status_code == 400
    assert b'id="err-external_id"' in response.content and b'id="err-code"' in response.content


# --- Letter, contest, KPIs --------------------------------------------------------------------


def test_letter_explains_without_naming_reviewers_and_its_hash_is_audited(
    make_user, django_capture_on_commit_callbacks
) -> None:
    case, _ = _issued(make_user)
    officer = make_user("compliance_officer", "officer-a")
    request = explanation_request_submit(case=case, contact="p@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        letter = explanation_answer(actor=officer, request=request, note="We are sorry for the delay.",
                                    base_url="https://portal.example.org/")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(letter.pdf)).pages)
    flat = " ".join(text.split())
    for expected in ("Explanation of the decision about you", "not confident enough", "“reject”",
                     "not what the system proposed", "another employer", "We are sorry for the delay",
                     case.external_id):
        assert expected in flat, expected
    assert "https://portal.example.org/explain/contest/" in "".join(text.split())
    assert "rev-first" not in flat
    request.refresh_from_db()
    assert request.status == ExplanationStatus.ANSWERED and request.letter_pdf_sha256 == letter.pdf_sha256
    (event,) = events("explanation.answered")
    assert payload_of(event)["data"]["pdf_sha256"] == letter.pdf_sha256
    assert payload_of(event)["data"]["html_sha256"] == letter.sha256 and payload_of(event)["data"]["in_time"] is True
    from django.core import mail

    assert mail.outbox and mail.outbox[-1].to == ["p@example.org"]
    assert mail.outbox[-1].attachments[0][1] == bytes(request.letter_pdf)


def test_contest_reopens_to_someone_who_did_not_decide_and_counts_an_overturn(make_user) -> None:
    case, _ = _issued(make_user)
    officer = make_user("compliance_officer", "officer-a")
    request = explanation_request_submit(case=case)
    explanation_answer(actor=officer, request=request)
    first = case.decisions.get().reviewer
    # The first decider is an adjudicator too: being eligible must still not hand them the case again.
    ReviewerProfile.objects.filter(user=first).update(adjudicator=True)
    fresh = adjudicator(make_user, "adj-fresh")
    explanation_contest(actor=None, request=request, reason="I never worked for that employer.")
    case.refresh_from_db()
    assert case.status == CaseStatus.ESCALATED and case.review_round == 2
    assert claim_next(reviewer=first) is None  # the earlier decider is not handed it again
    claimed = claim_next(reviewer=fresh)
    assert claimed is not None and claimed.pk == case.pk
    decision_record(reviewer=fresh, case=claimed, outcome="approve", label=None, rationale="Payslip checks out.")
    (event,) = events("explanation.contested")
    assert payload_of(event)["data"]["label_contested"] == "reject" and payload_of(event)["data"]["review_round"] == 2
    assert events("case.reopened")
    kpis = explanation_kpis()
    assert (kpis.requests, kpis.answered, kpis.answered_in_time, kpis.contested, kpis.redecided,
            kpis.overturned) == (1, 1, 1, 1, 1, 1)
    assert kpis.overturn_rate == 1.0 and kpis.in_time_rate == 1.0


def test_contest_before_the_answer_is_refused_on_the_public_page(make_user) -> None:
    case, code = _issued(make_user)
    explanation_request_submit(case=case)
    response = Client().post("/explain/contest/", {"system": SYSTEM, "external_id": case.external_id,
                                                   "code": code, "reason": "Wrong."})
    assert response.status_code == 409 and not events("explanation.contested")
    assert Case.objects.get(pk=case.pk).status == CaseStatus.DECIDED


def test_person_downloads_their_letter_with_reference_and_code(make_user) -> None:
    case, code = _issued(make_user)
    officer = make_user("compliance_officer", "officer-a")
    explanation_answer(actor=officer, request=explanation_request_submit(case=case))
    fields = {"system": SYSTEM, "external_id": case.external_id, "code": code}
    response = Client().post("/explain/letter/", fields)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content == bytes(ExplanationRequest.objects.get(case=case).letter_pdf)
    assert Client().post("/explain/letter/", {**fields, "code": "WRONG"}).status_code == 400


# --- The officers' API and pages -------------------------------------------------------------------


def test_officers_list_and_patch_requests_others_are_refused(make_user, api_client_for) -> None:
    case, _ = _issued(make_user)
    officer = api_client_for("compliance_officer", username="officer-a")
    colleague = make_user("compliance_officer", "officer-b")
    request = explanation_request_submit(case=case)
    listed = officer.get("/api/v1/explanation-requests/")
    assert listed.status_code == 200
    (row,) = listed.json()["results"]
    assert row["id"] == request.pk and row["external_id"] == case.external_id and row["overdue"] is False
    for role in ("reviewer", "manager", "integration"):
        client = api_client_for(role)
        assert client.get("/api/v1/explanation-requests/").status_code == 403
        assert client.patch(f"/api/v1/explanation-requests/{request.pk}/", {"note": "x"}).status_code == 403
    patched = officer.patch(f"/api/v1/explanation-requests/{request.pk}/",
                            {"assignee": colleague.username, "note": "Call back first."})
    assert patched.status_code == 200, patched.content
    assert patched.json()["assignee"] == "officer-b" and patched.json()["note"] == "Call back first."
    (event,) = events("explanation.updated")
    assert payload_of(event)["after"] == {"assignee": "officer-b", "note_changed": True}
    bad = officer.patch(f"/api/v1/explanation-requests/{request.pk}/", {"status": "answered"})
    assert bad.status_code == 400 and "status" in str(bad.json())
    assert officer.patch(f"/api/v1/explanation-requests/{request.pk}/", {"colour": "red"}).status_code == 400
    assert officer.patch("/api/v1/explanation-requests/987654/", {"note": "x"}).status_code == 404
    closed = officer.patch(f"/api/v1/explanation-requests/{request.pk}/", {"status": "closed"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed"


def test_officer_pages_answer_and_deny_others(make_user, client) -> None:
    case, _ = _issued(make_user)
    officer = make_user("compliance_officer", "officer-a")
    request = explanation_request_submit(case=case)
    client.force_login(officer)
    listing = client.get("/compliance/explanations/")
    assert listing.status_code == 200 and b"Overturn rate" in listing.content and case.external_id.encode() in \
        listing.content
    detail = client.get(f"/compliance/explanations/{request.pk}/")
    assert detail.status_code == 200 and b"not confident enough" in detail.content
    sent = client.post(f"/compliance/explanations/{request.pk}/answer/", {"note": "Personal note."})
    assert sent.status_code == 302
    pdf = client.get(f"/compliance/explanations/{request.pk}/letter.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    manager = make_user("manager")
    client.force_login(manager)
    assert client.get("/compliance/explanations/").status_code == 403
    assert client.post(f"/compliance/explanations/{request.pk}/answer/", {"note": ""}).status_code == 403


# --- Deadline reminders ---------------------------------------------------------------------------


def test_reminders_before_and_after_the_deadline_once_each(make_user) -> None:
    case, _ = _issued(make_user)
    officer = make_user("compliance_officer", "officer-a")
    request = explanation_request_submit(case=case)
    now = timezone.now()
    assert explanation_deadline_reminders(now=now) == 0
    soon = request.deadline - timedelta(days=3)
    assert explanation_deadline_reminders(now=soon) == 1
    assert explanation_deadline_reminders(now=soon + timedelta(hours=1)) == 0
    late = request.deadline + timedelta(hours=1)
    assert explanation_deadline_reminders(now=late) == 1
    assert explanation_deadline_reminders(now=late + timedelta(days=1)) == 0
    subjects = list(Notification.objects.filter(recipients__user=officer, dedupe_key__contains=":20")
                    .values_list("subject", flat=True))
    assert any("overdue" in s for s in subjects) and any("is due on" in s for s in subjects)
    explanation_answer(actor=officer, request=request)
    assert explanation_deadline_reminders(now=late + timedelta(days=2)) == 0


def test_dossier_counts_requests_in_time_and_overturns(make_user) -> None:
    from compliance.dossier import build_dossier

    case, _ = _issued(make_user)
    officer = make_user("compliance_officer", "officer-a")
    explanation_answer(actor=officer, request=explanation_request_submit(case=case))
    html = build_dossier(case.system, fmt="html", generated_by="test").content.decode()
    section = html[html.index('id="art-86"'):html.index('id="obligations"')]
    flat = " ".join(section.split())
    assert "Requests received: 1 (0 open, 0 unanswered past the deadline)" in flat
    assert "Answered: 1, of which in time: 1 (100 %)" in flat and "Contested after the explanation" in flat
