"""Issue 12 "Must show", as a person: adjudication with context, an escalation that reaches the
officers, a lease kept alive by typing, and a reviewer's own work (my decisions, comment, skip, undo).

Screenshots (desktop and 390 px) go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audit.models import AuditEvent
from reviews.models import Case, CaseAlert, CaseComment, CaseSkip, CaseStatus, Decision, ReviewerProfile
from reviews.services.decisions import decision_record
from reviews.services.queue import claim_next
from tests.conftest import wait_until
from tests.reviews.workbench_helpers import make_point, make_queued_case

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _requirements_catalog(transactional_db: object) -> object:
    """Live-server tests flush the database; creating a system needs the catalog its migration loaded."""
    from compliance.catalog import load_catalog

    return load_catalog()


def shoot(page, name: str) -> None:
    """Desktop, then the same page at a phone's 390 px width."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    size = page.viewport_size
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / f"{name}-390.png"), full_page=True)
    page.set_viewport_size(size)


def reviewer(make_user, name: str, *, adjudicator: bool = False):
    user = make_user("reviewer", name, systems=["credit-scoring"])
    if adjudicator:
        ReviewerProfile.objects.filter(user=user).update(adjudicator=True)
    return user


def decide(case: Case, user, **verdict) -> None:
    claimed = claim_next(reviewer=user)
    assert claimed is not None and claimed.pk == case.pk
    decision_record(reviewer=user, case=claimed, **{"label": None, "rationale": "", **verdict})


def test_adjudicator_sees_both_earlier_verdicts_and_cannot_escalate(page, live_server, login, make_user):
    point = make_point(reviewers_required=2)
    case = make_queued_case(point, external_id="app-4eyes")
    rev1, rev2 = reviewer(make_user, "rev1"), reviewer(make_user, "rev2")
    reviewer(make_user, "adj1", adjudicator=True)
    decide(case, rev1, outcome="approve", rationale="Income matches the payslip.")
    decide(case, rev2, outcome="override", label="reject", rationale="The payslip names another employer.")
    assert Case.objects.get(pk=case.pk).status == CaseStatus.ESCALATED

    login("adj1")
    page.get_by_role("button", name="Claim next case").click()
    page.wait_for_url(re.compile(rf"/review/case/{case.pk}/$"))
    context = page.locator("#wb-context")
    text = context.inner_text()
    for expected in ("rev1", "rev2", "Income matches the payslip.", "The payslip names another employer.",
                     "Approve", "Override", "reject", "verdicts differ"):
        assert expected in text, expected
    # Final decisions only: no escalate option, and "e" does nothing.
    assert page.locator('input[name="outcome"][value="escalate"]').count() == 0
    assert "final" in page.locator("#wb-final-note").inner_text()
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("e")
    assert page.locator('input[name="outcome"]:checked').count() == 0
    shoot(page, "review-loop-adjudication")

    page.locator('input[name="outcome"][value="override"]').check()
    page.select_option("#id_label", "reject")
    page.fill("#id_rationale", "Employer mismatch confirmed with the applicant's bank statement.")
    page.get_by_role("button", name="Submit decision").click()
    page.wait_for_url(re.compile(r"/review/$"))
    decided = Case.objects.get(pk=case.pk)
    assert decided.status == CaseStatus.DECIDED and decided.final_label == "reject"
    assert decided.resolution == "adjudicated"


def test_escalation_by_the_only_adjudicator_reaches_the_officers_with_an_alert(page, live_server, login, make_user):
    point = make_point()
    case = make_queued_case(point, external_id="app-only-adj")
    reviewer(make_user, "solo", adjudicator=True)
    make_user("compliance_officer", "officer1", email="officer1@ex.org")

    login("solo")
    page.get_by_role("button", name="Claim next case").click()
    page.wait_for_url(re.compile(rf"/review/case/{case.pk}/$"))
    page.locator('input[name="outcome"][value="escalate"]').check()
    page.fill("#id_rationale", "The identity document looks altered; I need a second opinion.")
    page.get_by_role("button", name="Submit decision").click()
    page.wait_for_url(re.compile(r"/review/$"))
    # The escalator is not offered his own escalation.
    assert page.get_by_role("button", name="Claim next case").is_disabled()
    assert CaseAlert.objects.filter(case=case, kind="no_adjudicator").count() == 1
    assert AuditEvent.objects.filter(case_id=case.pk, action="case.alert_raised").count() == 1

    page.context.clear_cookies()
    login("officer1")
    panel = page.locator("#case-alerts")
    assert panel.is_visible()
    assert f"Case #{case.pk}" in panel.inner_text() and "No eligible adjudicator" in panel.inner_text()
    shoot(page, "review-loop-officer-home")
    panel.get_by_role("link", name=f"Case #{case.pk}").click()
    page.wait_for_url(re.compile(rf"/review/escalations/{case.pk}/$"))
    assert "The identity document looks altered" in page.locator("#wb-context").inner_text()
    assert "solo" in page.locator("#wb-context").inner_text()
    shoot(page, "review-loop-officer-case")
    decide_box = page.locator("#wb-officer-decide")
    decide_box.locator('input[value="override"]').check()
    decide_box.locator("select").select_option("reject")
    decide_box.locator("textarea").fill("Document forged: reject, and report it.")
    decide_box.get_by_role("button", name="Adjudicate").click()
    page.wait_for_url(re.compile(r"/review/escalations/$"))
    assert f"Case #{case.pk} adjudicated" in page.locator(".messages").inner_text()
    decided = Case.objects.get(pk=case.pk)
    assert decided.status == CaseStatus.DECIDED and decided.final_label == "reject"
    assert Decision.objects.get(case=case, is_adjudication=True).reviewer.username == "officer1"


