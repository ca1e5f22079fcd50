"""The admin as oversight console: a read-only audit trail, and state changes only through services."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib import admin as django_admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.test import RequestFactory
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import seal_pending
from hitl_portal.models import Heartbeat
from reviews.models import AISystem, InterventionPoint, ReviewerProfile, SystemStatus
from reviews.services.systems import intervention_point_create
from tests.audit.factories import make_system, write_events

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:reviews_aisystem_changelist"


@pytest.fixture
def boss(make_user: Any) -> Any:
    return make_user("admin", "boss")


@pytest.fixture
def console(client: Any, boss: Any) -> Any:
    client.force_login(boss)
    return client


def _messages(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- Audit events: read-only for everyone --------------------------------------------------


def test_audit_event_admin_offers_no_add_change_or_delete(boss: Any) -> None:
    (event,) = write_events(1)
    request = RequestFactory().get("/admin/")
    request.user = boss
    model_admin = django_admin.site._registry[AuditEvent]
    assert boss.is_superuser
    assert model_admin.has_view_permission(request, event)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, event)
    assert not model_admin.has_delete_permission(request, event)
    assert "delete_selected" not in model_admin.get_actions(request)


def test_audit_event_pages_are_read_only_over_http(console: Any) -> None:
    write_events(2, reason="rotated the model")
    seal_pending()
    event = AuditEvent.objects.get(seq=1)
    changelist = console.get(reverse("admin:audit_auditevent_changelist"))
    assert changelist.status_code == 200
    assert b"rotated the model" in changelist.content
    assert b"Verify the chain" in changelist.content

    detail_url = reverse("admin:audit_auditevent_change", args=[event.pk])
    detail = console.get(detail_url)
    assert detail.status_code == 200
    assert b"<pre" in detail.content  # the payload, pretty-printed
    assert json.dumps("漢字")[1:-1].encode() not in detail.content  # shown as text, not escaped JSON
    assert "漢字".encode() in detail.content

    assert console.post(detail_url, {"reason": "changed"}).status_code == 403
    assert console.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert console.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.reason == "rotated the model"
    assert AuditEvent.objects.count() == 2


def test_audit_event_changelist_filters_and_search(console: Any) -> None:
    write_events(2, action="case.created", reason="alpha")
    write_events(1, action="system.halted", reason="beta")
    seal_pending()
    url = reverse("admin:audit_auditevent_changelist")
    family = console.get(url, {"action": "case.*"})
    assert family.status_code == 200
    assert b"alpha" in family.content and b"beta" not in family.content
    found = console.get(url, {"q": "beta"})
    assert b"beta" in found.content and b"alpha" not in found.content
    assert console.get(url, {"sealed": "no"}).status_code == 200


def test_admin_verify_view_reports_the_chain(console: Any) -> None:
    write_events(3)
    seal_pending()
    response = console.get(reverse("admin:audit_auditevent_verify"), follow=True)
    assert response.status_code == 200
    assert any("verifies: 3 events" in message for message in _messages(response))


# --- Halt and resume ------------------------------------------------------------------------


def test_halt_action_asks_for_a_reason_then_halts_through_the_service(console: Any, boss: Any) -> None:
    system = make_system(actor=boss)
    url = reverse(CHANGELIST)

    confirm = console.post(url, {"action": "halt_systems", ACTION_CHECKBOX_NAME: [system.pk]})
    assert confirm.status_code == 200
    assert b"Halt selected systems" in confirm.content
    assert b'name="reason"' in confirm.content
    assert system.name.encode() in confirm.content
    system.refresh_from_db()
    assert system.status == SystemStatus.ACTIVE  # nothing happens before the confirmation

    empty = console.post(
        url, {"action": "halt_systems", ACTION_CHECKBOX_NAME: [system.pk], "post": "yes", "reason": "   "}
    )
    assert empty.status_code == 200
    assert b"This field is required" in empty.content
    assert not AuditEvent.objects.filter(action="system.halted").exists()

    done = console.post(
        url,
        {"action": "halt_systems", ACTION_CHECKBOX_NAME: [system.pk], "post": "yes", "reason": "Drift detected"},
        follow=True,
    )
    assert done.status_code == 200
    assert f"Halted: {system.name}." in _messages(done)
    system.refresh_from_db()
    assert system.status == SystemStatus.HALTED
    assert system.status_reason == "Drift detected"
    event = AuditEvent.objects.get(action="system.halted")
    assert (event.actor_id, event.actor_name, event.actor_type) == (boss.pk, "boss", "user")
    assert event.reason == "Drift detected"
    assert event.system_id == system.pk
    latest = system.history.order_by("-history_id").first()
    assert latest.status == SystemStatus.HALTED
    assert latest.history_user == boss


def test_resume_action_and_blocked_systems(console: Any, boss: Any) -> None:
    halted = make_system("credit-scoring", actor=boss)
    blocked = make_system("social-scoring", actor=boss, declared_tier="prohibited", annex_iii_area="")
    assert blocked.status == SystemStatus.BLOCKED
    url = reverse(CHANGELIST)
    console.post(
        url, {"action": "halt_systems", ACTION_CHECKBOX_NAME: [halted.pk], "post": "yes", "reason": "Incident 12"}
    )
    done = console.post(
        url,
        {
            "action": "resume_systems",
            ACTION_CHECKBOX_NAME: [halted.pk, blocked.pk],
            "post": "yes",
            "reason": "Fixed and re-validated",
        },
        follow=True,
    )
    messages = _messages(done)
    assert f"Resumed: {halted.name}." in messages
    assert any(message.startswith(f"{blocked.name}:") for message in messages)  # refused, and said so
    halted.refresh_from_db()
    blocked.refresh_from_db()
    assert halted.status == SystemStatus.ACTIVE
    assert blocked.status == SystemStatus.BLOCKED
    resumed = AuditEvent.objects.get(action="system.resumed")
    assert (resumed.actor_id, resumed.reason, resumed.system_id) == (boss.pk, "Fixed and re-validated", halted.pk)


# --- Change forms go through the services ---------------------------------------------------


def _system_form(system: AISystem, **overrides: Any) -> dict[str, Any]:
    data = {
        "name": system.name,
        "purpose": system.purpose,
        "provider": system.provider,
        "role": system.role,
        "sector": system.sector,
        "declared_tier": system.declared_tier,
        "annex_iii_area": system.annex_iii_area,
        "labels": json.dumps(system.labels),
        "positive_label": system.positive_label,
        "non_match_label": system.non_match_label,
        "required_trainings": json.dumps(system.required_trainings),
        "protected_attributes": json.dumps(system.protected_attributes),
        "bias_thresholds": json.dumps(system.bias_thresholds),
        "retention_days": system.retention_days,
        "kpi_targets": json.dumps(system.kpi_targets),
        "change_reason": "",
        "intervention_points-TOTAL_FORMS": "0",
        "intervention_points-INITIAL_FORMS": "0",
        "intervention_points-MIN_NUM_FORMS": "0",
        "intervention_points-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def test_system_change_form_saves_through_system_update(console: Any, boss: Any) -> None:
    system = make_system(actor=boss)
    url = reverse("admin:reviews_aisystem_change", args=[system.pk])
    assert console.get(url).status_code == 200
    response = console.post(url, _system_form(system, name="Credit scoring v2", change_reason="Renamed by vendor"))
    assert response.status_code == 302, response.content
    system.refresh_from_db()
    assert system.name == "Credit scoring v2"
    (event,) = AuditEvent.objects.filter(action="system.updated")  # one: the validation dry run left nothing
    assert event.reason == "Renamed by vendor"
    assert event.actor_id == boss.pk
    assert json.loads(event.payload) == {"before": {"name": "Credit scoring"}, "after": {"name": "Credit scoring v2"}}
    assert system.history.order_by("-history_id").first().history_user == boss


def test_system_change_form_shows_a_service_refusal_on_the_form(console: Any, boss: Any) -> None:
    system = make_system(actor=boss)
    before = AuditEvent.objects.count()
    url = reverse("admin:reviews_aisystem_change", args=[system.pk])
    response = console.post(url, _system_form(system, name="Renamed", positive_label="maybe"))
    assert response.status_code == 200
    assert b"must be one of the labels" in response.content
    system.refresh_from_db()
    assert system.name == "Credit scoring"
    assert AuditEvent.objects.count() == before


def test_system_status_is_not_editable_in_the_form(console: Any, boss: Any) -> None:
    system = make_system(actor=boss)
    url = reverse("admin:reviews_aisystem_change", args=[system.pk])
    console.post(url, _system_form(system, status="halted", slug="renamed-slug"))
    system.refresh_from_db()
    assert (system.status, system.slug) == (SystemStatus.ACTIVE, "credit-scoring")
    assert not AuditEvent.objects.filter(action__in=["system.halted", "system.updated"]).exists()


def test_system_add_form_creates_through_system_create(console: Any, boss: Any) -> None:
    data = _system_form(
        AISystem(name="Fraud detection", labels=["fraud", "ok"], declared_tier="high", annex_iii_area="5b"),
        slug="fraud-detection",
    )
    response = console.post(reverse("admin:reviews_aisystem_add"), data)
    assert response.status_code == 302, response.content
    system = AISystem.objects.get(slug="fraud-detection")
    (event,) = AuditEvent.objects.filter(action="system.created", object_id=str(system.pk))
    assert event.actor_id == boss.pk
    assert AISystem.objects.filter(slug="fraud-detection").count() == 1


def _point_form(point: InterventionPoint, **overrides: Any) -> dict[str, Any]:
    data = {
        "name": point.name,
        "stage": point.stage,
        "confidence_below": "" if point.confidence_below is None else point.confidence_below,
        "always_review_labels": json.dumps(point.always_review_labels),
        "high_stakes": json.dumps(point.high_stakes),
        "random_sample_rate": point.random_sample_rate,
        "reviewers_required": point.reviewers_required,
        "sla_seconds": "" if point.sla_seconds is None else point.sla_seconds,
        "on_sla_breach": point.on_sla_breach,
        "blind_review_rate": point.blind_review_rate,
        "gold_rate": point.gold_rate,
        "guidelines": point.guidelines,
        "change_reason": "",
    }
    data.update(overrides)
    return data


def test_intervention_point_change_bumps_the_version_through_the_service(console: Any, boss: Any) -> None:
    system = make_system("remote-biometric-id", actor=boss, labels=["match", "no_match"], annex_iii_area="1a")
    point = intervention_point_create(
        actor=boss,
        system=system,
        slug="match-verification",
        name="Match verification",
        sla_seconds=600,
        on_sla_breach="fail_closed",
    )
    url = reverse("admin:reviews_interventionpoint_change", args=[point.pk])

    refused = console.post(url, _point_form(point, on_sla_breach="accept_ai"))
    assert refused.status_code == 200
    assert b"accept_ai is not allowed" in refused.content
    point.refresh_from_db()
    assert (point.on_sla_breach, point.version) == ("fail_closed", 1)
    assert not AuditEvent.objects.filter(action="intervention_point.updated").exists()

    response = console.post(url, _point_form(point, sla_seconds=300, change_reason="Faster escalation"))
    assert response.status_code == 302, response.content
    point.refresh_from_db()
    assert (point.sla_seconds, point.version) == (300, 2)
    (event,) = AuditEvent.objects.filter(action="intervention_point.updated")
    assert event.reason == "Faster escalation"
    assert json.loads(event.payload)["after"] == {"sla_seconds": 300, "version": 2}


def test_history_can_be_viewed_but_not_reverted(console: Any, boss: Any) -> None:
    system = make_system(actor=boss)
    record = system.history.first()
    assert console.get(reverse("admin:reviews_aisystem_history", args=[system.pk])).status_code == 200
    url = reverse("admin:reviews_aisystem_simple_history", args=[system.pk, record.history_id])
    assert console.get(url).status_code == 200
    assert console.post(url, _system_form(system, name="Reverted")).status_code == 403
    system.refresh_from_db()
    assert system.name == "Credit scoring"


# --- Reviewers ------------------------------------------------------------------------------


def test_suspend_and_reinstate_reviewer_actions(console: Any, boss: Any, make_user: Any) -> None:
    make_system(actor=boss)
    reviewer = make_user("reviewer", "rev9", systems=["credit-scoring"])
    profile = ReviewerProfile.objects.get(user=reviewer)
    url = reverse("admin:reviews_reviewerprofile_changelist")
    confirm = console.post(url, {"action": "suspend_reviewers", ACTION_CHECKBOX_NAME: [profile.pk]})
    assert confirm.status_code == 200 and b'name="reason"' in confirm.content
    console.post(
        url,
        {"action": "suspend_reviewers", ACTION_CHECKBOX_NAME: [profile.pk], "post": "yes", "reason": "Gold accuracy"},
    )
    profile.refresh_from_db()
    assert profile.status == "suspended"
    suspended = AuditEvent.objects.get(action="reviewer.suspended")
    assert (suspended.actor_id, suspended.reason, suspended.object_label) == (boss.pk, "Gold accuracy", "rev9")

    console.post(
        url,
        {"action": "reinstate_reviewers", ACTION_CHECKBOX_NAME: [profile.pk], "post": "yes", "reason": "Retrained"},
    )
    profile.refresh_from_db()
    assert profile.status == "active"
    assert AuditEvent.objects.get(action="reviewer.reinstated").reason == "Retrained"


def test_reviewer_change_form_needs_a_reason_and_uses_the_service(console: Any, boss: Any, make_user: Any) -> None:
    system = make_system(actor=boss)
    reviewer = make_user("reviewer", "rev8", systems=["credit-scoring"])
    profile = ReviewerProfile.objects.get(user=reviewer)
    url = reverse("admin:reviews_reviewerprofile_change", args=[profile.pk])
    data = {
        "adjudicator": "on",
        "qualifications": [system.pk],
        "change_reason": "",
        "training_records-TOTAL_FORMS": "0",
        "training_records-INITIAL_FORMS": "0",
    }
    refused = console.post(url, data)
    assert refused.status_code == 200
    assert b"A reason is required" in refused.content
    profile.refresh_from_db()
    assert profile.adjudicator is False

    response = console.post(url, {**data, "change_reason": "Senior reviewer"})
    assert response.status_code == 302, response.content
    profile.refresh_from_db()
    assert profile.adjudicator is True
    event = AuditEvent.objects.get(action="reviewer.updated")
    assert event.reason == "Senior reviewer"
    assert json.loads(event.payload)["after"] == {"adjudicator": True}


# --- Every console page renders ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "audit_auditevent",
        "reviews_aisystem",
        "reviews_interventionpoint",
        "reviews_reviewerprofile",
        "reviews_trainingrecord",
        "reviews_integrationprofile",
        "reviews_case",
        "reviews_decision",
        "reviews_idempotencykey",
        "hitl_portal_heartbeat",
    ],
)
def test_console_changelists_render(console: Any, boss: Any, make_user: Any, name: str) -> None:
    make_system(actor=boss)
    make_user("reviewer", "rev7", systems=["credit-scoring"])
    make_user("integration", "int7", systems=["credit-scoring"])
    assert console.get(reverse(f"admin:{name}_changelist")).status_code == 200


@pytest.mark.parametrize(
    "model",
    [
        "reviews.Case",
        "reviews.Decision",
        "reviews.TrainingRecord",
        "reviews.IntegrationProfile",
        "reviews.IdempotencyKey",
        "hitl_portal.Heartbeat",
    ],
)
def test_records_written_by_the_workflow_are_read_only(boss: Any, model: str) -> None:
    from django.apps import apps

    request = RequestFactory().get("/admin/")
    request.user = boss
    model_admin = django_admin.site._registry[apps.get_model(model)]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_heartbeat_is_listed(console: Any) -> None:
    from django.utils import timezone

    Heartbeat.objects.create(name="worker", seen_at=timezone.now())
    response = console.get(reverse("admin:hitl_portal_heartbeat_changelist"))
    assert b"worker" in response.content


def test_return_to_queue_admin_action_ends_the_claim_and_audits(client, make_user):
    """The console takes a held case back through ``case_reassign`` (with a reason)."""
    import datetime as dt

    from django.utils import timezone

    from reviews.models import Case
    from tests.reviews.factories import ingest, make_system_with_point

    make_system_with_point()
    integration = make_user("integration", systems=["credit-scoring"])
    reviewer = make_user("reviewer", systems=["credit-scoring"])
    case = ingest(integration, external_id="held-1", label="reject")
    Case.objects.filter(pk=case.pk).update(
        status="claimed", claimed_by=reviewer, claimed_at=timezone.now(),
        lease_expires_at=timezone.now() + dt.timedelta(minutes=5),
    )
    admin_user = make_user("admin")
    client.force_login(admin_user)
    response = client.post("/admin/reviews/case/", {
        "action": "return_to_queue", "_selected_action": [case.pk], "post": "yes",
        "reason": "Reviewer is out sick.",
    }, follow=True)
    assert response.status_code == 200
    case.refresh_from_db()
    assert case.status in {"queued", "escalated"} and case.claimed_by is None
    event = AuditEvent.objects.get(action="case.reassigned")
    assert event.actor_name == admin_user.username and event.reason == "Reviewer is out sick."


def test_return_to_queue_is_denied_to_non_staff(client, make_user):
    client.force_login(make_user("compliance_officer"))
    response = client.post("/admin/reviews/case/", {"action": "return_to_queue", "_selected_action": [1]})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
