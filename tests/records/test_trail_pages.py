"""The officers' records desk: verify the chain, export the trail, place and release legal holds."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from audit.services import seal_pending
from records.models import LegalHold
from reviews.models import AISystem
from tests.reviews.queue_helpers import make_system

pytestmark = pytest.mark.django_db

TRAIL = "/audit/trail/"
PLACE = "/audit/trail/holds/"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", ["compliance_officer", "admin"])
def test_officers_open_the_page_and_verify_the_chain(make_user, role):
    client = client_for(make_user(role))
    make_system()
    seal_pending()
    page = client.get(TRAIL)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Verify the chain" in html and 'href="/api/v1/audit/export/"' in html
    result = client.post(TRAIL).content.decode()
    assert "Chain intact:" in result
    # The export link works with the page's session and is recorded.
    export = client.get("/api/v1/audit/export/")
    assert export.status_code == 200
    b"".join(export.streaming_content)
    assert AuditEvent.objects.filter(action="audit.exported").count() == 1


@pytest.mark.parametrize("role", ["manager", "reviewer", "integration"])
def test_other_roles_are_refused(make_user, role):
    client = client_for(make_user(role))
    assert client.get(TRAIL).status_code == 403
    assert client.post(TRAIL).status_code == 403
    assert client.post(PLACE, {"reason": "x"}).status_code == 403
    hold = LegalHold.objects.create(reason="kept")
    assert client.post(f"/audit/trail/holds/{hold.pk}/release/", {"reason": "y"}).status_code == 403
    assert LegalHold.objects.get().released_at is None


def test_anonymous_is_sent_to_login():
    response = Client().get(TRAIL)
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_officer_places_and_releases_a_hold(make_user):
    officer = make_user("compliance_officer")
    client = client_for(officer)
    make_system()

    response = client.post(PLACE, {"system": "credit-scoring", "reason": "Litigation 2026-17", "reference": "LIT-17"})
    assert response.status_code == 302
    hold = LegalHold.objects.get()
    assert hold.system == AISystem.objects.get(slug="credit-scoring") and hold.placed_by == officer
    placed = AuditEvent.objects.get(action="audit.legal_hold_placed")
    assert placed.actor_id == officer.pk
    assert "Litigation 2026-17" in client.get(TRAIL).content.decode()

    # A release needs a reason: refused without one, nothing changes.
    client.post(f"/audit/trail/holds/{hold.pk}/release/", {"reason": ""})
    assert LegalHold.objects.get().released_at is None
    client.post(f"/audit/trail/holds/{hold.pk}/release/", {"reason": "Matter settled"})
    hold.refresh_from_db()
    assert hold.released_at is not None and hold.release_reason == "Matter settled"
    assert AuditEvent.objects.get(action="audit.legal_hold_released").actor_id == officer.pk
    # Released twice: a message, not a 500.
    response = client.post(f"/audit/trail/holds/{hold.pk}/release/", {"reason": "again"}, follow=True)
    assert response.status_code == 200 and "already released" in response.content.decode()


def test_a_hold_without_reason_is_a_field_error(make_user):
    client = client_for(make_user("compliance_officer"))
    response = client.post(PLACE, {"system": "", "reason": "  "})
    assert response.status_code == 400
    assert "reason" in response.context["place_form"].errors
    response = client.post(PLACE, {"system": "nope\x00", "reason": "x"})
    assert response.status_code == 400
    assert not LegalHold.objects.exists()
    assert client.post("/audit/trail/holds/999999/release/", {"reason": "x"}).status_code == 404
