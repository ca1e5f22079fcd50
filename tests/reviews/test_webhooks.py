"""Signed webhooks: enqueue on commit, HMAC signature, retries swept from the table, admin redeliver.

A real HTTP receiver listens on loopback (port 0) and checks every request's
signature with the integration's secret. Loopback is refused by the SSRF guard
unless the operator allow-lists it, so these tests allow-list 127.0.0.1 the way
an on-premises deployment would (``HITL_WEBHOOK_ALLOW``); the guard's refusals
are tested in ``test_webhook_guard.py``. Time is driven by passing ``now`` to
the sweeper instead of sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from audit.models import AuditEvent
from reviews.models import (
    AISystem,
    Case,
    CaseStatus,
    DeliveryStatus,
    InterventionPoint,
    Resolution,
    WebhookAttempt,
    WebhookDelivery,
)
from reviews.selectors.cases import case_representation
from reviews.services.people import integration_rotate_secret
from reviews.services.webhooks import (
    backoff_delay,
    max_attempts,
    webhook_redeliver,
    webhooks_deliver,
    webhooks_enqueue,
    webhooks_sweep,
)
from reviews.tasks_webhooks import deliver_webhooks, sweep_webhooks
from tests.reviews.webhook_helpers import Receiver

DELAY = "reviews.tasks_webhooks.deliver_webhooks.delay"


def expected_signature(body: bytes, secret: str) -> str:
    """The receiver's own check, written independently of the portal's code."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture(autouse=True)
def allow_loopback_receiver(settings: Any) -> None:
    """The test receiver listens on 127.0.0.1: allow-listed, as an on-premises receiver would be."""
    settings.HITL_WEBHOOK_ALLOW = ["127.0.0.1/32"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.close()


# --- Data ---------------------------------------------------------------------------


@pytest.fixture
def system(db: Any) -> AISystem:
    return AISystem.objects.create(slug="credit-scoring", name="Credit scoring", labels=["approve", "reject"])


@pytest.fixture
def point(system: AISystem) -> InterventionPoint:
    return InterventionPoint.objects.create(system=system, slug="loan-review", name="Loan review")


@pytest.fixture
def integration(make_user: Callable[..., User], system: AISystem) -> User:
    return make_user("integration", systems=[system.slug])


@pytest.fixture
def make_case(system: AISystem, point: InterventionPoint, integration: User) -> Callable[..., Case]:
    counter = {"n": 0}

    def factory(*, callback_url: str = "", status: str = CaseStatus.AUTO_ACCEPTED, **extra: Any) -> Case:
        counter["n"] += 1
        fields: dict[str, Any] = dict(
            system=system,
            intervention_point=point,
            external_id=f"app-{counter['n']}",
            submitted_by=integration,
            input={"income": 42000, "amount": 5000},
            prediction_label="approve",
            prediction_confidence=0.91,
            model_version="v3.1",
            callback_url=callback_url,
            status=status,
        )
        if status in (CaseStatus.AUTO_ACCEPTED, CaseStatus.DECIDED):
            fields.update(
                resolution=Resolution.AUTO_ACCEPTED if status == CaseStatus.AUTO_ACCEPTED else Resolution.REVIEWED,
                final_label="approve",
                decided_at=timezone.now(),
            )
        fields.update(extra)
        return Case.objects.create(**fields)

    return factory


def secret_of(user: User) -> str:
    user.integration_profile.refresh_from_db()
    return user.integration_profile.webhook_secret


def enqueue_and_commit(cases: list[Case], capture: Any) -> list[WebhookDelivery]:
    """Enqueue as a service would (inside its transaction) and run the on-commit hooks."""
    with capture(execute=True), transaction.atomic():
        return webhooks_enqueue(cases=cases)


# --- Enqueue ------------------------------------------------------------------------


def test_enqueue_creates_nothing_for_cases_without_callback_url(
    make_case: Callable[..., Case], django_capture_on_commit_callbacks: Any
) -> None:
    cases = [make_case(), make_case(), make_case(status=CaseStatus.QUEUED, callback_url="http://127.0.0.1:9/x")]
    with (
        mock.patch(DELAY) as delay,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        transaction.atomic(),
    ):
        created = webhooks_enqueue(cases=cases)
    assert created == []
    assert not WebhookDelivery.objects.exists()
    assert callbacks == []
    delay.assert_not_called()


def test_enqueue_schedules_one_task_per_batch_after_commit(
    make_case: Callable[..., Case], django_capture_on_commit_callbacks: Any
) -> None:
    cases = [make_case(callback_url=f"http://127.0.0.1:9/hook/{i}") for i in range(5)] + [make_case()]
    with mock.patch(DELAY) as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
            created = webhooks_enqueue(cases=cases)
        # Nothing is sent or scheduled before the transaction commits.
        delay.assert_not_called()
        assert WebhookAttempt.objects.count() == 0
        for callback in callbacks:
            callback()
    assert len(created) == 5
    delay.assert_called_once()
    (ids,) = delay.call_args.args
    assert sorted(ids) == sorted(d.pk for d in created)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.PENDING}


