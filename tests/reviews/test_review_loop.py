"""Issue 12 items 1-4: escalations always resolve, adjudication with context, leases, a reviewer's own work.

Service rules on PostgreSQL (allowed, denied, audit events), the API's assign
action and the pages' permissions.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from hitl_portal.errors import Conflict, Forbidden
from reviews.models import AlertKind, Case, CaseAlert, CaseComment, CaseSkip, CaseStatus, Decision, Resolution
from reviews.selectors.escalations import adjudication_context
from reviews.selectors.own_work import comments_visible_to
from reviews.selectors.visibility import case_visible_to, cases_visible_to
from reviews.services.decisions import decision_record
from reviews.services.errors import ClaimConflict
from reviews.services.escalations import alert_stuck_cases, case_assign, case_officer_adjudicate
from reviews.services.own_work import case_comment_add, claim_skip, decision_undo
from reviews.services.queue import claim_next, claim_renew
from tests.reviews.queue_helpers import client_for, make_case, make_point, make_reviewer, make_user

pytestmark = pytest.mark.django_db


def events(case: Case, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(case_id=case.pk, action=action).order_by("id"))


def data_of(event: AuditEvent) -> dict:
    return json.loads(event.payload)["data"]


def decide(case: Case, reviewer: User, **verdict) -> Case:
    claimed = claim_next(reviewer=reviewer)
    assert claimed is not None and claimed.pk == case.pk
    verdict.setdefault("label", None)
    verdict.setdefault("rationale", "")
    verdict.setdefault("outcome", None)
    return decision_record(reviewer=reviewer, case=case, **verdict)


def officer() -> User:
    user = make_user("compliance_officer")
    user.email = f"{user.username}@ex.org"
    user.save(update_fields=["email"])
    return user


def page_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- 1. Escalations always resolve ------------------------------------------------------------


def test_an_escalation_never_returns_to_the_escalator_and_alerts_officers_when_nobody_else_can(
    django_capture_on_commit_callbacks,
) -> None:
    case = make_case(make_point())
    only = make_reviewer("only-adj", adjudicator=True)
    boss = officer()
    with django_capture_on_commit_callbacks(execute=True):
        escalated = decide(case, only, outcome="escalate", rationale="Payslip looks forged.")
    assert escalated.status == CaseStatus.ESCALATED
    # The escalator cannot claim his own escalation...
    assert claim_next(reviewer=only) is None
    # ...so the officers were alerted, once, audited and mailed.
    alert = CaseAlert.objects.get(case=case)
    assert alert.kind == AlertKind.NO_ELIGIBLE_ADJUDICATOR and alert.resolved_at is None
    [event] = events(case, "case.alert_raised")
    assert data_of(event)["kind"] == "no_adjudicator" and event.actor_id == only.pk
    assert [m.to for m in mail.outbox] == [[boss.email]]
    assert f"Case #{case.pk}" in mail.outbox[0].subject
    # The beat sweep does not alert again.
    assert alert_stuck_cases() == 0


def test_no_alert_while_another_adjudicator_can_take_it() -> None:
    case = make_case(make_point())
    first = make_reviewer(adjudicator=True)
    second = make_reviewer(adjudicator=True)
    decide(case, first, outcome="escalate", rationale="Unclear.")
    assert not CaseAlert.objects.exists()
    assert claim_next(reviewer=first) is None
    assert claim_next(reviewer=second).pk == case.pk


def test_beat_alerts_no_reviewer_and_queue_age_once_each() -> None:
    point = make_point(sla_seconds=60)
    waiting = make_case(point, received_at=timezone.now() - timedelta(minutes=5))  # past its SLA deadline
    fresh = make_case(point)
    assert alert_stuck_cases() == 3
    kinds = set(CaseAlert.objects.values_list("case_id", "kind"))
    assert kinds == {
        (waiting.pk, "no_reviewer"), (waiting.pk, "queue_age"), (fresh.pk, "no_reviewer"),
    }
    assert len([e for e in AuditEvent.objects.filter(action="case.alert_raised")]) == 3
    assert alert_stuck_cases() == 0  # once per case, kind and round
    make_reviewer()
    later = make_case(point)
    assert alert_stuck_cases() == 0 and not CaseAlert.objects.filter(case=later).exists()


def test_officer_adjudicates_a_case_routed_to_the_officers(django_capture_on_commit_callbacks) -> None:
    case = make_case(make_point())
    only = make_reviewer(adjudicator=True)
    decide(case, only, outcome="escalate", rationale="Payslip looks forged.")
    boss = officer()
    with pytest.raises(ValidationError) as exc:
        case_officer_adjudicate(officer=boss, case=case, outcome="escalate", label=None, rationale="x")
    assert "outcome" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        case_officer_adjudicate(officer=boss, case=case, outcome="override", label="reject", rationale="")
    assert "rationale" in exc.value.message_dict
    decided = case_officer_adjudicate(officer=boss, case=case, outcome="override", label="reject",
                                      rationale="The payslip is forged; reject.")
    assert decided.status == CaseStatus.DECIDED and decided.resolution == Resolution.ADJUDICATED
    assert decided.final_label == "reject"
    decision = Decision.objects.get(case=case, reviewer=boss)
    assert decision.is_adjudication and decision.outcome == "override"
    assert data_of(events(case, "decision.recorded")[-1])["by_officer"] is True
    assert events(case, "case.decided")[0].actor_id == boss.pk
    assert CaseAlert.objects.get(case=case).resolved_by == boss


def test_officer_may_not_adjudicate_a_case_not_routed_to_the_officers() -> None:
    case = make_case(make_point())
    make_reviewer(adjudicator=True)
    with pytest.raises(Conflict) as exc:
        case_officer_adjudicate(officer=officer(), case=case, outcome="approve", label=None, rationale="Fine.")
    assert exc.value.code_name == "not_routed"
    assert not Decision.objects.exists() and not events(case, "case.decided")


def test_officer_may_not_adjudicate_while_a_reviewer_holds_the_case() -> None:
    case = make_case(make_point())
    only = make_reviewer(adjudicator=True)
    decide(case, only, outcome="escalate", rationale="Unclear.")
    helper = make_reviewer(adjudicator=True)
    assert claim_next(reviewer=helper).pk == case.pk
    with pytest.raises(Conflict) as exc:
        case_officer_adjudicate(officer=officer(), case=case, outcome="approve", label=None, rationale="Fine.")
    assert exc.value.code_name == "claimed"


def test_assign_hands_the_case_to_a_named_adjudicator_but_never_to_the_escalator() -> None:
    case = make_case(make_point())
    only = make_reviewer(adjudicator=True)
    decide(case, only, outcome="escalate", rationale="Unclear.")
    boss = officer()
    with pytest.raises(ValidationError) as exc:
        case_assign(actor=boss, case=case, reviewer=only, reason="He knows it.")
    assert "reviewer" in exc.value.message_dict
    plain = make_reviewer()
    with pytest.raises(ValidationError) as exc:
        case_assign(actor=boss, case=case, reviewer=plain, reason="Try.")
    assert "reviewer" in exc.value.message_dict  # escalated: an adjudicator is needed
    with pytest.raises(ValidationError) as exc:
        case_assign(actor=boss, case=case, reviewer=make_reviewer(adjudicator=True), reason=" ")
    assert "reason" in exc.value.message_dict
    new_adj = make_reviewer(adjudicator=True)
    assigned = case_assign(actor=boss, case=case, reviewer=new_adj, reason="Second adjudicator joined.")
    assert assigned.status == CaseStatus.CLAIMED and assigned.claimed_by == new_adj
    event = events(case, "case.reassigned")[-1]
    assert event.actor_id == boss.pk and event.reason == "Second adjudicator joined."
    assert CaseAlert.objects.get(case=case).resolved_at is not None


def test_assign_api_allowed_for_officers_denied_for_reviewers() -> None:
    case = make_case(make_point())
    rev = make_reviewer()
    url = f"/api/v1/cases/{case.pk}/assign/"
    assert client_for(rev).post(url, {"reviewer": rev.username, "reason": "x"}, format="json").status_code == 403
    boss = client_for(officer())
    response = boss.post(url, {"reviewer": "nobody-here", "reason": "x"}, format="json")
    assert response.status_code == 400 and "reviewer" in json.dumps(response.json())
    response = boss.post(url, {"reviewer": rev.username}, format="json")
    assert response.status_code == 400 and "reason" in json.dumps(response.json())
    response = boss.post(url, {"reviewer": rev.username, "reason": "Backlog."}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["case_status"] == "claimed" and body["claimed_by"] == rev.username
    assert events(case, "case.reassigned")


def test_officer_pages_and_home_panel() -> None:
    case = make_case(make_point())
    only = make_reviewer(adjudicator=True)
    decide(case, only, outcome="escalate", rationale="Payslip looks forged.")
    boss = page_client(officer())
    home = boss.get("/")
    assert home.status_code == 200 and f"Case #{case.pk}" in home.content.decode()
    listing = boss.get(reverse("reviews:escalations"))
    assert listing.status_code == 200 and f"Case #{case.pk}" in listing.content.decode()
    detail = boss.get(reverse("reviews:officer_case", args=[case.pk])).content.decode()
    assert "Payslip looks forged." in detail and "Adjudicate" in detail
    assert page_client(only).get(reverse("reviews:escalations")).status_code == 403
    assert page_client(only).get(reverse("reviews:officer_case", args=[case.pk])).status_code == 403
    # The officer's decision through the page.
    response = boss.post(reverse("reviews:officer_case", args=[case.pk]),
                         {"outcome": "override", "label": "reject", "rationale": ""})
    assert response.status_code == 400 and "rationale is required" in response.content.decode()
    response = boss.post(reverse("reviews:officer_case", args=[case.pk]),
                         {"outcome": "override", "label": "reject", "rationale": "Forged."})
    assert response.status_code == 302
    assert Case.objects.get(pk=case.pk).final_label == "reject"


# --- 2. Adjudication with context ---------------------------------------------------------------


def test_adjudicator_cannot_escalate_further_api_400_naming_outcome() -> None:
    point = make_point(reviewers_required=2)
    case = make_case(point)
    first, second = make_reviewer(), make_reviewer()
    decide(case, first, outcome="approve")
    decide(case, second, outcome="override", label="reject", rationale="Income too low.")
    adjudicator = make_reviewer(adjudicator=True)
    client = client_for(adjudicator)
    assert client.post("/api/v1/queue/claim/", {}, format="json").status_code == 200
    response = client.post(f"/api/v1/cases/{case.pk}/decision/", {"outcome": "escalate", "rationale": "?"},
                           format="json")
    assert response.status_code == 400 and "outcome" in json.dumps(response.json())
    context = adjudication_context(case)
    assert [(d["reviewer"], d["outcome"], d["label"]) for d in context["decisions"]] == [
        (first.username, "approve", "approve"), (second.username, "override", "reject"),
    ]
    assert context["decisions"][1]["rationale"] == "Income too low."
    assert [r["text"] for r in context["reasons"]] == [
        f"the reviewers' verdicts differ (when {second.username} decided)"
    ]


def test_workbench_shows_the_adjudicator_the_context_and_no_escalate_option() -> None:
    case = make_case(make_point())
    escalator = make_reviewer()
    decide(case, escalator, outcome="escalate", rationale="Identity document unreadable.")
    adjudicator = make_reviewer(adjudicator=True)
    client = page_client(adjudicator)
    response = client.post(reverse("reviews:claim"))
    assert response.status_code == 302
    html = client.get(reverse("reviews:case", args=[case.pk])).content.decode()
    assert "Earlier verdicts" in html and "Identity document unreadable." in html and escalator.username in html
    assert 'value="escalate"' not in html


# --- 3. Leases fit human work -------------------------------------------------------------------


def test_renew_is_bounded_by_the_maximum_hold(settings) -> None:
    settings.HITL_LEASE_SECONDS = 60
    settings.HITL_LEASE_MAX_HOLD_SECONDS = 90
    case = make_case(make_point())
    rev = make_reviewer()
    claimed = claim_next(reviewer=rev)
    Case.objects.filter(pk=case.pk).update(claimed_at=timezone.now() - timedelta(seconds=60),
                                           lease_expires_at=timezone.now() + timedelta(seconds=10))
    renewed = claim_renew(reviewer=rev, case=claimed)
    held_until = Case.objects.get(pk=case.pk).claimed_at + timedelta(seconds=90)
    assert renewed.lease_expires_at == held_until
    with pytest.raises(ClaimConflict) as exc:
        claim_renew(reviewer=rev, case=claimed)
    assert exc.value.code_name == "max_hold_reached"
    assert len(events(case, "case.lease_renewed")) == 1
    # The page's script is told why (JSON 409 with the code).
    response = page_client(rev).post(reverse("reviews:renew", args=[case.pk]), HTTP_ACCEPT="application/json")
    assert response.status_code == 409 and response.json()["code"] == "max_hold_reached"


def test_case_page_says_expired_properly() -> None:
    case = make_case(make_point())
    rev = make_reviewer()
    claim_next(reviewer=rev)
    html = page_client(rev).get(reverse("reviews:case", args=[case.pk])).content.decode()
    assert 'data-lease-seconds="300"' in html and "data-max-hold-until" in html
    assert "expired left" not in html


# --- 4. A reviewer's own work -------------------------------------------------------------------


def test_comments_allowed_denied_audited_and_hidden_from_a_blind_co_reviewer() -> None:
    point = make_point(reviewers_required=2)
    case = make_case(point)
    first, second = make_reviewer(), make_reviewer()
    decide(case, first, outcome="approve")
    note = case_comment_add(author=first, case=case, body="Looks like the AI is right: approve.")
    [event] = events(case, "case.commented")
    assert event.actor_id == first.pk and "Looks like" not in event.payload  # by hash only
    assert data_of(event)["text"]["chars"] == len(note.body)
    with pytest.raises(ValidationError) as exc:
        case_comment_add(author=first, case=case, body="   ")
    assert "body" in exc.value.message_dict
    stranger = make_reviewer()
    with pytest.raises(Forbidden):
        case_comment_add(author=stranger, case=case, body="Hi")
    # The co-reviewer holds the case in its blind phase: the first reviewer's comment would leak a verdict.
    assert claim_next(reviewer=second).pk == case.pk
    case.refresh_from_db()
    assert comments_visible_to(second, case) == []
    own = case_comment_add(author=second, case=case, body="Checking the payslip.")
    assert comments_visible_to(second, case) == [own]
    decision_record(reviewer=second, case=case, outcome="approve", label=None, rationale="")
    case.refresh_from_db()
    assert [c.body for c in comments_visible_to(second, case)] == [note.body, own.body]
    assert len(comments_visible_to(officer(), case)) == 2
    assert CaseComment.objects.count() == 2


def test_skip_returns_the_case_is_counted_and_not_offered_again() -> None:
    case = make_case(make_point())
    rev, other = make_reviewer(), make_reviewer()
    claimed = claim_next(reviewer=rev)
    with pytest.raises(ValidationError) as exc:
        claim_skip(reviewer=rev, case=claimed, reason="")
    assert "reason" in exc.value.message_dict
    skipped = claim_skip(reviewer=rev, case=claimed, reason="I know the applicant.")
    assert skipped.status == CaseStatus.QUEUED and skipped.claimed_by is None
    [event] = events(case, "case.skipped")
    assert event.reason == "I know the applicant." and event.actor_id == rev.pk
    assert CaseSkip.objects.filter(reviewer=rev).count() == 1
    assert claim_next(reviewer=rev) is None
    assert claim_next(reviewer=other).pk == case.pk
    with pytest.raises(ClaimConflict):  # no live claim any more
        claim_skip(reviewer=rev, case=case, reason="again")


def test_skip_by_the_last_eligible_reviewer_alerts_the_officers() -> None:
    case = make_case(make_point())
    rev = make_reviewer()
    claim_skip(reviewer=rev, case=claim_next(reviewer=rev), reason="Conflict of interest.")
    assert CaseAlert.objects.get(case=case).kind == AlertKind.NO_ELIGIBLE_REVIEWER


def test_undo_within_the_window_while_the_case_is_open(settings) -> None:
    point = make_point(reviewers_required=2)
    case = make_case(point)
    rev = make_reviewer()
    decide(case, rev, outcome="override", label="reject", rationale="Income too low.")
    decision = Decision.objects.get(case=case, reviewer=rev)
    with pytest.raises(Forbidden):
        decision_undo(reviewer=make_reviewer(), decision=decision)
    back = decision_undo(reviewer=rev, decision=decision)
    assert back.status == CaseStatus.CLAIMED and back.claimed_by == rev
    assert not Decision.objects.filter(pk=decision.pk).exists()
    [event] = events(case, "decision.undone")
    assert data_of(event)["outcome"] == "override" and event.actor_id == rev.pk
    # Decide again; the window passes; the decision stands.
    decision_record(reviewer=rev, case=back, outcome="approve", label=None, rationale="")
    again = Decision.objects.get(case=case, reviewer=rev)
    Decision.objects.filter(pk=again.pk).update(decided_at=timezone.now() - timedelta(seconds=121))
    again.refresh_from_db()
    with pytest.raises(Conflict) as exc:
        decision_undo(reviewer=rev, decision=again)
    assert exc.value.code_name == "undo_window_passed"


def test_undo_refused_once_the_case_is_final() -> None:
    case = make_case(make_point())
    rev = make_reviewer()
    decide(case, rev, outcome="approve")
    with pytest.raises(Conflict) as exc:
        decision_undo(reviewer=rev, decision=Decision.objects.get(case=case))
    assert exc.value.code_name == "not_open"
    assert Case.objects.get(pk=case.pk).status == CaseStatus.DECIDED
    assert not events(case, "decision.undone")


def test_my_decisions_pages_show_only_my_own_verdict() -> None:
    point = make_point(reviewers_required=2)
    case = make_case(point, true_label="TRUTH-XYZ")
    first, second = make_reviewer(), make_reviewer()
    decide(case, first, outcome="approve")
    decide(case, second, outcome="override", label="reject", rationale="SECRET-RATIONALE of the second reviewer.")
    client = page_client(first)
    listing = client.get(reverse("reviews:my_decisions"))
    assert listing.status_code == 200
    assert reverse("reviews:my_case", args=[case.pk]) in listing.content.decode()
    html = client.get(reverse("reviews:my_case", args=[case.pk])).content.decode()
    assert "SECRET-RATIONALE" not in html and "TRUTH-XYZ" not in html
    assert "gold" not in html.lower()
    assert client.get(reverse("reviews:my_case", args=[make_case(point).pk])).status_code == 404
    assert page_client(officer()).get(reverse("reviews:my_decisions")).status_code == 403


def test_my_decisions_page_reads_no_column_per_row(django_assert_max_num_queries) -> None:
    """The list reads only the columns it shows (issue 15): a deferred column read by the
    template or by ``undoable`` would cost one query per row, so the count is pinned and
    stays flat from one decision to several, open (undoable) and final alike."""
    point = make_point(reviewers_required=2)
    rev = make_reviewer()
    decide(make_case(point), rev, outcome="approve")
    client = page_client(rev)
    with django_assert_max_num_queries(MY_DECISIONS_QUERIES):
        one = client.get(reverse("reviews:my_decisions"))
    for _ in range(3):
        decide(make_case(point), rev, outcome="override", label="reject", rationale="Income not proven.")
    final = make_case(make_point(point.system, slug="final-point"))
    decide(final, rev, outcome="approve")
    with django_assert_max_num_queries(MY_DECISIONS_QUERIES):
        many = client.get(reverse("reviews:my_decisions"))
    assert len(one.context["rows"]) == 1 and len(many.context["rows"]) == 5
    html = many.content.decode()
    assert html.count(">Undo</button>") == 4  # the open cases; the final one is not undoable
    assert point.name in html and f"Case #{final.pk}" in html


# Session, user, groups, inbox badge, the pager's count, the page of decisions, the skip count.
MY_DECISIONS_QUERIES = 7


def test_one_case_visibility_agrees_with_the_list_rule() -> None:
    """``case_visible_to`` (one case, EXISTS) answers as ``cases_visible_to`` (the list) does."""
    point = make_point()
    rev, other = make_reviewer(), make_reviewer()
    decided = make_case(point)
    decide(decided, rev, outcome="approve")
    others = make_case(point)
    decide(others, other, outcome="approve")
    held = make_case(point)
    claimed = claim_next(reviewer=rev)
    assert claimed is not None and claimed.pk == held.pk
    untouched = make_case(point)
    expired = make_case(point)
    Case.objects.filter(pk=expired.pk).update(status=CaseStatus.CLAIMED, claimed_by=rev,
                                              lease_expires_at=timezone.now() - timedelta(minutes=1))
    cases = [decided, held, others, untouched, expired]
    for user in (rev, other, make_user("manager"), make_user("integration")):
        listed = set(cases_visible_to(user).filter(pk__in=[c.pk for c in cases]).values_list("pk", flat=True))
        single = {c.pk for c in cases if case_visible_to(user, c.pk) is not None}
        assert single == listed, user
    assert {c.pk for c in cases if case_visible_to(rev, c.pk)} == {decided.pk, held.pk}


def test_admin_action_opens_the_officers_page_for_one_case() -> None:
    case = make_case(make_point())
    admin_client = page_client(make_user("admin"))
    response = admin_client.post("/admin/reviews/case/", {"action": "assign_or_adjudicate",
                                                          "_selected_action": [case.pk]})
    assert response.status_code == 302 and response.url == reverse("reviews:officer_case", args=[case.pk])
    page = admin_client.get(response.url)
    assert page.status_code == 200 and "Assign to a reviewer" in page.content.decode()
    other = make_case(make_point(slug="second-point"))
    response = admin_client.post("/admin/reviews/case/", {"action": "assign_or_adjudicate",
                                                          "_selected_action": [case.pk, other.pk]}, follow=True)
    assert "Select exactly one case" in response.content.decode()


def test_beat_alerts_a_four_eyes_case_whose_only_reviewer_already_decided() -> None:
    point = make_point(reviewers_required=2)
    case = make_case(point)
    untouched = make_case(point)
    rev = make_reviewer()
    decide(case, rev, outcome="approve")
    assert Case.objects.get(pk=case.pk).status == CaseStatus.QUEUED
    assert alert_stuck_cases() == 1
    assert CaseAlert.objects.get().case_id == case.pk and not CaseAlert.objects.filter(case=untouched).exists()
