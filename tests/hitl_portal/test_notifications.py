"""Notifications that reach someone: e-mail through a real SMTP server, chat through a webhook,
the in-app inbox, retries with backoff, and alerts that reached nobody shown to officers."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.test import Client
from django.utils import timezone

from hitl_portal.models import DeliveryStatus, Notification, NotificationDelivery, NotificationRecipient
from hitl_portal.notifications import deliver_due, notify, undelivered
from reviews.models import Case
from reviews.services.sla import apply_sla_breaches
from tests.reviews.factories import ingest, make_system_with_point
from tests.reviews.queue_helpers import make_user

pytestmark = pytest.mark.django_db


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp(settings: Any) -> Any:
    mailbox = _Mailbox()
    with socket.socket() as probe:  # aiosmtpd's controller checks readiness on a fixed port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    yield mailbox
    controller.stop()


@pytest.fixture
def chat(settings: Any) -> Any:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.HITL_NOTIFY_CHAT_URLS = [f"json://127.0.0.1:{server.server_port}/hooks/oversight"]
    yield received
    server.shutdown()


def _breach_one_case() -> Case:
    system, _ = make_system_with_point(confidence_below=0.9, sla_seconds=60, on_sla_breach="escalate")
    integration = make_user("integration", systems=[system.slug])
    case = ingest(integration, external_id="late-1", confidence=0.2)
    Case.objects.filter(pk=case.pk).update(sla_deadline=timezone.now() - dt.timedelta(minutes=5))
    return case


def test_an_sla_breach_reaches_officers_by_email_chat_and_inbox(smtp, chat, django_capture_on_commit_callbacks):
    officer = make_user("compliance_officer", "olga")
    officer.email = "olga@example.org"
    officer.save()
    case = _breach_one_case()
    with django_capture_on_commit_callbacks(execute=True):
        assert apply_sla_breaches() == 1
    notification = Notification.objects.get(kind="sla_breach")
    assert f"Case #{case.pk}" in notification.body
    assert [m.rcpt_tos for m in smtp.messages] == [["olga@example.org"]]
    assert b"breached their SLA" in smtp.messages[0].content
    assert len(chat) == 1 and "breached their SLA" in chat[0]["title"]
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    assert NotificationRecipient.objects.filter(user=officer, read_at__isnull=True).exists()
    assert not undelivered().exists()


def test_an_alert_with_no_reachable_recipient_shows_on_the_officers_home_page(settings) -> None:
    settings.HITL_NOTIFY_CHAT_URLS = []
    notification = notify(kind="monitoring", subject="Override rate spiked", roles=("manager",))
    assert notification is not None and list(undelivered()) == [notification]
    officer = make_user("compliance_officer")
    client = Client()
    client.force_login(officer)
    page = client.get("/").content.decode()
    assert "Alerts that reached nobody" in page and "Override rate spiked" in page
    # The dashboard shows it too.
    assert "Override rate spiked" in client.get("/dashboard/").content.decode()


def test_failed_deliveries_are_retried_with_backoff_then_given_up(settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2  # nothing listens
    settings.HITL_NOTIFY_MAX_ATTEMPTS = 2
    officer = make_user("compliance_officer")
    officer.email = "o@example.org"
    officer.save()
    notify(kind="escalation", subject="Case escalated")
    delivery = NotificationDelivery.objects.get()
    assert deliver_due() == 0
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1 and delivery.last_error
    assert delivery.next_attempt_at > timezone.now() + dt.timedelta(seconds=30)
    deliver_due(now=delivery.next_attempt_at + dt.timedelta(seconds=1))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.GAVE_UP and delivery.attempts == 2
    # Nobody got an e-mail, but the officer has it in the inbox: it did reach someone.
    assert not undelivered().exists()


def test_an_alert_is_raised_once_per_dedupe_key() -> None:
    make_user("compliance_officer")
    assert notify(kind="unclaimable_case", subject="Case 1 cannot be claimed", dedupe_key="case:1") is not None
    assert notify(kind="unclaimable_case", subject="Case 1 cannot be claimed", dedupe_key="case:1") is None
    assert Notification.objects.count() == 1


def test_inbox_lists_counts_and_marks_read_only_ones_own_alerts() -> None:
    mine, other = make_user("reviewer", "rita"), make_user("reviewer", "rob")
    notify(kind="reviewer_suspended", subject="Reviewer rita was suspended", roles=(), users=[mine])
    notify(kind="reviewer_suspended", subject="Reviewer rob was suspended", roles=(), users=[other])
    client = Client()
    client.force_login(mine)
    page = client.get("/notifications/").content.decode()
    assert "rita was suspended" in page and "rob was suspended" not in page
    assert '1<span class="sr-only"> unread' in client.get("/notifications/preferences/").content.decode()
    theirs = Notification.objects.get(subject__contains="rob")
    client.post("/notifications/", {"notification": [theirs.pk]})
    assert NotificationRecipient.objects.get(user=other).read_at is None
    client.post("/notifications/", {"all": "1"})
    assert NotificationRecipient.objects.get(user=mine).read_at is not None


def test_preferences_turn_a_channel_off(settings) -> None:
    settings.HITL_NOTIFY_CHAT_URLS = []
    officer = make_user("compliance_officer")
    officer.email = "o@example.org"
    officer.save()
    client = Client()
    client.force_login(officer)
    assert client.post("/notifications/preferences/", {"escalation-inbox": "on"}).status_code == 302
    notify(kind="escalation", subject="Escalated")
    assert NotificationRecipient.objects.filter(user=officer).count() == 1
    assert not NotificationDelivery.objects.exists()  # e-mail switched off for escalations


def test_pages_need_a_sign_in() -> None:
    for url in ("/notifications/", "/notifications/preferences/"):
        response = Client().get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
