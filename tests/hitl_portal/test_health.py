"""/healthz: what load balancers and the quickstart poll."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from hitl_portal.models import Heartbeat
from hitl_portal.tasks import heartbeat

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok_without_authentication(anon_client):
    response = anon_client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    expected_broker = "embedded" if settings.HITL_EMBEDDED_BROKER else "ok"
    assert {key: body[key] for key in ("status", "database", "broker")} == {
        "status": "ok",
        "database": "ok",
        "broker": expected_broker,
    }
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_reports_no_worker_before_the_first_heartbeat(anon_client):
    body = anon_client.get("/healthz").json()

    assert body["worker_last_seen"] is None
    assert body["worker_age_s"] is None


def test_healthz_shows_the_heartbeat_a_worker_left(anon_client):
    heartbeat.delay()  # eager in unit tests: the task body runs as a worker would run it

    seen_at = Heartbeat.objects.get(name="worker").seen_at
    body = anon_client.get("/healthz").json()

    assert body["worker_last_seen"] == seen_at.isoformat()
    assert body["worker_age_s"] >= 0


def test_healthz_is_503_when_the_broker_is_unreachable(anon_client):
    # Port 9 on loopback: nothing listens there, so the connection is refused at once.
    with override_settings(HITL_EMBEDDED_BROKER=False, CELERY_BROKER_URL="redis://127.0.0.1:9/0"):
        response = anon_client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["broker"] == "error"
    assert response.json()["database"] == "ok"


def test_healthz_refuses_writes(anon_client):
    response = anon_client.post("/healthz", {})

    assert response.status_code == 405


def test_healthz_answers_head_for_load_balancers(anon_client):
    assert anon_client.head("/healthz").status_code == 200
