"""Demo traffic: a month replayed through the real services on a simulated clock."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import verify_chain
from audit.services import seal_pending
from reviews.models import Case, CaseStatus, Decision

pytestmark = pytest.mark.django_db


def test_demo_traffic_replays_cases_reviews_and_ground_truth_through_the_services() -> None:
    out = StringIO()
    call_command("demo_data", "--cases", "120", stdout=out)
    assert "Demo traffic: 120 cases" in out.getvalue()

    cases = Case.objects.all()
    assert cases.count() == 120
    # Spread over the month, not stamped all at once.
    days = {case.received_at.date() for case in cases}
    assert len(days) >= 25
    assert min(case.received_at for case in cases) < timezone.now() - dt.timedelta(days=25)
    # Every system got traffic, some auto-accepted, some reviewed by people, a few left to work on.
    per_system = dict(cases.values_list("system__slug").annotate(n=Count("id")))
    assert set(per_system) == {"credit-scoring", "content-moderation", "remote-biometric-id"}
    assert cases.filter(status=CaseStatus.AUTO_ACCEPTED).exists()
    assert cases.filter(status=CaseStatus.DECIDED, resolution="reviewed").exists()
    assert Decision.objects.filter(time_spent_ms__gt=0).exists()
    # Four-eyes held for remote biometric identification.
    for case in cases.filter(system__slug="remote-biometric-id", resolution="reviewed"):
        assert case.decisions.values("reviewer").distinct().count() >= 2
    # Ground truth arrived for part of the settled credit and moderation cases only.
    with_truth = cases.exclude(true_label=None)
    assert 0 < with_truth.count() < cases.count()
    assert not with_truth.filter(system__slug="remote-biometric-id").exists()
    # Subject attributes are there for the fairness audits.
    assert all(case.subject.get("gender") for case in cases.filter(system__slug="credit-scoring"))
    # Every step left its audit event, and the chain verifies.
    seal_pending()
    assert AuditEvent.objects.filter(action="case.created").count() == 120
    assert AuditEvent.objects.filter(action="decision.recorded").count() == Decision.objects.count()
    assert AuditEvent.objects.filter(action="case.outcome_reported").count() == with_truth.count()
    assert verify_chain().ok


def test_demo_traffic_is_added_once() -> None:
    call_command("demo_data", "--cases", "30", stdout=StringIO())
    out = StringIO()
    call_command("demo_data", "--cases", "30", stdout=out)
    assert "no demo traffic added" in out.getvalue()
    assert Case.objects.count() == 30
