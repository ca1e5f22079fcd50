"""Demo traffic: a month up to now, written in bulk, consistent with what the services would write."""

from __future__ import annotations

import datetime as dt
import time
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import verify_chain
from audit.services import seal_pending
from compliance.models import FundamentalRightsAssessment, Obligation
from fairness.models import AuditStatus, BiasAudit
from incidents.models import Incident
from quality.models import CalibrationSession, GoldItem
from reviews.demo_content import CHAT_POINT, DOCUMENT_POINT
from reviews.models import AISystem, Case, CaseStatus, Decision, ReviewerProfile, TrainingRecord
from reviews.services.decisions import decision_record
from reviews.services.queue import claim_next

pytestmark = pytest.mark.django_db

RICH_POINTS = (DOCUMENT_POINT, CHAT_POINT)


def _load(cases: int, **extra: str) -> str:
    out = StringIO()
    call_command("demo_data", "--cases", str(cases), *(f"--{k.replace('_', '-')}={v}" for k, v in extra.items()),
                 stdout=out)
    return out.getvalue()


def test_demo_traffic_writes_a_consistent_month_up_to_now() -> None:
    started = time.monotonic()
    output = _load(300)
    elapsed = time.monotonic() - started
    print(f"demo_data --cases 300: {elapsed:.1f}s")  # measured, not asserted (docs/PERFORMANCE.md)
    assert "Demo traffic (30 days up to now" in output and ": 300 cases" in output

    # The month of traffic; the rich-content demo cases (reviews.demo_content) come on top of it.
    cases = Case.objects.all().exclude(is_gold=True).exclude(intervention_point__slug__in=RICH_POINTS)
    assert cases.count() == 300
    now = timezone.now()
    # Spread over the month, none in the future.
    assert len({case.received_at.date() for case in cases}) >= 25
    assert min(case.received_at for case in cases) < now - dt.timedelta(days=25)
    assert max(case.received_at for case in cases) <= now
    assert not Decision.objects.filter(decided_at__gt=now).exists()
    # Every system got traffic, some auto-accepted, some reviewed, some adjudicated.
    per_system = dict(cases.values_list("system__slug").annotate(n=Count("id")))
    assert set(per_system) == {"credit-scoring", "content-moderation", "remote-biometric-id"}
    assert cases.filter(status=CaseStatus.AUTO_ACCEPTED).exists()
    assert cases.filter(status=CaseStatus.DECIDED, resolution="reviewed").exists()
    assert Decision.objects.filter(time_spent_ms__gt=0).exists()
    # Four-eyes held for remote biometric identification; adjudications were never by a case's earlier decider.
    for case in cases.filter(system__slug="remote-biometric-id", resolution="reviewed"):
        assert case.decisions.values("reviewer").distinct().count() >= 2
    for decision in Decision.objects.filter(is_adjudication=True):
        earlier = decision.case.decisions.exclude(pk=decision.pk).values_list("reviewer_id", flat=True)
        assert decision.reviewer_id not in set(earlier)
        assert ReviewerProfile.objects.get(user_id=decision.reviewer_id).adjudicator
    # Ground truth for part of the settled credit and moderation cases only.
    with_truth = cases.exclude(true_label=None)
    assert 0 < with_truth.count() < cases.count()
    assert not with_truth.filter(system__slug="remote-biometric-id").exists()
    assert all(case.subject.get("gender") for case in cases.filter(system__slug="credit-scoring"))

    # Every case has its creation history row, every change its "~" row; every decision its "+" row.
    assert Case.history.filter(history_type="+").count() == Case.objects.count()
    closed_by_people = cases.filter(status=CaseStatus.DECIDED).count()
    assert Case.history.filter(history_type="~", status=CaseStatus.DECIDED).count() >= closed_by_people
    assert Decision.history.filter(history_type="+").count() == Decision.objects.count()
    first = cases.order_by("id").first()
    assert first.history.earliest().history_date == first.received_at
    # Every step left its audit event, and the chain verifies.
    seal_pending()
    assert AuditEvent.objects.filter(action="case.created", case_id__in=cases.values("id")).count() == 300
    assert AuditEvent.objects.filter(action="decision.recorded").count() == Decision.objects.count()
    assert AuditEvent.objects.filter(action="case.outcome_reported").count() == with_truth.count()
    assert AuditEvent.objects.filter(action="case.decided").count() >= closed_by_people
    decided = AuditEvent.objects.filter(action="case.decided").order_by("id").first()
    assert decided.at == Case.objects.get(pk=decided.case_id).decided_at
    result = verify_chain()
    assert result.ok, result.problem


