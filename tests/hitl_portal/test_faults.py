"""Faults: the broker down during ingest, killed bias-audit workers, chunked request bodies.

The broker-down tests publish for real (not eagerly) to a port nobody listens on:
the request must still answer 201 with everything written, and what was not
published is picked up by the sweepers. Timings are a benchmark's business, not
asserted here.
"""

from __future__ import annotations

import datetime as dt
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from audit.tasks import seal_pending_task
from hitl_portal.celery import app
from hitl_portal.queueing import BROKER_BACKOFF_S, enqueue, reset_backoff
from reviews.models import Case, WebhookDelivery
from tests.reviews.factories import make_system_with_point

ROOT = Path(__file__).resolve().parents[2]
SYSTEM, POINT = "credit-scoring", "loan-review"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def broker_down(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Publish for real, to a Redis URL on a closed port (the app's own broker settings otherwise)."""
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_url", "broker_transport_options")}
    app.conf.task_always_eager = False
    app.conf.broker_url = url
    app.conf.broker_transport_options = {
        **(django_settings.CELERY_BROKER_TRANSPORT_OPTIONS if not django_settings.HITL_EMBEDDED_BROKER else {}),
        "max_retries": 0, "socket_connect_timeout": django_settings.CELERY_BROKER_CONNECTION_TIMEOUT,
    }
    app.conf.broker_connection_timeout = django_settings.CELERY_BROKER_CONNECTION_TIMEOUT
    app.conf.task_publish_retry = False
    _drop_pools()
    assert app.connection_for_write().port == int(url.rsplit(":", 1)[1].split("/")[0])
    settings.HITL_AUDIT_SEAL_MODE = "task"  # the request hands sealing to the (unreachable) worker
    reset_backoff()
    try:
        yield url
    finally:
        for key, value in saved.items():
            app.conf[key] = value
        _drop_pools()
        reset_backoff()


def _drop_pools() -> None:
    """Make the app look its pools up again for the current broker URL.

    kombu keeps one pool per URL in a process-wide registry; the app only caches the
    one it used last. Closing it would poison the registry for that URL, so it is
    just forgotten here.
    """
    app._pool = None
    app.amqp._producer_pool = None


def test_settings_publish_once_with_a_short_timeout() -> None:
    assert django_settings.CELERY_TASK_PUBLISH_RETRY is False
    assert django_settings.CELERY_BROKER_CONNECTION_TIMEOUT <= 2
    if not django_settings.HITL_EMBEDDED_BROKER:
        options = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS
        assert options["max_retries"] == 0 and options["socket_connect_timeout"] <= 2


def test_visibility_timeout_exceeds_every_task_time_limit() -> None:
    """No task may still run when Redis hands its unacknowledged message to another worker."""
    app.loader.import_default_modules()
    limits = [django_settings.CELERY_TASK_TIME_LIMIT]
    for name, task in app.tasks.items():
        if not name.startswith("celery."):
            limits.append(task.time_limit or django_settings.CELERY_TASK_TIME_LIMIT)
    assert max(limits) <= django_settings.HITL_LONGEST_TASK_TIME_LIMIT_S
    if not django_settings.HITL_EMBEDDED_BROKER:
        assert django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > max(limits)


@pytest.mark.django_db
def test_ingest_with_the_broker_down_answers_201_and_loses_nothing(
    broker_down: str, api_client_for: Any, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    make_system_with_point(SYSTEM, POINT, confidence_below=0.5)
    client = api_client_for("integration", systems=[SYSTEM])
    bodies = [
        # Routed to the queue.
        {"system": SYSTEM, "intervention_point": POINT, "external_id": "down-1", "input": {"amount": 10},
         "prediction": {"label": "approve", "confidence": 0.2}},
        # Auto-accepted, with a webhook to deliver.
        {"system": SYSTEM, "intervention_point": POINT, "external_id": "down-2", "input": {"amount": 20},
         "prediction": {"label": "approve", "confidence": 0.95}, "callback_url": "https://receiver.example/hook"},
    ]
    ids = []
    for body in bodies:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/api/v1/cases/", body, format="json")
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
    # The publish really failed (the broker is unreachable), and the requests answered anyway.
    from hitl_portal import queueing

    assert queueing._broker_down_until > 0
    # Everything the requests wrote is there: the cases, their events (unsealed: the seal
    # task could not be published), the webhook delivery row.
    assert set(Case.objects.filter(pk__in=ids).values_list("external_id", flat=True)) == {"down-1", "down-2"}
    events = AuditEvent.objects.filter(case_id__in=ids)
    assert {"case.created"} <= set(events.values_list("action", flat=True))
    assert events.filter(seq__isnull=True).count() == events.count() > 0
    delivery = WebhookDelivery.objects.get(case_id=ids[1])
    assert delivery.status == "pending"

    # The sweepers catch up (beat runs them; here they are called as beat would).
    assert seal_pending_task() >= events.count()
    assert not AuditEvent.objects.filter(seq__isnull=True).exists()
    from reviews.services import webhooks

    sent: list[str] = []

    def receiver(*, url: str, body: bytes, headers: dict[str, str]) -> Any:
        sent.append(url)
        return webhooks.SendResult(status_code=200, error="", duration_ms=1)

    monkeypatch.setattr(webhooks, "_post", receiver)
    assert webhooks.webhooks_sweep() == 1
    assert sent == ["https://receiver.example/hook"]
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_a_failed_publish_backs_off_instead_of_trying_on_every_request(broker_down: str) -> None:
    from hitl_portal.tasks import heartbeat

    assert enqueue(heartbeat) is False  # tried once, failed
    started = time.monotonic()
    assert enqueue(heartbeat) is False  # not tried again during the back-off
    assert time.monotonic() - started < BROKER_BACKOFF_S


# --- A killed bias-audit worker ----------------------------------------------------------


@pytest.mark.django_db
def test_stale_bias_audits_are_resumed_by_beat(django_capture_on_commit_callbacks: Any) -> None:
    from fairness import tasks
    from fairness.models import AuditStatus, BiasAudit
    from fairness.services import RESUME_AFTER, bias_audit_request
    from tests.fairness.factories import add_cases, make_audited_system

    system, point = make_audited_system()
    add_cases(system, point, [(5, "f", "approve", "approve", "approve"), (5, "m", "reject", "reject", "reject")])
    with django_capture_on_commit_callbacks(execute=False):  # the run's message is lost (a killed worker)
        stale = bias_audit_request(actor=None, system=system, attribute="gender")
        fresh = bias_audit_request(actor=None, system=system, attribute="age_band")
    BiasAudit.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - RESUME_AFTER - dt.timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.resume_stale_audits.delay().get() == 1
    assert BiasAudit.objects.get(pk=stale.pk).status == AuditStatus.DONE
    assert BiasAudit.objects.get(pk=fresh.pk).status == AuditStatus.PENDING  # still within its time
    assert django_settings.CELERY_BEAT_SCHEDULE["fairness-resume-stale-audits"]["schedule"] <= 300


# --- Chunked request bodies ------------------------------------------------------------------


def _chunked_post(client: Any, path: str, body: bytes, **extra: Any) -> Any:
    """POST ``body`` as a server sees a chunked request: no Content-Length, the decoded body on wsgi.input."""
    return client.generic("POST", path, b"", content_type="application/json", HTTP_TRANSFER_ENCODING="chunked",
                          CONTENT_LENGTH="", **{"wsgi.input": io.BytesIO(body), **extra})


@pytest.mark.django_db
def test_a_chunked_body_is_read_where_the_server_terminates_it(api_client_for: Any) -> None:
    make_system_with_point(SYSTEM, POINT)
    client = api_client_for("integration", systems=[SYSTEM])
    body = json.dumps({"system": SYSTEM, "intervention_point": POINT, "external_id": "chunked-1", "input": {},
                       "prediction": {"label": "approve", "confidence": 0.2}}).encode()
    response = _chunked_post(client, "/api/v1/cases/", body, **{"wsgi.input_terminated": True})
    assert response.status_code == 201, response.content
    assert Case.objects.filter(external_id="chunked-1").exists()


@pytest.mark.django_db
def test_a_chunked_body_is_refused_with_411_where_it_cannot_be_read(api_client_for: Any) -> None:
    client = api_client_for("integration")
    response = _chunked_post(client, "/api/v1/cases/", b'{"system": "x"}')
    assert response.status_code == 411
    assert response.json()["code"] == "length_required"


@pytest.mark.django_db
def test_a_chunked_body_over_the_limit_gets_413(api_client_for: Any, settings: Any) -> None:
    settings.HITL_MAX_BODY_BYTES = 100
    client = api_client_for("integration")
    response = _chunked_post(client, "/api/v1/cases/", b"x" * 101, **{"wsgi.input_terminated": True})
    assert response.status_code == 413 and response.json()["code"] == "body_too_large"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_chunked_ingest_through_gunicorn_is_read(make_user: Any, tmp_path: Path) -> None:
    """The real server: gunicorn decodes the chunks; the case is created from the body it was sent."""
    from tests.token_helpers import new_token_key

    make_system_with_point(SYSTEM, POINT)
    integration = make_user("integration", systems=[SYSTEM])
    token = new_token_key(integration)
    port = _closed_port()
    name = connection.settings_dict["NAME"]
    database = django_settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{name}",
        "HITL_VAR_DIR": str(tmp_path / "var"),
        "HITL_AUDIT_WITNESS": "none",
        "DJANGO_SETTINGS_MODULE": "hitl_portal.settings",
    }
    if database.get("PASSWORD"):
        env["DATABASE_URL"] = env["DATABASE_URL"].replace("@", f":{database['PASSWORD']}@", 1)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "hitl_portal.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("gunicorn did not start: " + (server.stderr.read().decode() if server.stderr else ""))
                time.sleep(0.2)
        body = json.dumps({"system": SYSTEM, "intervention_point": POINT, "external_id": "chunked-gunicorn",
                           "input": {"amount": 5}, "prediction": {"label": "approve", "confidence": 0.2}}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.putrequest("POST", "/api/v1/cases/")
        conn.putheader("Authorization", f"Token {token}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for start in range(0, len(body), 16):
            piece = body[start:start + 16]
            conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        assert response.status == 201, payload
        assert json.loads(payload)["external_id"] == "chunked-gunicorn"
        assert Case.objects.filter(external_id="chunked-gunicorn").exists()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
