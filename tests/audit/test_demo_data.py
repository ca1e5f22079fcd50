"""``manage.py demo_data``: every role, three systems, through the services; safe to run twice."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from audit.selectors import verify_chain
from audit.services import seal_pending
from hitl_portal.roles import user_role
from reviews.management.commands.demo_data import DEMO_PASSWORD, DEMO_URL
from reviews.models import AISystem, IntegrationProfile, InterventionPoint, ReviewerProfile

pytestmark = pytest.mark.django_db

ROLES = {
    "admin": "admin",
    "officer": "compliance_officer",
    "manager": "manager",
    "rev1": "reviewer",
    "rev2": "reviewer",
    "rev3": "reviewer",
    "rev4": "reviewer",
    "rev5": "reviewer",
    "rev6": "reviewer",
    "integration": "integration",
}


def _run(*args: str) -> str:
    out = StringIO()
    # Traffic has its own test (tests/reviews/test_demo_traffic.py); here only people and systems.
    call_command("demo_data", "--cases", "0", *args, stdout=out)
    return out.getvalue()


def test_demo_data_creates_people_and_systems_and_is_idempotent() -> None:
    first = _run()
    seal_pending()
    events_after_first = AuditEvent.objects.count()
    counts = (User.objects.count(), AISystem.objects.count(), InterventionPoint.objects.count())

    second = _run()
    seal_pending()
    assert (User.objects.count(), AISystem.objects.count(), InterventionPoint.objects.count()) == counts
    assert AuditEvent.objects.count() == events_after_first  # the second run changed nothing
    assert "(unchanged)" in second

    for username, role in ROLES.items():
        user = User.objects.get(username=username)
        assert user_role(user) == role
        assert user.check_password(DEMO_PASSWORD)
        assert username in first
    assert DEMO_PASSWORD in first
    assert DEMO_URL in first
    assert User.objects.get(username="admin").is_superuser
    assert ReviewerProfile.objects.get(user__username="rev4").adjudicator is True
    assert ReviewerProfile.objects.get(user__username="rev5").adjudicator is True
    assert not ReviewerProfile.objects.get(user__username="rev1").adjudicator
    integration = IntegrationProfile.objects.get(user__username="integration")
    assert sorted(integration.systems.values_list("slug", flat=True)) == [
        "content-moderation",
        "credit-scoring",
        "remote-biometric-id",
    ]

    credit = AISystem.objects.get(slug="credit-scoring")
    assert (credit.risk_tier, credit.annex_iii_area, credit.labels, credit.positive_label) == (
        "high",
        "5b",
        ["approve", "reject"],
        "approve",
    )
    assert credit.protected_attributes == ["gender", "age_band"]
    loan = InterventionPoint.objects.get(system=credit, slug="loan-review")
    assert (loan.stage, loan.confidence_below, loan.always_review_labels) == ("validation", 0.75, ["reject"])
    assert loan.high_stakes == [{"field": "amount", "op": "gt", "value": 10000}]
    assert (loan.random_sample_rate, loan.sla_seconds, loan.on_sla_breach) == (0.05, 3600, "escalate")

    moderation = AISystem.objects.get(slug="content-moderation")
    assert (moderation.risk_tier, moderation.labels) == ("limited", ["allow", "remove", "age_restrict"])
    flagged = InterventionPoint.objects.get(system=moderation, slug="flagged-content")
    assert (flagged.confidence_below, flagged.blind_review_rate, flagged.sla_seconds, flagged.on_sla_breach) == (
        0.6,
        0.1,
        900,
        "accept_ai",
    )

    biometric = AISystem.objects.get(slug="remote-biometric-id")
    assert (biometric.risk_tier, biometric.annex_iii_area, biometric.labels) == ("high", "1a", ["match", "no_match"])
    match = InterventionPoint.objects.get(system=biometric, slug="match-verification")
    assert (match.reviewers_required, match.always_review_labels, match.sla_seconds, match.on_sla_breach) == (
        2,
        ["match"],
        600,
        "fail_closed",
    )

    # Made through the services: each creation has its audit event, by the admin.
    admin = User.objects.get(username="admin")
    assert AuditEvent.objects.filter(action="system.created", actor_id=admin.pk).count() == 3
    assert AuditEvent.objects.filter(action="intervention_point.created").count() == 3
    assert AuditEvent.objects.filter(action="user.created").count() == len(ROLES)
    assert AuditEvent.objects.filter(action="reviewer.updated", object_label="rev4").exists()
    assert AuditEvent.objects.filter(action="reviewer.updated", object_label="rev5").exists()
    assert credit.history.first().history_user == admin
    result = verify_chain()
    assert result.ok, result.problem
    assert result.events == events_after_first


def test_demo_data_password_option() -> None:
    output = _run("--password", "another-demo-pass")
    assert "another-demo-pass" in output
    assert User.objects.get(username="officer").check_password("another-demo-pass")
    assert User.objects.get(username="admin").check_password("another-demo-pass")


def test_demo_data_refuses_a_weak_password() -> None:
    with pytest.raises(CommandError, match="--password"):
        _run("--password", "123")
    assert not AISystem.objects.exists()  # one transaction: nothing half-built
    assert not User.objects.filter(username="admin").exists()


def test_demo_data_refuses_production(settings: object) -> None:
    settings.PRODUCTION = True  # type: ignore[attr-defined]
    with pytest.raises(CommandError, match="production"):
        _run()
    assert not User.objects.filter(username="admin").exists()
