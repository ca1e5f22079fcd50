"""The reviewer workbench pages: permissions, claim / decide / renew / release, clear messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from reviews.models import Case, CaseStatus, Decision
from reviews.services.people import reviewer_update
from tests.reviews.workbench_helpers import make_point, make_queued_case

pytestmark = pytest.mark.django_db


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def point():
    return make_point()


@pytest.fixture
def reviewer(make_user, point):
    return make_user("reviewer", "rev1", systems=["credit-scoring"])


@pytest.fixture
def rev_client(reviewer):
    return client_for(reviewer)


def claim(client: Client, **scope: str):
    return client.post(reverse("reviews:claim"), scope)


def claimed_case(client: Client) -> Case:
    response = claim(client)
    assert response.status_code == 302, response
    return Case.objects.get(pk=int(response.url.rstrip("/").rsplit("/", 1)[1]))


# --- permissions -------------------------------------------------------------------------------

PAGES = [
    ("get", "reviews:queue", False),
    ("post", "reviews:claim", False),
    ("get", "reviews:case", True),
    ("post", "reviews:case", True),
    ("post", "reviews:renew", True),
    ("post", "reviews:release", True),
]


@pytest.mark.parametrize(("method", "name", "needs_case"), PAGES)
@pytest.mark.parametrize("role", ["manager", "integration", "compliance_officer"])
def test_pages_deny_other_roles(make_user, point, method, name, needs_case, role):
    case = make_queued_case(point, external_id="c1")
    url = reverse(name, kwargs={"pk": case.pk} if needs_case else None)
    response = getattr(client_for(make_user(role)), method)(url)
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action__startswith="case.claimed").exists()


@pytest.mark.parametrize(("method", "name", "needs_case"), PAGES)
def test_pages_send_anonymous_users_to_login(point, method, name, needs_case):
    case = make_queued_case(point, external_id="c1")
    url = reverse(name, kwargs={"pk": case.pk} if needs_case else None)
    response = getattr(Client(), method)(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_queue_page_allowed_for_a_reviewer_and_an_admin(rev_client, make_user, point):
    make_queued_case(point, external_id="c1")
    response = rev_client.get(reverse("reviews:queue"))
    assert response.status_code == 200
    assert response.context["rows"][0]["claimable"] == 1
    assert b"Claim next case" in response.content
    admin = client_for(make_user("admin"))
    response = admin.get(reverse("reviews:queue"))
    assert response.status_code == 200
    assert b"no reviewer profile" in response.content


# --- queue page --------------------------------------------------------------------------------


def test_queue_overview_shows_counts_oldest_and_per_point_claim(rev_client, point):
    make_queued_case(point, external_id="c1", age_seconds=3600)
    make_queued_case(point, external_id="c2")
    response = rev_client.get(reverse("reviews:queue"))
    html = response.content.decode()
    assert "Loan Review" in html
    assert "<strong>2</strong>" in html
    assert "1\xa0hour ago" in html
    assert 'name="point" value="loan-review"' in html
    assert "Keyboard" in html and "<kbd>n</kbd>" in html


def test_suspended_reviewer_sees_a_message_instead_of_a_button(rev_client, reviewer, point):
    make_queued_case(point, external_id="c1")
    reviewer_update(actor=None, profile=reviewer.reviewer_profile, reason="Training expired", status="suspended")
    response = rev_client.get(reverse("reviews:queue"))
    html = response.content.decode()
    assert "suspended" in html and "Training expired" in html
    assert "Claim next case" not in html
    # And the claim itself is refused by the service, with its reason shown.
    response = claim(rev_client)
    assert response.status_code == 302 and response.url == reverse("reviews:queue")
    follow = rev_client.get(response.url)
    assert any("suspended" in m for m in messages_of(follow))
    assert not AuditEvent.objects.filter(action="case.claimed").exists()


def test_unqualified_reviewer_sees_a_message(make_user, point):
    make_queued_case(point, external_id="c1")
    client = client_for(make_user("reviewer", "newbie"))
    response = client.get(reverse("reviews:queue"))
    assert b"not qualified for any AI system" in response.content
    assert b"Claim next case" not in response.content


def test_recent_decisions_and_live_claim_are_listed(rev_client, point):
    make_queued_case(point, external_id="c1")
    second = make_queued_case(point, external_id="c2", age_seconds=10)
    case = claimed_case(rev_client)
    response = rev_client.post(reverse("reviews:case", args=[case.pk]),
                               {"outcome": "override", "label": "reject", "rationale": "Income not proven."})
    # The next case opened automatically: it is the reviewer's live claim now.
    assert response.url == reverse("reviews:case", args=[second.pk])
    page = rev_client.get(reverse("reviews:queue"))
    html = page.content.decode()
    assert f"Continue case #{second.pk}" in html
    assert f"#{case.pk}" in html and "Override" in html and "reject" in html
    assert [d.case_id for d in page.context["recent"]] == [case.pk]


# --- claim next --------------------------------------------------------------------------------


def test_claim_next_opens_the_case_and_records_the_claim(rev_client, reviewer, point):
    case = make_queued_case(point, external_id="c1")
    response = claim(rev_client)
    assert response.status_code == 302
    assert response.url == reverse("reviews:case", args=[case.pk])
    case.refresh_from_db()
    assert case.status == CaseStatus.CLAIMED and case.claimed_by == reviewer
    event = AuditEvent.objects.get(action="case.claimed")
    assert event.case_id == case.pk and event.actor_name == "rev1"


def test_claim_next_for_one_point_only(rev_client, point):
    other = make_point(point_slug="fraud-check")
    make_queued_case(point, external_id="c1", age_seconds=600)
    wanted = make_queued_case(other, external_id="c2")
    response = claim(rev_client, system="credit-scoring", point="fraud-check")
    assert response.url == reverse("reviews:case", args=[wanted.pk])


def test_claim_next_on_an_empty_queue_says_so(rev_client, point):
    response = claim(rev_client)
    assert response.url == reverse("reviews:queue")
    assert messages_of(rev_client.get(response.url)) == ["Nothing to review right now."]
    assert not AuditEvent.objects.filter(action="case.claimed").exists()


def test_claim_next_with_an_unknown_queue_is_a_message_not_an_error(rev_client, point):
    response = claim(rev_client, system="no-such-system", point="x")
    assert response.url == reverse("reviews:queue")
    assert any("does not exist" in m for m in messages_of(rev_client.get(response.url)))


def test_claim_next_while_holding_a_case_reopens_it(rev_client, point):
    make_queued_case(point, external_id="c1")
    make_queued_case(point, external_id="c2")
    held = claimed_case(rev_client)
    response = claim(rev_client)
    assert response.url == reverse("reviews:case", args=[held.pk])
    assert AuditEvent.objects.filter(action="case.claimed").count() == 1


# --- case page ---------------------------------------------------------------------------------


def test_case_page_shows_input_ai_label_reasons_guidelines_and_lease(rev_client, point):
    make_queued_case(point, external_id="app-1", reasons=["confidence_below", "high_stakes_field_missing"])
    case = claimed_case(rev_client)
    response = rev_client.get(reverse("reviews:case", args=[case.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    # The integration's external id stays off the page: gold copies would stand out by theirs.
    assert "app-1" not in html
    # Nested input as a definition list, lists inline, long text wrapped.
    assert "<dt>applicant</dt>" in html and "<dt>employment</dt>" in html and "salaried" in html
    assert "payslip, id-card" in html
    assert 'class="wb-longtext"' in html
    # AI label and confidence in %.
    assert 'id="wb-ai-label">approve<' in html
    assert "62.0 %" in html
    # Why routed, in words, with the threshold of the rules that routed it.
    assert "confidence is below the review threshold" in html and "Threshold: 80 %" in html
    assert "is missing, so a person reviews it" in html
    assert "Check the stated income" in html
    # Lease countdown data, renew and release, the decision choices and the shortcuts.
    assert 'id="wb-lease"' in html and "data-expires=" in html
    assert "Renew lease" in html and "Release" in html
    for outcome in ("approve", "override", "escalate"):
        assert f'name="outcome" value="{outcome}"' in html
    assert '<option value="refer">refer</option>' in html
    assert "Ctrl</kbd>+<kbd>Enter" in html


def test_blind_case_hides_the_ai_suggestion_and_asks_for_a_label(rev_client, point):
    make_queued_case(point, external_id="blind-1", blind=True, label="reject", confidence=0.55,
                     reasons=["confidence_below", "random_sample"])
    case = claimed_case(rev_client)
    response = rev_client.get(reverse("reviews:case", args=[case.pk]))
    html = response.content.decode()
    assert "AI suggestion hidden for this case" in html
    assert "55.0 %" not in html and 'id="wb-ai-label"' not in html
    assert 'name="outcome" value="approve"' not in html and 'name="outcome" value="override"' not in html
    assert 'name="outcome" value="label"' in html and 'name="outcome" value="escalate"' in html
    # The reason that would reveal the AI's doubt is not shown either.
    assert "confidence is below" not in html
    assert "random quality-control sample" in html


def test_blind_answer_is_recorded_with_the_label(rev_client, point):
    make_queued_case(point, external_id="blind-1", blind=True, label="reject")
    case = claimed_case(rev_client)
    rev_client.post(reverse("reviews:case", args=[case.pk]), {"outcome": "label", "label": "reject"})
    decision = Decision.objects.get(case=case)
    assert decision.label == "reject" and decision.outcome == "approve" and decision.ai_shown is False


def test_case_page_of_a_case_not_held_says_so(rev_client, make_user, point):
    case = make_queued_case(point, external_id="c1")
    other = client_for(make_user("reviewer", "rev2", systems=["credit-scoring"]))
    claimed_case(other)
    response = rev_client.get(reverse("reviews:case", args=[case.pk]))
    assert response.status_code == 409
    html = response.content.decode()
    assert "not yours to review" in html and "lease has expired" in html
    assert reverse("reviews:queue") in html
    # Nothing of the case is shown.
    assert "salaried" not in html


def test_case_page_after_the_lease_expired_says_so(rev_client, point):
    make_queued_case(point, external_id="c1")
    case = claimed_case(rev_client)
    Case.objects.filter(pk=case.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    response = rev_client.get(reverse("reviews:case", args=[case.pk]))
    assert response.status_code == 409
    assert b"lease has expired" in response.content


# --- decisions ---------------------------------------------------------------------------------


def test_override_records_the_decision_and_says_when_nothing_is_left(rev_client, point):
    make_queued_case(point, external_id="c1")
    case = claimed_case(rev_client)
    response = rev_client.post(reverse("reviews:case", args=[case.pk]),
                               {"outcome": "override", "label": "reject", "rationale": "Income not proven."})
    assert response.status_code == 302 and response.url == reverse("reviews:queue")
    assert "Decision saved. Nothing else to review right now." in messages_of(rev_client.get(response.url))
    case.refresh_from_db()
    assert case.status == CaseStatus.DECIDED and case.final_label == "reject"
    decision = Decision.objects.get(case=case)
    assert (decision.outcome, decision.label, decision.rationale) == ("override", "reject", "Income not proven.")
    assert AuditEvent.objects.filter(action="decision.recorded", case_id=case.pk).exists()
    assert AuditEvent.objects.filter(action="case.decided", case_id=case.pk).exists()


def test_approve_opens_the_next_case_automatically(rev_client, point):
    make_queued_case(point, external_id="c1", age_seconds=120)
    nxt = make_queued_case(point, external_id="c2", age_seconds=60)
    case = claimed_case(rev_client)
    response = rev_client.post(reverse("reviews:case", args=[case.pk]), {"outcome": "approve"})
    assert response.url == reverse("reviews:case", args=[nxt.pk])
    assert Decision.objects.get(case=case).outcome == "approve"
    assert AuditEvent.objects.filter(action="case.claimed", case_id=nxt.pk).exists()


def test_the_next_case_comes_from_the_same_queue(rev_client, point):
    other = make_point(point_slug="fraud-check")
    make_queued_case(point, external_id="older-elsewhere", age_seconds=600)
    first = make_queued_case(other, external_id="f1", age_seconds=60)
    second = make_queued_case(other, external_id="f2", age_seconds=30)
    response = claim(rev_client, system="credit-scoring", point="fraud-check")
    assert response.url == reverse("reviews:case", args=[first.pk])
    response = rev_client.post(response.url, {"outcome": "approve"})
    assert response.url == reverse("reviews:case", args=[second.pk])


def test_override_without_rationale_shows_the_service_error_at_the_field(rev_client, point):
    make_queued_case(point, external_id="c1")
    case = claimed_case(rev_client)
    response = rev_client.post(reverse("reviews:case", args=[case.pk]), {"outcome": "override", "label": "reject"})
    assert response.status_code == 400
    assert 'id="err-rationale"' in response.content.decode()
    assert not Decision.objects.exists()
    assert not AuditEvent.objects.filter(action="decision.recorded").exists()
    # What was entered stays on the page.
    assert '<option value="reject" selected>' in response.content.decode()


def test_escalate_needs_a_rationale_and_then_is_recorded(rev_client, point):
    make_queued_case(point, external_id="c1")
    case = claimed_case(rev_client)
    url = reverse("reviews:case", args=[case.pk])
    response = rev_client.post(url, {"outcome": "escalate"})
    assert response.status_code == 400 and 'id="err-rationale"' in response.content.decode()
    response = rev_client.post(url, {"outcome": "escalate", "rationale": "Identity documents disagree."})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == CaseStatus.ESCALATED
    assert AuditEvent.objects.filter(action="decision.recorded", case_id=case.pk).exists()


def test_unknown_outcome_or_label_is_a_form_error(rev_client, point):
    make_queued_case(point, external_id="c1")
    case = claimed_case(rev_client)
    url = reverse("reviews:case", args=[case.pk])
    response = rev_client.post(url, {"outcome": "shrug"})
    assert response.status_code == 400 and 'id="err-outcome"' in response.content.decode()
    response = rev_client.post(url, {"outcome": "override", "label": "maybe", "rationale": "x"})
    assert response.status_code == 400 and 'id="err-label"' in response.content.decode()
    assert not Decision.objects.exists()


def test_decision_after_the_lease_expired_is_not_saved_and_says_so(rev_client, point):
    make_queued_case(point, external_id="c1")
    case = claimed_case(rev_client)
    Case.objects.filter(pk=case.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    response = rev_client.post(reverse("reviews:case", args=[case.pk]),
                               {"outcome": "override", "label": "reject", "rationale": "Income not proven."})
    assert response.status_code == 302 and response.url == reverse("reviews:queue")
    (message,) = messages_of(rev_client.get(response.url))
    assert "expired" in message and "NOT saved" in message and "Income not proven." in message
    assert not Decision.objects.exists()
    assert not AuditEvent.objects.filter(action="decision.recorded").exists()
    # The draft comes back when the reviewer gets the case again.
    response = claim(rev_client)
    assert response.url == reverse("reviews:case", args=[case.pk])
    html = rev_client.get(response.url).content.decode()
    assert "Income not proven." in html and '<option value="reject" selected>' in html


def test_decision_race_lost_inside_the_service_is_reported_the_same_way(rev_client, point, monkeypatch):
    """The lease can run out between the page's check and the service's compare-and-set."""
    from reviews import views
    from reviews.services.errors import ClaimConflict

    def expired(**kwargs):
        raise ClaimConflict("You hold no live claim on this case.")

    make_queued_case(point, external_id="c1")
    case = claimed_case(rev_client)
    monkeypatch.setattr(views, "decision_record", expired)
    response = rev_client.post(reverse("reviews:case", args=[case.pk]), {"outcome": "approve"})
    assert response.url == reverse("reviews:queue")
    assert "NOT saved" in messages_of(rev_client.get(response.url))[0]


# --- renew and release -------------------------------------------------------------------------


def test_renew_extends_the_lease(rev_client, point):
    make_queued_case(point, external_id="c1")
    case = claimed_case(rev_client)
    Case.objects.filter(pk=case.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=5))
    response = rev_client.post(reverse("reviews:renew", args=[case.pk]))
    assert response.url == reverse("reviews:case", args=[case.pk])
    case.refresh_from_db()
    assert case.lease_expires_at > timezone.now() + timedelta(seconds=60)
    assert AuditEvent.objects.filter(action="case.lease_renewed", case_id=case.pk).count() == 1


def test_renew_answers_json_to_the_page_script(rev_client, point):
    make_queued_case(point, external_id="c1")
    case = claimed_case(rev_client)
    response = rev_client.post(reverse("reviews:renew", args=[case.pk]), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    case.refresh_from_db()
    assert response.json()["lease_expires_at"] == case.lease_expires_at.isoformat()
    Case.objects.filter(pk=case.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    response = rev_client.post(reverse("reviews:renew", args=[case.pk]), HTTP_ACCEPT="application/json")
    assert response.status_code == 409 and response.json()["code"] == "no_live_claim"
    assert AuditEvent.objects.filter(action="case.lease_renewed").count() == 1


def test_renew_of_an_expired_lease_says_so(rev_client, point):
    make_queued_case(point, external_id="c1")
    case = claimed_case(rev_client)
    Case.objects.filter(pk=case.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    response = rev_client.post(reverse("reviews:renew", args=[case.pk]))
    assert response.url == reverse("reviews:queue")
    assert "expired" in messages_of(rev_client.get(response.url))[0]
    assert not AuditEvent.objects.filter(action="case.lease_renewed").exists()


def test_release_returns_the_case_to_the_queue(rev_client, point):
    make_queued_case(point, external_id="c1")
    case = claimed_case(rev_client)
    response = rev_client.post(reverse("reviews:release", args=[case.pk]))
    assert response.url == reverse("reviews:queue")
    assert messages_of(rev_client.get(response.url)) == [f"Case #{case.pk} released back to the queue."]
    case.refresh_from_db()
    assert case.status == CaseStatus.QUEUED and case.claimed_by is None
    assert AuditEvent.objects.filter(action="case.released", case_id=case.pk).count() == 1
    # Releasing again is a clear message, not an error page.
    response = rev_client.post(reverse("reviews:release", args=[case.pk]))
    assert "already expired" in messages_of(rev_client.get(response.url))[0]
    assert AuditEvent.objects.filter(action="case.released").count() == 1


def test_get_is_not_allowed_on_state_changing_urls(rev_client, point):
    case = make_queued_case(point, external_id="c1")
    assert rev_client.get(reverse("reviews:claim")).status_code == 405
    assert rev_client.get(reverse("reviews:release", args=[case.pk])).status_code == 405
    assert not AuditEvent.objects.filter(action="case.claimed").exists()


def test_queue_page_query_count_is_pinned_and_flat(rev_client, point, django_assert_max_num_queries):
    """The reviewer's most visited page: one read each of profile, qualifications and trainings
    (it once read them twice over, issue 15), and nothing per decided case or per queued case."""
    for n in range(3):
        make_queued_case(point, external_id=f"c{n}", age_seconds=60 - n)
    case = claimed_case(rev_client)
    rev_client.post(reverse("reviews:case", args=[case.pk]),
                    {"outcome": "override", "label": "reject", "rationale": "Income not proven."})
    # Holding the next case, with one decision of mine listed.
    with django_assert_max_num_queries(QUEUE_PAGE_QUERIES):
        first = rev_client.get(reverse("reviews:queue"))
    case = Case.objects.get(status=CaseStatus.CLAIMED)
    rev_client.post(reverse("reviews:case", args=[case.pk]), {"outcome": "approve"})
    with django_assert_max_num_queries(QUEUE_PAGE_QUERIES):
        second = rev_client.get(reverse("reviews:queue"))
    assert len(first.context["recent"]) == 1 and len(second.context["recent"]) == 2


# Session, user, groups, the inbox badge and the page's own reads (profile with user,
# qualifications, required trainings, training records, points, claimable counts,
# own gold, live claim, recent decisions): measured, not guessed.
QUEUE_PAGE_QUERIES = 12