def test_reviewers_find_work_right_after_the_start_and_adjudicators_find_escalations() -> None:
    _load(300)
    now = timezone.now()
    waiting = Case.objects.filter(status=CaseStatus.QUEUED, is_gold=False)
    assert waiting.exists()
    # No waiting case's SLA runs out before beat's first sweeps (the old demo's were long expired).
    assert not waiting.filter(sla_deadline__lt=now + dt.timedelta(minutes=5)).exists()
    for username in ("rev1", "rev2", "rev3"):
        case = claim_next(reviewer=User.objects.get(username=username))
        assert case is not None, username
        assert case.status == CaseStatus.CLAIMED
    # rev1 finishes real (non-gold) work at once.
    rev1 = User.objects.get(username="rev1")
    case = Case.objects.get(claimed_by=rev1, status=CaseStatus.CLAIMED)
    # A case served blind (or without a prediction) is answered with a label; otherwise approved.
    answered_by_label = case.blind or not case.prediction_label
    decision_record(reviewer=rev1, case=case, outcome=None if answered_by_label else "approve",
                    label=case.system.labels[0] if answered_by_label else None, rationale="")

    adjudicators = ReviewerProfile.objects.filter(adjudicator=True)
    assert adjudicators.count() >= 2
    escalated = Case.objects.filter(status=CaseStatus.ESCALATED)
    assert escalated.exists()
    for case in escalated:
        (first,) = case.decisions.all()
        assert first.outcome == "escalate" and first.rationale
    adjudicator = User.objects.get(username="rev4")
    handed = claim_next(reviewer=adjudicator)
    assert handed is not None


def test_the_demo_shows_the_governance_side() -> None:
    _load(300)
    credit = AISystem.objects.get(slug="credit-scoring")
    assert GoldItem.objects.count() >= 3
    assert CalibrationSession.objects.exists()
    assert TrainingRecord.objects.filter(reviewer__user__username="rev6",
                                         expires_at__lt=timezone.localdate()).exists()
    assert TrainingRecord.objects.filter(reviewer__user__username="rev1",
                                         expires_at__gt=timezone.localdate()).exists()
    assert credit.risk_tier == "high"
    assert Obligation.objects.filter(system=credit).count() > 1
    met = Obligation.objects.filter(system=credit, status="met")
    assert met.exists() and met.first().evidence.exists()
    assert FundamentalRightsAssessment.objects.filter(system=credit).exists()
    assert Incident.objects.filter(system=credit).exists()
    audit = BiasAudit.objects.get(system=credit)
    assert audit.status == AuditStatus.DONE and audit.cases_counted > 0
    for action in ("gold.created", "reviewer.training_recorded", "system.classified", "fria.saved", "incident.created",
                   "bias_audit.completed"):
        assert AuditEvent.objects.filter(action=action).exists(), action
    seal_pending()
    assert verify_chain().ok


def test_the_demo_has_rich_content_cases_waiting_for_reviewers() -> None:
    from django.test import Client

    _load(50)
    document = Case.objects.get(external_id="doc-0001")
    assert document.status == CaseStatus.QUEUED and document.intervention_point.display
    assert document.input["id_document"].startswith("data:image/png;base64,")
    assert document.input["payslip"].startswith("data:application/pdf;base64,")
    assert document.explanation  # reason codes and attributions shown beside the AI suggestion
    chats = Case.objects.filter(external_id__startswith="chat-", status=CaseStatus.QUEUED)
    assert chats.count() == 2
    # rev1 claims it (the only case of that point) and the workbench renders the image and the chart.
    rev1 = User.objects.get(username="rev1")
    case = claim_next(reviewer=rev1, point=document.intervention_point)
    assert case.pk == document.pk
    client = Client()
    client.force_login(rev1)
    page = client.get(f"/review/case/{case.pk}/").content.decode()
    assert "Identity document" in page and "data:image/png;base64," in page and "Payslip" in page


def test_the_printed_summary_names_the_url_used_and_the_password() -> None:
    output = _load(0, base_url="http://127.0.0.1:8123")
    assert "Open http://127.0.0.1:8123" in output
    assert "http://127.0.0.1:8000" not in output
    assert "password is 'hitl-demo-pass'" in output


def test_demo_traffic_is_added_once() -> None:
    _load(30)
    output = _load(30)
    assert "no demo traffic added" in output
    assert Case.objects.filter(is_gold=False).exclude(intervention_point__slug__in=RICH_POINTS).count() == 30
    assert Case.objects.filter(intervention_point__slug__in=RICH_POINTS).count() == 3  # added once too