def test_enqueue_rolls_back_with_the_transaction(
    make_case: Callable[..., Case], django_capture_on_commit_callbacks: Any
) -> None:
    case = make_case(callback_url="http://127.0.0.1:9/hook")
    with (
        mock.patch(DELAY) as delay,
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        webhooks_enqueue(cases=[case])
        raise RuntimeError("the decision failed")
    assert not WebhookDelivery.objects.exists()
    delay.assert_not_called()


def test_body_is_the_event_and_case_representation_frozen_at_enqueue(
    make_case: Callable[..., Case], django_capture_on_commit_callbacks: Any
) -> None:
    decided = make_case(callback_url="http://127.0.0.1:9/hook", status=CaseStatus.DECIDED, final_label="reject")
    auto = make_case(callback_url="http://127.0.0.1:9/hook")
    with mock.patch(DELAY):
        deliveries = enqueue_and_commit([decided, auto], django_capture_on_commit_callbacks)
    by_case = {d.case_id: d for d in deliveries}
    decided_body = json.loads(by_case[decided.pk].body)
    assert decided_body["event"] == "case.decided"
    assert by_case[decided.pk].event == "case.decided"
    decided.refresh_from_db()
    assert decided_body["case"] == json.loads(json.dumps(case_representation(decided), cls=DjangoJSONEncoder))
    assert decided_body["case"]["id"] == decided.pk
    assert decided_body["case"]["final_label"] == "reject"
    assert json.loads(by_case[auto.pk].body)["event"] == "case.auto_accepted"
    # A later change (an outcome report, a reopen) does not rewrite what was sent for this decision.
    Case.objects.filter(pk=decided.pk).update(final_label="approve")
    stored = WebhookDelivery.objects.get(pk=by_case[decided.pk].pk)
    assert json.loads(stored.body)["case"]["final_label"] == "reject"


# --- Delivery -----------------------------------------------------------------------


def test_signed_delivery_retries_after_failure_then_delivers(
    make_case: Callable[..., Case],
    integration: User,
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    receiver.statuses = [500, 200]
    case = make_case(callback_url=receiver.url)
    old_secret = secret_of(integration)

    # On commit the (eager) task makes the first attempt: the receiver answers 500.
    (delivery,) = enqueue_and_commit([case], django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert len(receiver.requests) == 1
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.last_status_code == 500
    first = WebhookAttempt.objects.get(delivery=delivery)
    assert first.status_code == 500
    # Status line only: the receiver's reply body is never stored.
    assert first.error == "HTTP 500 Internal Server Error"
    assert "receiver says no" not in delivery.last_error
    assert delivery.next_attempt_at == first.attempted_at + timedelta(seconds=10)

    # Not due yet: the sweeper leaves it alone.
    assert webhooks_sweep(now=first.attempted_at + timedelta(seconds=9)) == 0
    assert len(receiver.requests) == 1

    # The secret is rotated meanwhile: the retry is signed with the current one.
    integration_rotate_secret(actor=None, user=integration)
    new_secret = secret_of(integration)
    assert new_secret != old_secret
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks_sweep(now=first.attempted_at + timedelta(seconds=11)) == 1

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 2
    assert delivery.last_status_code == 200
    assert delivery.delivered_at is not None
    assert list(delivery.attempt_log.values_list("status_code", flat=True)) == [500, 200]

    stored = delivery.body.encode("utf-8")
    for request, secret in zip(receiver.requests, [old_secret, new_secret], strict=True):
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert request["path"] == "/hooks/hitl"
        assert request["body"] == stored
        assert headers["x-hitl-signature"] == expected_signature(request["body"], secret)
        assert headers["x-hitl-delivery"] == str(delivery.uuid)
        # Standard Webhooks, checked by the spec's own library with the secret as issued.
        assert secret.startswith("whsec_")
        assert Webhook(secret).verify(request["body"], headers)["case"]["id"] == case.pk
        assert headers["webhook-id"] == str(delivery.uuid)
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"] == "hitl-portal-webhooks/1"
    payload = json.loads(receiver.requests[1]["body"])
    assert payload["event"] == "case.auto_accepted"
    assert payload["case"]["id"] == case.pk

    event = AuditEvent.objects.get(action="webhook.delivered")
    assert event.case_id == case.pk
    assert event.actor_type == "system"
    assert receiver.url not in (event.payload or "")  # the URL may carry secrets; only the host is kept
    assert not AuditEvent.objects.filter(action="webhook.failed").exists()


def test_a_delivered_row_is_never_sent_again(
    make_case: Callable[..., Case], receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    (delivery,) = enqueue_and_commit([make_case(callback_url=receiver.url)], django_capture_on_commit_callbacks)
    assert len(receiver.requests) == 1
    # A re-delivered task (acks_late) and later sweeps find nothing to do.
    assert deliver_webhooks.apply(args=[[delivery.pk]]).get() == 0
    assert webhooks_deliver(delivery_ids=[delivery.pk], now=timezone.now() + timedelta(days=1)) == 0
    assert sweep_webhooks.apply().get() == 0
    assert webhooks_sweep(now=timezone.now() + timedelta(days=1)) == 0
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 1
    assert len(receiver.requests) == 1
    assert AuditEvent.objects.filter(action="webhook.delivered").count() == 1


def test_gives_up_after_max_attempts_with_exponential_backoff(
    make_case: Callable[..., Case], receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    receiver.default_status = 503
    with mock.patch(DELAY):
        (delivery,) = enqueue_and_commit([make_case(callback_url=receiver.url)], django_capture_on_commit_callbacks)
    now = timezone.now()
    waits = []
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(max_attempts()):
            assert webhooks_sweep(now=now) == 1
            delivery.refresh_from_db()
            if delivery.status == DeliveryStatus.PENDING:
                waits.append((delivery.next_attempt_at - now).total_seconds())
                now = delivery.next_attempt_at
    assert waits == [10, 20, 40, 80, 160, 320, 640]
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == max_attempts() == 8
    assert delivery.attempt_log.count() == 8
    assert len(receiver.requests) == 8
    event = AuditEvent.objects.get(action="webhook.failed")
    assert event.case_id == delivery.case_id
    assert json.loads(event.payload)["data"]["status_code"] == 503
    # Given up: the sweeper does not touch it again.
    assert webhooks_sweep(now=now + timedelta(days=1)) == 0
    assert len(receiver.requests) == 8


def test_backoff_is_capped_at_one_hour() -> None:
    assert backoff_delay(1) == timedelta(seconds=10)
    assert backoff_delay(4) == timedelta(seconds=80)
    assert backoff_delay(9) == timedelta(seconds=2560)
    assert backoff_delay(10) == timedelta(hours=1)
    assert backoff_delay(60) == timedelta(hours=1)


def test_connection_refused_is_logged_and_retried(
    make_case: Callable[..., Case], django_capture_on_commit_callbacks: Any
) -> None:
    closed = Receiver()
    url = closed.url
    closed.close()  # nothing listens there any more
    with mock.patch(DELAY):
        (delivery,) = enqueue_and_commit([make_case(callback_url=url)], django_capture_on_commit_callbacks)
    assert webhooks_sweep(now=timezone.now()) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 1
    assert delivery.last_status_code is None
    assert "connection" in delivery.last_error.lower() or "refused" in delivery.last_error.lower()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "file:///etc/passwd"])
def test_non_http_callback_urls_are_refused(
    url: str, make_case: Callable[..., Case], django_capture_on_commit_callbacks: Any
) -> None:
    with mock.patch(DELAY):
        (delivery,) = enqueue_and_commit([make_case(callback_url=url)], django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks_sweep(now=timezone.now()) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert "scheme" in delivery.last_error
    assert delivery.attempt_log.get().status_code is None
    assert AuditEvent.objects.filter(action="webhook.failed", case_id=delivery.case_id).count() == 1


# --- Redeliver (service and admin action) -------------------------------------------


def test_redeliver_resets_audits_and_enqueues_on_commit(
    make_case: Callable[..., Case],
    make_user: Callable[..., User],
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    (delivery,) = enqueue_and_commit([make_case(callback_url=receiver.url)], django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    admin_user = make_user("admin")
    with mock.patch(DELAY) as delay, django_capture_on_commit_callbacks(execute=True):
        webhook_redeliver(actor=admin_user, delivery=delivery)
        delay.assert_not_called()  # only after commit
    delay.assert_called_once_with([delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.attempts == 0
    assert delivery.delivered_at is None
    event = AuditEvent.objects.get(action="webhook.redelivery_requested")
    assert event.actor_name == admin_user.username
    assert event.case_id == delivery.case_id
    # The sweeper sends it again: same delivery id and body, a second attempt in the log.
    assert webhooks_sweep(now=timezone.now()) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]
    assert delivery.attempt_log.count() == 2


def test_admin_redeliver_action_goes_through_the_service(
    make_case: Callable[..., Case],
    make_user: Callable[..., User],
    django_capture_on_commit_callbacks: Any,
) -> None:
    url = "ftp://127.0.0.1/hook"
    with mock.patch(DELAY):
        (delivery,) = enqueue_and_commit([make_case(callback_url=url)], django_capture_on_commit_callbacks)
    webhooks_sweep(now=timezone.now())
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    client = Client()
    client.force_login(make_user("admin", username="root-admin"))
    with mock.patch(DELAY) as delay, django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:reviews_webhookdelivery_changelist"),
            {"action": "redeliver", "_selected_action": [delivery.pk]},
            follow=True,
        )
    assert response.status_code == 200
    assert "queued for redelivery" in response.content.decode()
    delay.assert_called_once_with([delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert AuditEvent.objects.get(action="webhook.redelivery_requested").actor_name == "root-admin"


# --- Admin views ----------------------------------------------------------------------


def test_admin_changelist_and_detail_load_for_a_superuser(
    make_case: Callable[..., Case],
    make_user: Callable[..., User],
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    receiver.statuses = [500]
    (delivery,) = enqueue_and_commit([make_case(callback_url=receiver.url)], django_capture_on_commit_callbacks)
    client = Client()
    client.force_login(make_user("admin"))
    changelist = client.get(reverse("admin:reviews_webhookdelivery_changelist"), {"q": receiver.url})
    assert changelist.status_code == 200
    assert receiver.url in changelist.content.decode()
    assert client.get(
        reverse("admin:reviews_webhookdelivery_changelist"), {"status__exact": "pending"}
    ).status_code == 200
    detail = client.get(reverse("admin:reviews_webhookdelivery_change", args=[delivery.pk]))
    assert detail.status_code == 200
    assert "HTTP 500 Internal Server Error" in detail.content.decode()  # the attempt inline
    assert "receiver says no" not in detail.content.decode()  # never the reply body
    # Read-only: no add, no edit, no delete.
    assert client.get(reverse("admin:reviews_webhookdelivery_add")).status_code == 403
    before = WebhookDelivery.objects.get(pk=delivery.pk)
    client.post(reverse("admin:reviews_webhookdelivery_change", args=[delivery.pk]), {"status": "delivered"})
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == before.status
    assert client.get(reverse("admin:reviews_webhookdelivery_delete", args=[delivery.pk])).status_code == 403


@pytest.mark.parametrize("role", ["reviewer", "integration", "compliance_officer"])
def test_admin_changelist_denied_to_non_staff(role: str, make_user: Callable[..., User]) -> None:
    client = Client()
    client.force_login(make_user(role))
    url = reverse("admin:reviews_webhookdelivery_changelist")
    response = client.get(url)
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_admin_changelist_denied_to_anonymous(db: Any) -> None:
    response = Client().get(reverse("admin:reviews_webhookdelivery_changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


# --- Concurrency (PostgreSQL) -----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sweepers_send_each_delivery_exactly_once(
    make_case: Callable[..., Case], receiver: Receiver
) -> None:
    with mock.patch(DELAY), transaction.atomic():
        deliveries = webhooks_enqueue(cases=[make_case(callback_url=receiver.url) for _ in range(40)])
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def sweeper() -> None:
        try:
            barrier.wait()
            webhooks_sweep(now=timezone.now(), batch=100)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweeper) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sent = [{k.lower(): v for k, v in r["headers"].items()}["x-hitl-delivery"] for r in receiver.requests]
    assert len(sent) == len(set(sent)) == 40
    assert set(sent) == {str(d.uuid) for d in deliveries}
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED, attempts=1).count() == 40
    assert WebhookAttempt.objects.count() == 40


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sweeper_skips_a_row_locked_by_another_worker(make_case: Callable[..., Case], receiver: Receiver) -> None:
    with mock.patch(DELAY), transaction.atomic():
        (delivery,) = webhooks_enqueue(cases=[make_case(callback_url=receiver.url)])
    locked = threading.Event()
    release = threading.Event()

    def holder() -> None:
        try:
            with transaction.atomic():
                list(WebhookDelivery.objects.select_for_update().filter(pk=delivery.pk))
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert locked.wait(timeout=30)
        # Not blocked and not sent: another worker holds the row.
        assert webhooks_sweep(now=timezone.now()) == 0
        assert receiver.requests == []
    finally:
        release.set()
        thread.join()
    assert webhooks_sweep(now=timezone.now()) == 1
    assert len(receiver.requests) == 1
