"""Who did it: the audit event's actor and the history row's user, for every way into the portal.

A browser (session) user, a token user (DRF authenticates inside the view, where
django-simple-history's middleware sees an anonymous user), an admin acting in the
oversight console, and a Celery task (the task hooks bind the system user).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

import reviews.admin_accounts  # noqa: F401  (the audited account admin replaces Django's stock one)
from audit.models import AuditEvent
from hitl_portal.actors import SYSTEM_USERNAME, clear_actor, current_actor, set_actor, system_user
from incidents.models import Incident
from incidents.tasks import incident_overdue_alerts_task
from reviews.models import AISystem, Case
from reviews.services.people import USER_UPDATED_ACTION
from tests.incidents.incident_helpers import file_incident, make_case

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def assert_actor(event: AuditEvent, user: User, actor_type: str = "user") -> None:
    assert (event.actor_type, event.actor_id, event.actor_name) == (actor_type, user.pk, user.username)


@pytest.fixture
def case():
    return make_case("app-1")


def test_browser_session_user(make_user, case):
    officer = make_user("compliance_officer")
    client = client_for(officer)
    aware = timezone.now().strftime("%Y-%m-%dT%H:%M")
    response = client.post("/compliance/incidents/new/", {"system": "credit-scoring", "kind": "other",
                                                          "aware_at": aware, "description": "Seen in the browser."})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="incident.created")
    assert_actor(event, officer)
    assert event.request_id == response["X-Request-ID"]
    assert Incident.objects.get().history.get().history_user == officer
    # The same session on the API (DRF's session authentication).
    incident = Incident.objects.get()
    response = client.patch(f"/api/v1/incidents/{incident.pk}/", {"note": "From the API, same session."},
                            content_type="application/json")
    assert response.status_code == 200, response.content
    assert_actor(AuditEvent.objects.get(action="incident.updated"), officer)
    assert Incident.objects.get().history.first().history_user == officer


def test_token_users(api_client_for, make_user, case):
    client = api_client_for("compliance_officer")
    response = client.post("/api/v1/incidents/", {"system": "credit-scoring", "kind": "bias",
                                                  "aware_at": "2026-01-05T10:00:00Z", "description": "Via token."},
                           format="json", HTTP_X_REQUEST_ID="req-token-1")
    assert response.status_code == 201
    event = AuditEvent.objects.get(action="incident.created")
    assert_actor(event, client.user)
    assert event.request_id == "req-token-1"
    assert Incident.objects.get().history.get().history_user == client.user

    integration = api_client_for("integration", systems=["credit-scoring"])
    response = integration.post("/api/v1/cases/", {
        "system": "credit-scoring", "intervention_point": "loan-review", "external_id": "app-token",
        "input": {"amount": 1}, "prediction": {"label": "approve", "confidence": 0.5},
    }, format="json")
    assert response.status_code == 201, response.content
    created = AuditEvent.objects.get(action="case.created", case_id=response.json()["id"])
    assert_actor(created, integration.user, "integration")
    assert Case.objects.get(pk=response.json()["id"]).history.get().history_user == integration.user


def test_admin_action_in_the_console(make_user, case):
    admin = make_user("admin", "root")
    system = AISystem.objects.get(slug="credit-scoring")
    response = client_for(admin).post("/admin/reviews/aisystem/", {
        "action": "halt_systems", "_selected_action": [system.pk], "post": "yes", "reason": "Drift detected.",
    })
    assert response.status_code == 302
    system.refresh_from_db()
    assert system.status == "halted"
    event = AuditEvent.objects.get(action="system.halted")
    assert_actor(event, admin)
    assert event.reason == "Drift detected."
    assert system.history.first().history_user == admin


def test_admin_adds_a_user_through_the_audited_service(make_user):
    admin = make_user("admin", "root")
    make_case("seed")
    response = client_for(admin).post("/admin/auth/user/add/", {
        "username": "newrev", "role": "reviewer", "email": "newrev@example.org",
        "systems": [AISystem.objects.get(slug="credit-scoring").pk],
        "password1": "a-long-pass-word-77", "password2": "a-long-pass-word-77",
    })
    assert response.status_code == 302, response.content.decode()[-3000:]
    user = User.objects.get(username="newrev")
    assert list(user.groups.values_list("name", flat=True)) == ["reviewer"]
    assert list(user.reviewer_profile.qualifications.values_list("slug", flat=True)) == ["credit-scoring"]
    assert user.check_password("a-long-pass-word-77")
    assert_actor(AuditEvent.objects.get(action="user.created", object_id=str(user.pk)), admin)


def test_admin_changes_a_user_and_a_password_audited(make_user):
    admin = make_user("admin", "root")
    manager = make_user("manager", "mgr1")
    client = client_for(admin)
    page = client.get(f"/admin/auth/user/{manager.pk}/change/")
    assert page.status_code == 200
    assert 'name="groups"' not in page.content.decode() and 'name="user_permissions"' not in page.content.decode()
    response = client.post(f"/admin/auth/user/{manager.pk}/change/", {
        "username": "mgr1", "first_name": "", "last_name": "", "email": "mgr1@example.org",
        "is_active": "on", "role": "compliance_officer", "change_reason": "Moved to compliance.",
    })
    assert response.status_code == 302, response.content.decode()[-3000:]
    manager.refresh_from_db()
    assert list(manager.groups.values_list("name", flat=True)) == ["compliance_officer"]
    event = AuditEvent.objects.get(action=USER_UPDATED_ACTION)
    assert_actor(event, admin)
    assert event.reason == "Moved to compliance."
    assert '"role":"compliance_officer"' in event.payload

    response = client.post(f"/admin/auth/user/{manager.pk}/password/", {
        "password1": "fresh-pass-word-99", "password2": "fresh-pass-word-99", "usable_password": "true",
    })
    assert response.status_code == 302
    manager.refresh_from_db()
    assert manager.check_password("fresh-pass-word-99")
    latest = AuditEvent.objects.filter(action=USER_UPDATED_ACTION).order_by("-id").first()
    assert_actor(latest, admin)
    assert '"password":"changed"' in latest.payload


def test_admin_cannot_change_groups_tokens_or_delete_users(make_user):
    admin = make_user("admin", "root")
    manager = make_user("manager", "mgr1")
    client = client_for(admin)
    group = Group.objects.get(name="manager")
    assert client.get(f"/admin/auth/group/{group.pk}/change/").status_code == 200  # viewable
    response = client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "boss"})
    assert response.status_code == 403
    assert client.get("/admin/auth/group/add/").status_code == 403
    assert client.get("/admin/knox/authtoken/add/").status_code == 403
    assert client.post(f"/admin/auth/user/{manager.pk}/delete/", {"post": "yes"}).status_code == 403
    assert User.objects.filter(pk=manager.pk).exists()
    group.refresh_from_db()
    assert group.name == "manager"


def test_admin_revokes_tokens_with_a_reason(make_user):
    from knox.models import AuthToken

    admin = make_user("admin", "root")
    integration = make_user("integration", "int1")
    kept, kept_key = AuthToken.objects.create(user=admin)
    listing = client_for(admin).get("/admin/knox/authtoken/").content.decode()
    assert kept_key not in listing and kept.token_key in listing
    old, old_key = AuthToken.objects.create(user=integration)
    response = client_for(admin).post("/admin/auth/user/", {
        "action": "rotate_tokens", "_selected_action": [integration.pk], "post": "yes", "reason": "Leaked key.",
    })
    assert response.status_code == 302
    assert not AuthToken.objects.filter(user=integration).exists()
    event = AuditEvent.objects.get(action="user.token_revoked")
    assert_actor(event, admin)
    assert event.reason == "Leaked key."
    assert old.token_key in event.payload and old_key not in event.payload


def test_celery_task_acts_as_the_system_user(make_user, case, django_capture_on_commit_callbacks):
    officer = make_user("compliance_officer", email="o@example.org")
    incident = file_incident(actor=officer, kind="critical_infrastructure",
                             aware_at=timezone.now() - dt.timedelta(days=3))
    # A web user bound earlier in this thread must not leak into the task.
    set_actor(officer)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = incident_overdue_alerts_task.apply()
    finally:
        clear_actor()
    assert result.get() == 1
    event = AuditEvent.objects.get(action="incident.updated", object_id=str(incident.pk))
    robot = system_user()
    assert (event.actor_type, event.actor_id, event.actor_name) == ("system", robot.pk, SYSTEM_USERNAME)
    # The prerun hook bound the task's own request id; the postrun hook unbound the actor.
    assert event.request_id == f"task-{result.id}"
    assert current_actor() is None
    incident.refresh_from_db()
    assert incident.history.first().history_user == robot
