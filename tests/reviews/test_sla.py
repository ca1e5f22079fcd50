"""SLA breaches: escalate / accept_ai / fail_closed, their restrictions, audit, idempotency."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from reviews.models import AISystem, Case, CaseStatus, Resolution, WebhookDelivery
from reviews.services.decisions import case_reopen, decision_record
from reviews.services.queue import claim_next, escalated_case_ids, expire_leases
from reviews.services.sla import SLA_CHUNK, apply_sla_breaches
from reviews.tasks_queue import apply_sla_breaches_task, expire_leases_task
from tests.reviews.queue_helpers import (
    case_fields,
    expire_claim,
    make_case,
    make_point,
    make_reviewer,
    make_system,
    make_user,
)

pytestmark = pytest.mark.django_db


def overdue(point, **kwargs) -> Case:
    return make_case(point, sla_deadline=timezone.now() - timedelta(seconds=1), **kwargs)


def data_of(action: str, case: Case) -> dict:
    return json.loads(AuditEvent.objects.get(action=action, case_id=case.pk).payload)


def test_escalate_rule() -> None:
    point = make_point(sla_seconds=60, on_sla_breach="escalate")
    late = overdue(point)
    in_time = make_case(point)
    assert apply_sla_breaches() == 1
    late.refresh_from_db()
    in_time.refresh_from_db()
    assert late.status == CaseStatus.ESCALATED and late.sla_breached
    assert in_time.status == CaseStatus.QUEUED and not in_time.sla_breached
    breach = data_of("case.sla_breached", late)
    assert breach["data"]["applied"] == "escalate"
    assert data_of("case.escalated", late)["data"]["cause"] == "sla_breach"
    assert AuditEvent.objects.get(action="case.sla_breached", case_id=late.pk).actor_type == "system"
    assert late.history.first().history_user.username == "hitl-system"
    # The derived status agrees: a released or expired claim gives it back escalated.
    assert escalated_case_ids([late]) == {late.pk}
    assert apply_sla_breaches() == 0  # idempotent


def test_accept_ai_rule_decides_with_the_ai_label_and_enqueues_webhook() -> None:
    integration = make_user("integration")
    point = make_point(sla_seconds=60, on_sla_breach="accept_ai")
    case = overdue(point, label="reject", callback_url="https://example.org/hook", submitted_by=integration)
    assert apply_sla_breaches() == 1
    case.refresh_from_db()
    assert case.status == CaseStatus.DECIDED and case.resolution == Resolution.SLA_ACCEPT_AI
    assert case.final_label == "reject" and case.decided_at is not None
    assert data_of("case.decided", case)["data"]["resolution"] == "sla_accept_ai"
    assert json.loads(WebhookDelivery.objects.get(case=case).body)["event"] == "case.decided"


def test_fail_closed_rule_decides_without_a_label() -> None:
    point = make_point(sla_seconds=60, on_sla_breach="fail_closed")
    case = overdue(point)
    apply_sla_breaches()
    case.refresh_from_db()
    assert case.status == CaseStatus.DECIDED and case.resolution == Resolution.SLA_FAIL_CLOSED
    assert case.final_label is None
    assert data_of("case.sla_breached", case)["data"]["applied"] == "fail_closed"
    assert AuditEvent.objects.filter(action="case.decided", case_id=case.pk).exists()


def test_accept_ai_never_while_halted() -> None:
    point = make_point(sla_seconds=60, on_sla_breach="accept_ai")
    AISystem.objects.filter(pk=point.system_id).update(status="halted")
    case = overdue(point)
    apply_sla_breaches()
    case.refresh_from_db()
    assert case.status == CaseStatus.ESCALATED and case.final_label is None
    assert data_of("case.sla_breached", case)["data"]["cause"] == "system_halted"


def test_accept_ai_never_for_remote_biometric_identification() -> None:
    system = make_system("face-match", annex_iii_area="1a", labels=["match", "no_match"])
    point = make_point(system, "id-check", on_sla_breach="escalate", sla_seconds=60)
    # The point service refuses accept_ai for 1(a); a legacy row must still never auto-accept.
    type(point).objects.filter(pk=point.pk).update(on_sla_breach="accept_ai")
    case = overdue(point, label="match")
    apply_sla_breaches()
    case.refresh_from_db()
    assert case.status == CaseStatus.ESCALATED
    assert data_of("case.sla_breached", case)["data"]["cause"] == "remote_biometric"


def test_accept_ai_never_without_an_ai_label() -> None:
    point = make_point(slug="labeling", stage="labeling", sla_seconds=60, on_sla_breach="accept_ai")
    case = overdue(point, label=None)
    apply_sla_breaches()
    case.refresh_from_db()
    assert case.status == CaseStatus.ESCALATED
    assert data_of("case.sla_breached", case)["data"]["cause"] == "no_ai_label"


def test_live_claim_is_left_to_its_reviewer_until_the_lease_is_gone() -> None:
    point = make_point(sla_seconds=60, on_sla_breach="fail_closed")
    case = overdue(point)
    reviewer = make_reviewer()
    claim_next(reviewer=reviewer)
    assert apply_sla_breaches() == 0
    case.refresh_from_db()
    assert case.status == CaseStatus.CLAIMED and not case.sla_breached
    expire_claim(case)
    assert expire_leases() == 1
    assert apply_sla_breaches() == 1
    case.refresh_from_db()
    assert case.resolution == Resolution.SLA_FAIL_CLOSED


def test_reopened_case_is_never_closed_by_the_clock() -> None:
    point = make_point(sla_seconds=60, on_sla_breach="accept_ai")
    case = make_case(point)
    adjudicator = make_reviewer(adjudicator=True)
    claim_next(reviewer=adjudicator)
    decision_record(reviewer=adjudicator, case=case, outcome="approve", label=None, rationale="")
    case_reopen(actor=make_user("compliance_officer"), case=case, reason="Appeal.")
    assert apply_sla_breaches() == 0  # a fresh deadline
    Case.objects.filter(pk=case.pk).update(sla_deadline=timezone.now() - timedelta(seconds=1))
    assert apply_sla_breaches() == 1
    case.refresh_from_db()
    assert case.status == CaseStatus.ESCALATED and case.sla_breached
    assert data_of("case.sla_breached", case)["data"]["cause"] == "reopened"
    assert not AuditEvent.objects.filter(action="case.escalated", case_id=case.pk).exists()


def test_chunks_cover_every_overdue_case() -> None:
    point = make_point(sla_seconds=60, on_sla_breach="fail_closed")
    count = SLA_CHUNK + 7
    Case.objects.bulk_create(
        [Case(**case_fields(point, sla_deadline=timezone.now() - timedelta(minutes=1))) for _ in range(count)]
    )
    assert apply_sla_breaches() == count
    assert Case.objects.filter(resolution=Resolution.SLA_FAIL_CLOSED).count() == count
    assert AuditEvent.objects.filter(action="case.sla_breached").count() == count


def test_tasks_run_the_services() -> None:
    point = make_point(sla_seconds=60, on_sla_breach="escalate")
    held = make_case(point)
    assert claim_next(reviewer=make_reviewer()).pk == held.pk
    expire_claim(held)
    late = overdue(point)
    assert expire_leases_task.name == "reviews.expire_leases"
    assert apply_sla_breaches_task.name == "reviews.apply_sla_breaches"
    assert expire_leases_task.delay().get() == 1
    assert apply_sla_breaches_task.delay().get() == 1
    late.refresh_from_db()
    assert late.status == CaseStatus.ESCALATED
