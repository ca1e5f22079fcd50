"""Integrations cannot game routing: no rules in their view, a secret salt in the random sample.

Integrations see a point's ``slug, name, stage`` only; every point has its own
secret salt (in no API response, masked in the admin, not in history), which
keys ``"{salt}:{system}:{external_id}"``; rotating it is an audited service with
an API action and an admin action for officers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from reviews.models import InterventionPoint
from tests.reviews.account_helpers import make_point, make_system, point_body

pytestmark = pytest.mark.postgres

POINTS = "/api/v1/systems/credit-scoring/intervention-points/"
ROTATE = POINTS + "loan-review/rotate-salt/"
PUBLIC_KEYS = {"slug", "name", "stage", "kind"}


@pytest.fixture
def point(db: Any) -> InterventionPoint:
    return make_point(make_system())


def draw(salt: str, external_id: str) -> float:
    digest = hashlib.sha256(f"{salt}:credit-scoring:{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def test_each_point_gets_its_own_secret_salt_at_creation(api_client_for: Callable[..., Any], db: Any) -> None:
    make_system()
    officer = api_client_for("compliance_officer")
    first = officer.post(POINTS, point_body(), format="json")
    second = officer.post(POINTS, point_body(slug="second-look"), format="json")
    assert first.status_code == second.status_code == 201
    salts = list(InterventionPoint.objects.values_list("sampling_salt", flat=True))
    assert len(salts) == 2 and len(set(salts)) == 2
    assert all(len(salt) == 64 and int(salt, 16) >= 0 for salt in salts)
    for response in (first, second):
        assert "sampling_salt" not in response.json()
        assert not any(salt in response.content.decode() for salt in salts)
    created = AuditEvent.objects.filter(action="intervention_point.created")
    assert created.count() == 2
    assert not any(salt in (event.payload or "") for event in created for salt in salts)


def test_integrations_see_slug_name_and_stage_only(
    point: InterventionPoint, api_client_for: Callable[..., Any]
) -> None:
    integration = api_client_for("integration", systems=["credit-scoring"])
    listed = integration.get(POINTS)
    assert listed.status_code == 200
    (item,) = listed.json()["results"]
    assert {"slug", "name", "stage"} <= set(item) <= PUBLIC_KEYS
    assert item == {"slug": "loan-review", "name": "Loan review", "stage": "validation"} | (
        {"kind": item["kind"]} if "kind" in item else {}
    )
    detail = integration.get(POINTS + "loan-review/")
    assert detail.status_code == 200
    assert set(detail.json()) <= PUBLIC_KEYS
    for body in (listed.content.decode(), detail.content.decode()):
        for secret in ("confidence_below", "high_stakes", "random_sample_rate", "always_review_labels", "10000",
                       "gold_rate", "blind_review_rate", point.sampling_salt):
            assert secret not in body


@pytest.mark.parametrize("role", ["compliance_officer", "manager", "reviewer"])
def test_overseers_see_the_rules_but_never_the_salt(
    role: str, point: InterventionPoint, api_client_for: Callable[..., Any]
) -> None:
    client = api_client_for(role)
    detail = client.get(POINTS + "loan-review/")
    assert detail.status_code == 200
    assert detail.json()["random_sample_rate"] == 0.05
    assert detail.json()["high_stakes"] == [{"field": "amount", "op": "gt", "value": 10000}]
    assert point.sampling_salt not in detail.content.decode()
    assert point.sampling_salt not in client.get(POINTS).content.decode()


def test_the_schema_documents_no_salt(api_client_for: Callable[..., Any], db: Any) -> None:
    schema = api_client_for("compliance_officer").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "sampling_salt" not in text
    assert "rotate-salt" in text


def as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema (``null`` allowed), recursively."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@pytest.mark.parametrize("role", ["integration", "compliance_officer"])
def test_point_answers_match_the_documented_schema_for_each_role(
    role: str, point: InterventionPoint, api_client_for: Callable[..., Any]
) -> None:
    """Exactly one of the documented shapes (full or public) fits each role's answer."""
    schema = api_client_for("compliance_officer").get("/api/schema/", {"format": "json"}).json()
    client = api_client_for(role, systems=["credit-scoring"])
    for path, template in ((POINTS, "/api/v1/systems/{slug}/intervention-points/"),
                           (POINTS + "loan-review/", "/api/v1/systems/{slug}/intervention-points/{point}/")):
        documented = schema["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        response = client.get(path)
        assert response.status_code == 200
        jsonschema.validate(response.json(), as_json_schema({**documented, "components": schema["components"]}))


def test_ingest_samples_with_the_points_salt(
    point: InterventionPoint, api_client_for: Callable[..., Any]
) -> None:
    # Only the random sample can route these cases (confident, harmless, not a review label).
    point.confidence_below = None
    point.always_review_labels = []
    point.high_stakes = []
    point.random_sample_rate = 0.5
    point.save()
    integration = api_client_for("integration", systems=["credit-scoring"])
    for n in range(12):
        external_id = f"app-{n}"
        response = integration.post("/api/v1/cases/", {
            "system": "credit-scoring", "intervention_point": "loan-review", "external_id": external_id,
            "input": {"amount": 1}, "prediction": {"label": "approve", "confidence": 0.99},
        }, format="json")
        assert response.status_code == 201
        routing = response.json()["routing"]
        assert routing["routed"] is (draw(point.sampling_salt, external_id) < 0.5)
        assert routing["reasons"] == (["random_sample"] if routing["routed"] else [])


def test_officer_rotates_the_salt_through_the_api_audited(
    point: InterventionPoint, api_client_for: Callable[..., Any]
) -> None:
    officer = api_client_for("compliance_officer")
    old_salt, old_version = point.sampling_salt, point.version
    response = officer.post(ROTATE, {"reason": "The salt may have leaked in a support ticket."}, format="json")
    assert response.status_code == 200
    assert set(response.json()) == {"slug", "salt_rotated_at"}
    point.refresh_from_db()
    assert point.sampling_salt != old_salt and len(point.sampling_salt) == 64
    assert point.version == old_version  # no rule changed
    assert point.salt_rotated_at is not None
    event = AuditEvent.objects.get(action="intervention_point.salt_rotated")
    assert event.actor_name == officer.user.username
    assert event.reason == "The salt may have leaked in a support ticket."
    assert event.system_id == point.system_id
    assert old_salt not in (event.payload or "") and point.sampling_salt not in (event.payload or "")
    assert json.loads(event.payload)["after"]["salt_rotated_at"]
    # History keeps who and when, never a salt.
    assert not hasattr(point.history.model, "sampling_salt")
    assert point.history.latest().history_user == officer.user


def test_salt_rotation_needs_a_reason(point: InterventionPoint, api_client_for: Callable[..., Any]) -> None:
    officer = api_client_for("compliance_officer")
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        response = officer.post(ROTATE, body, format="json")
        assert response.status_code == 400
        assert list(response.json()) == ["reason"]
    assert not AuditEvent.objects.filter(action="intervention_point.salt_rotated").exists()


@pytest.mark.parametrize("role", ["integration", "manager", "reviewer"])
def test_salt_rotation_denied_to_other_roles(
    role: str, point: InterventionPoint, api_client_for: Callable[..., Any]
) -> None:
    salt = point.sampling_salt
    client = api_client_for(role, systems=["credit-scoring"])
    assert client.post(ROTATE, {"reason": "x"}, format="json").status_code == 403
    point.refresh_from_db()
    assert point.sampling_salt == salt
    assert not AuditEvent.objects.filter(action="intervention_point.salt_rotated").exists()


def test_salt_rotation_denied_to_anonymous_and_404_for_unknown_points(
    point: InterventionPoint, anon_client: Any, api_client_for: Callable[..., Any]
) -> None:
    assert anon_client.post(ROTATE, {"reason": "x"}, format="json").status_code == 401
    officer = api_client_for("compliance_officer")
    assert officer.post(POINTS + "nope/rotate-salt/", {"reason": "x"}, format="json").status_code == 404


# --- Admin ----------------------------------------------------------------------------------


def test_admin_shows_the_salt_masked_and_rotates_it_audited(
    point: InterventionPoint, make_user: Callable[..., User]
) -> None:
    client = Client()
    admin_user = make_user("admin", username="root-admin")
    client.force_login(admin_user)
    change = client.get(reverse("admin:reviews_interventionpoint_change", args=[point.pk]))
    assert change.status_code == 200
    page = change.content.decode()
    assert point.sampling_salt not in page
    assert "sampling salt" in page.lower() and "••••••••" in page
    old_salt = point.sampling_salt
    changelist = reverse("admin:reviews_interventionpoint_changelist")
    # The action first asks for a reason ...
    ask = client.post(changelist, {"action": "rotate_salts", "_selected_action": [point.pk]})
    assert ask.status_code == 200 and "reason" in ask.content.decode().lower()
    point.refresh_from_db()
    assert point.sampling_salt == old_salt
    # ... then rotates through the service.
    done = client.post(changelist, {"action": "rotate_salts", "_selected_action": [point.pk], "post": "yes",
                                    "reason": "Routine yearly rotation."}, follow=True)
    assert done.status_code == 200
    assert "Sampling salt rotated" in done.content.decode()
    point.refresh_from_db()
    assert point.sampling_salt != old_salt
    event = AuditEvent.objects.get(action="intervention_point.salt_rotated")
    assert event.actor_name == "root-admin" and event.reason == "Routine yearly rotation."


@pytest.mark.parametrize("role", ["compliance_officer", "integration"])
def test_admin_denied_to_non_staff(role: str, point: InterventionPoint, make_user: Callable[..., User]) -> None:
    client = Client()
    client.force_login(make_user(role))
    response = client.get(reverse("admin:reviews_interventionpoint_change", args=[point.pk]))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