def test_lease_is_renewed_while_the_reviewer_types(page, live_server, login, make_user, settings):
    settings.HITL_LEASE_SECONDS = 6
    settings.HITL_LEASE_MAX_HOLD_SECONDS = 600
    point = make_point()
    first = make_queued_case(point, external_id="app-slow", age_seconds=600)
    second = make_queued_case(point, external_id="app-next", age_seconds=60)
    reviewer(make_user, "typist")

    login("typist")
    page.get_by_role("button", name="Claim next case").click()
    page.wait_for_url(re.compile(rf"/review/case/{first.pk}/$"))
    until_before = page.locator("#wb-lease-until").inner_text()
    page.locator('input[name="outcome"][value="override"]').check()
    page.select_option("#id_label", "reject")
    # Type for well over two lease lengths (about 15 s).
    page.locator("#id_rationale").click()
    page.keyboard.type("The applicant's income statement does not match the payslip employer at all.", delay=200)
    assert Case.objects.get(pk=first.pk).lease_expires_at is not None
    renewals = AuditEvent.objects.filter(case_id=first.pk, action="case.lease_renewed").count()
    assert renewals >= 2, renewals
    # The shown end time follows the renewals; the countdown never said "expired".
    assert page.locator("#wb-lease-until").inner_text() != until_before
    assert re.fullmatch(r"\d+:\d\d", page.locator("#wb-lease-left").inner_text())
    shoot(page, "review-loop-lease-typing")
    page.get_by_role("button", name="Submit decision").click()
    page.wait_for_url(re.compile(rf"/review/case/{second.pk}/$"))
    assert Decision.objects.get(case=first).rationale.startswith("The applicant's income statement")

    # Left alone, the next lease runs out and the page says so plainly.
    wait_until(page, "document.getElementById('wb-lease-left').textContent === 'Lease expired'", timeout=15000)
    assert "expired left" not in page.locator("#wb-lease-text").inner_text()
    assert page.locator("#wb-lease-post").is_hidden()
    assert page.locator("#wb-lease-note").is_visible()
    shoot(page, "review-loop-lease-expired")


def test_my_decisions_comment_skip_and_undo(page, live_server, login, make_user, settings):
    point = make_point(reviewers_required=2)
    first = make_queued_case(point, external_id="app-a", age_seconds=900)
    second = make_queued_case(point, external_id="app-b", age_seconds=600)
    reviewer(make_user, "rev1")

    login("rev1")
    page.get_by_role("button", name="Claim next case").click()
    page.wait_for_url(re.compile(rf"/review/case/{first.pk}/$"))
    page.fill("#id_comment_body", "Payslip employer differs from the form; worth a look.")
    page.get_by_role("button", name="Add comment").click()
    page.wait_for_url(re.compile(rf"/review/case/{first.pk}/$"))
    assert "Payslip employer differs" in page.locator("#wb-comments").inner_text()
    assert CaseComment.objects.filter(case=first).count() == 1

    page.locator('input[name="outcome"][value="approve"]').check()
    page.get_by_role("button", name="Submit decision").click()
    page.wait_for_url(re.compile(rf"/review/case/{second.pk}/$"))

    # Skip the next one with a reason.
    page.locator(".wb-skip summary").click()
    page.fill("#id_skip_reason", "I know this applicant personally.")
    page.get_by_role("button", name="Skip case").click()
    page.wait_for_url(re.compile(r"/review/$"))
    assert "skipped" in page.locator(".messages").inner_text()
    assert CaseSkip.objects.filter(case=second).count() == 1
    assert Case.objects.get(pk=second.pk).status == CaseStatus.QUEUED

    # My decisions: a link to the case as I saw it, and Undo.
    page.get_by_role("link", name=re.compile("All my decisions")).click()
    page.wait_for_url(re.compile(r"/review/mine/$"))
    assert page.locator("#wb-skip-count").inner_text() == "1"
    shoot(page, "review-loop-my-decisions")
    page.get_by_role("link", name=f"Case #{first.pk}").click()
    page.wait_for_url(re.compile(rf"/review/mine/{first.pk}/$"))
    assert "Approve" in page.locator("#wb-my-verdict").inner_text()
    assert "Payslip employer differs" in page.locator("#wb-comments").inner_text()
    shoot(page, "review-loop-my-case")
    page.get_by_role("button", name="Undo my decision").click()
    page.wait_for_url(re.compile(rf"/review/case/{first.pk}/$"))
    assert "undone" in page.locator(".messages").inner_text()
    assert not Decision.objects.filter(case=first).exists()
    assert AuditEvent.objects.filter(case_id=first.pk, action="decision.undone").count() == 1
    page.locator('input[name="outcome"][value="override"]').check()
    page.select_option("#id_label", "refer")
    page.fill("#id_rationale", "On reflection the employer mismatch needs a referral.")
    page.get_by_role("button", name="Submit decision").click()
    page.wait_for_url(re.compile(r"/review/"))
    assert Decision.objects.get(case=first).label == "refer"
