"""Decisions: verdict rules, blind cases, four-eyes consensus, adjudication, reopening."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditEvent
from hitl_portal.api.exceptions import Conflict
from reviews.models import Case, CaseStatus, Decision, Resolution, WebhookDelivery
from reviews.services.decisions import case_reopen, decision_record
from reviews.services.errors import ClaimConflict, ReviewerNotAllowed
from reviews.services.queue import claim_next
from tests.reviews.queue_helpers import make_case, make_point, make_reviewer, make_user

pytestmark = pytest.mark.django_db


def payload(event: AuditEvent) -> dict:
    return json.loads(event.payload)


def decide(case: Case, reviewer=None, **verdict) -> Case:
    """Claim ``case`` (it must be the reviewer's next) and decide it."""
    reviewer = reviewer or make_reviewer()
    claimed = claim_next(reviewer=reviewer)
    assert claimed is not None and claimed.pk == case.pk
    verdict.setdefault("label", None)
    verdict.setdefault("rationale", "")
    verdict.setdefault("outcome", None)
    return decision_record(reviewer=reviewer, case=case, **verdict)


# --- One reviewer ---------------------------------------------------------------------------


def test_approve_decides_with_the_ai_label_and_audits() -> None:
    case = make_case(make_point(), label="reject")
    reviewer = make_reviewer()
    decided = decide(case, reviewer, outcome="approve")
    assert decided.status == CaseStatus.DECIDED
    assert decided.resolution == Resolution.REVIEWED and decided.final_label == "reject"
    assert decided.claimed_by is None and decided.decided_at is not None
    decision = Decision.objects.get(case=case)
    assert (decision.outcome, decision.label, decision.ai_shown, decision.round) == ("approve", "reject", True, 1)
    recorded = AuditEvent.objects.get(action="decision.recorded", case_id=case.pk)
    assert recorded.actor_id == reviewer.pk
    assert payload(recorded)["data"]["outcome"] == "approve"
    assert payload(AuditEvent.objects.get(action="case.decided", case_id=case.pk))["data"]["final_label"] == "reject"
    case.refresh_from_db()
    assert case.history.first().history_user == reviewer
    assert decision.history.first().history_user == reviewer


def test_override_needs_a_different_known_label_and_a_rationale() -> None:
    case = make_case(make_point(), label="approve")
    reviewer = make_reviewer()
    claim_next(reviewer=reviewer)
    bad = [
        (dict(outcome="override", label=None, rationale="why"), "label"),
        (dict(outcome="override", label="maybe", rationale="why"), "label"),
        (dict(outcome="override", label="approve", rationale="why"), "label"),
        (dict(outcome="override", label="reject", rationale="  "), "rationale"),
        (dict(outcome="escalate", label=None, rationale=""), "rationale"),
        (dict(outcome="approve", label="reject", rationale=""), "label"),
        (dict(outcome=None, label=None, rationale=""), "outcome"),
        (dict(outcome="shrug", label=None, rationale=""), "outcome"),
    ]
    for verdict, field in bad:
        with pytest.raises(ValidationError) as exc:
            decision_record(reviewer=reviewer, case=case, **verdict)
        assert field in exc.value.message_dict, verdict
    assert not Decision.objects.exists()
    decided = decision_record(reviewer=reviewer, case=case, outcome="override", label="reject",
                              rationale="Income does not cover the instalments.")
    assert decided.final_label == "reject" and decided.resolution == Resolution.REVIEWED
    recorded = payload(AuditEvent.objects.get(action="decision.recorded", case_id=case.pk))
    # The rationale is referred to by hash, never copied into the trail.
    assert recorded["data"]["rationale"]["chars"] == len("Income does not cover the instalments.")
    assert "instalments" not in json.dumps(recorded)


def test_escalate_sends_the_case_to_adjudicators() -> None:
    case = make_case(make_point())
    escalated = decide(case, outcome="escalate", rationale="Documents contradict each other.")
    assert escalated.status == CaseStatus.ESCALATED and escalated.final_label is None
    event = AuditEvent.objects.get(action="case.escalated", case_id=case.pk)
    assert payload(event)["data"]["cause"] == "reviewer_escalated"


def test_time_spent_is_measured_by_the_server() -> None:
    case = make_case(make_point())
    reviewer = make_reviewer()
    claim_next(reviewer=reviewer)
    claimed_at = timezone.now() - timedelta(seconds=42)
    Case.objects.filter(pk=case.pk).update(claimed_at=claimed_at)
    decision_record(reviewer=reviewer, case=case, outcome="approve", label=None, rationale="")
    decision = Decision.objects.get(case=case)
    assert decision.claimed_at == claimed_at
    assert decision.time_spent_ms >= 42_000


def test_decision_without_a_live_claim_is_a_conflict() -> None:
    case = make_case(make_point())
    reviewer = make_reviewer()
    with pytest.raises(ClaimConflict):
        decision_record(reviewer=reviewer, case=case, outcome="approve", label=None, rationale="")
    claim_next(reviewer=make_reviewer())
    with pytest.raises(ClaimConflict):
        decision_record(reviewer=reviewer, case=case, outcome="approve", label=None, rationale="")
    assert not Decision.objects.exists()
    assert not AuditEvent.objects.filter(action="decision.recorded").exists()


# --- Blind cases and labeling without prediction --------------------------------------------


def test_blind_case_is_answered_with_a_label_and_the_outcome_derived() -> None:
    point = make_point()
    same = make_case(point, label="reject", blind=True)
    differs = make_case(point, label="reject", blind=True)
    decide(same, label="reject")
    decide(differs, label="approve")
    first, second = Decision.objects.get(case=same), Decision.objects.get(case=differs)
    assert (first.outcome, first.label, first.ai_shown) == ("approve", "reject", False)
    assert (second.outcome, second.label, second.ai_shown) == ("override", "approve", False)
    assert Case.objects.get(pk=differs.pk).final_label == "approve"


def test_blind_case_refuses_approve_and_needs_a_label() -> None:
    case = make_case(make_point(), blind=True)
    reviewer = make_reviewer()
    claim_next(reviewer=reviewer)
    with pytest.raises(ValidationError) as exc:
        decision_record(reviewer=reviewer, case=case, outcome="approve", label=None, rationale="")
    assert "outcome" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        decision_record(reviewer=reviewer, case=case, outcome=None, label=None, rationale="")
    assert "label" in exc.value.message_dict
    escalated = decision_record(reviewer=reviewer, case=case, outcome="escalate", label=None, rationale="Unsure.")
    assert escalated.status == CaseStatus.ESCALATED


def test_labeling_case_without_prediction_records_override_with_the_label() -> None:
    point = make_point(slug="labeling", stage="labeling", confidence_below=None)
    case = make_case(point, label=None)
    decided = decide(case, label="refer")
    assert decided.status == CaseStatus.DECIDED and decided.final_label == "refer"
    decision = Decision.objects.get(case=case)
    assert (decision.outcome, decision.label, decision.ai_shown) == ("override", "refer", False)


# --- Four eyes --------------------------------------------------------------------------------


def test_two_agreeing_reviewers_decide_and_the_first_is_blind_to_the_second() -> None:
    case = make_case(make_point(reviewers_required=2), label="approve")
    first = decide(case, outcome="override", label="reject", rationale="Debt ratio too high.")
    assert first.status == CaseStatus.QUEUED and first.final_label is None and first.claimed_by is None
    assert not AuditEvent.objects.filter(action="case.decided", case_id=case.pk).exists()
    recorded = AuditEvent.objects.get(action="decision.recorded", case_id=case.pk)
    assert payload(recorded)["after"] == {"status": "queued"}
    second = decide(case, outcome="override", label="reject", rationale="Same: the debt ratio.")
    assert second.status == CaseStatus.DECIDED and second.final_label == "reject"
    assert second.resolution == Resolution.REVIEWED
    assert Decision.objects.filter(case=case).values("reviewer").distinct().count() == 2


def test_disagreement_escalates_and_the_adjudicator_decides_finally() -> None:
    case = make_case(make_point(reviewers_required=2), label="approve")
    decide(case, outcome="approve")
    disagreed = decide(case, outcome="override", label="reject", rationale="Income unverified.")
    assert disagreed.status == CaseStatus.ESCALATED
    assert payload(AuditEvent.objects.get(action="case.escalated", case_id=case.pk))["data"]["cause"] == "disagreement"
    assert claim_next(reviewer=make_reviewer()) is None  # not for ordinary reviewers
    adjudicator = make_reviewer(adjudicator=True)
    claim_next(reviewer=adjudicator)
    with pytest.raises(ValidationError) as exc:
        decision_record(reviewer=adjudicator, case=case, outcome="escalate", label=None, rationale="Not sure.")
    assert "outcome" in exc.value.message_dict
    final = decision_record(reviewer=adjudicator, case=case, outcome="override", label="reject",
                            rationale="Income could not be verified.")
    assert final.status == CaseStatus.DECIDED and final.resolution == Resolution.ADJUDICATED
    assert final.final_label == "reject"
    assert Decision.objects.get(case=case, reviewer=adjudicator).is_adjudication is True


def test_disagreement_escalates_before_all_required_reviewers_decided() -> None:
    case = make_case(make_point(reviewers_required=3), label="approve")
    decide(case, outcome="approve")
    escalated = decide(case, outcome="override", label="refer", rationale="Needs a second document.")
    assert escalated.status == CaseStatus.ESCALATED


def test_an_adjudicator_deciding_a_queued_case_counts_as_an_ordinary_review() -> None:
    case = make_case(make_point(reviewers_required=2))
    adjudicator = make_reviewer(adjudicator=True)
    first = decide(case, adjudicator, outcome="approve")
    assert first.status == CaseStatus.QUEUED
    assert Decision.objects.get(case=case).is_adjudication is False


def test_a_non_adjudicator_holding_an_escalated_case_cannot_decide_it() -> None:
    case = make_case(make_point(), status=CaseStatus.ESCALATED, review_round=2)
    reviewer = make_reviewer()
    Case.objects.filter(pk=case.pk).update(
        status=CaseStatus.CLAIMED, claimed_by=reviewer, claimed_at=timezone.now(),
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    with pytest.raises(ReviewerNotAllowed) as exc:
        decision_record(reviewer=reviewer, case=case, outcome="approve", label=None, rationale="")
    assert exc.value.code_name == "adjudicator_required"


# --- Webhooks -----------------------------------------------------------------------------------


def test_decided_case_enqueues_its_webhook_in_the_transaction() -> None:
    integration = make_user("integration")
    point = make_point()
    case = make_case(point, callback_url="https://example.org/hook", submitted_by=integration)
    queued_only = make_case(make_point(slug="four-eyes", reviewers_required=2),
                            callback_url="https://example.org/hook", submitted_by=integration)
    decide(case, outcome="approve")
    delivery = WebhookDelivery.objects.get(case=case)
    body = json.loads(delivery.body)
    assert body["event"] == "case.decided" and body["case"]["final_label"] == "approve"
    decide(queued_only, outcome="approve")
    assert not WebhookDelivery.objects.filter(case=queued_only).exists()


# --- Reopen ---------------------------------------------------------------------------------------


def test_reopen_sends_a_decided_case_back_as_escalated_in_a_new_round() -> None:
    point = make_point(sla_seconds=3600)
    case = make_case(point)
    first = make_reviewer(adjudicator=True)
    decide(case, first, outcome="approve")
    officer = make_user("compliance_officer")
    reopened = case_reopen(actor=officer, case=case, reason="Applicant appealed (Art. 86).")
    assert reopened.status == CaseStatus.ESCALATED and reopened.review_round == 2
    assert reopened.resolution is None and reopened.final_label is None and reopened.decided_at is None
    assert reopened.sla_deadline > timezone.now() + timedelta(minutes=50)
    event = AuditEvent.objects.get(action="case.reopened", case_id=case.pk)
    assert event.actor_id == officer.pk and event.reason == "Applicant appealed (Art. 86)."
    assert payload(event)["before"]["status"] == "decided"
    case.refresh_from_db()
    assert case.history.first().history_user == officer
    # The earlier decider never gets the appeal (escalations always resolve elsewhere): with no
    # other adjudicator, the officers are alerted; another adjudicator's decision is final.
    assert claim_next(reviewer=first) is None
    assert AuditEvent.objects.filter(action="case.alert_raised", case_id=case.pk).count() == 1
    second = make_reviewer(adjudicator=True)
    final = decide(case, second, outcome="override", label="reject", rationale="New evidence.")
    assert final.resolution == Resolution.ADJUDICATED and final.final_label == "reject"
    assert Decision.objects.filter(case=case, reviewer=first).count() == 1


def test_reopen_auto_accepted_case() -> None:
    case = make_case(make_point(), status=CaseStatus.AUTO_ACCEPTED, routed=False,
                     resolution=Resolution.AUTO_ACCEPTED, final_label="approve", decided_at=timezone.now())
    reopened = case_reopen(actor=make_user("admin"), case=case, reason="Complaint.")
    assert reopened.status == CaseStatus.ESCALATED and reopened.review_round == 2


def test_reopen_needs_a_reason_and_a_decided_case() -> None:
    case = make_case(make_point())
    officer = make_user("compliance_officer")
    with pytest.raises(ValidationError) as exc:
        case_reopen(actor=officer, case=case, reason=" ")
    assert "reason" in exc.value.message_dict
    with pytest.raises(Conflict) as conflict:
        case_reopen(actor=officer, case=case, reason="Appeal.")
    assert conflict.value.code_name == "not_decided"
    assert not AuditEvent.objects.filter(action="case.reopened").exists()


# --- Through the real ingestion -------------------------------------------------------------------


def test_an_ingested_case_is_claimed_decided_and_its_webhook_holds_the_decision() -> None:
    from tests.reviews.factories import ingest, make_system_with_point

    make_system_with_point(confidence_below=0.8, sla_seconds=600)
    integration = make_user("integration", systems=["credit-scoring"])
    case = ingest(integration, external_id="app-77", label="approve", confidence=0.5,
                  callback_url="https://example.org/hook")
    assert case.status == CaseStatus.QUEUED
    reviewer = make_reviewer()
    decided = decide(case, reviewer, outcome="override", label="reject", rationale="Income unverified.")
    assert decided.final_label == "reject"
    body = json.loads(WebhookDelivery.objects.get(case=case).body)
    assert body["case"]["status"] == "decided"
    assert [(d["reviewer"], d["outcome"], d["label"]) for d in body["case"]["decisions"]] == [
        (reviewer.username, "override", "reject")
    ]
