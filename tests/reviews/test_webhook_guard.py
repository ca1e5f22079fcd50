"""The webhook SSRF guard and Standard Webhooks signatures, end to end on PostgreSQL.

A real listener on 127.0.0.1 stands for an internal service: a callback that
points there (as an IP literal, as ``localhost``, or as a public-looking DNS
name that resolves to it) must be refused at submission where that can be
decided, and refused at send time otherwise, with the listener seeing nothing.
DNS is faked by patching ``socket.getaddrinfo`` for made-up names only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
import requests
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from audit.models import AuditEvent
from reviews.models import AISystem, Case, CaseStatus, DeliveryStatus, InterventionPoint, Resolution, WebhookDelivery
from reviews.services.people import integration_rotate_secret
from reviews.services.webhook_guard import (
    DestinationRefused,
    PinnedAddressAdapter,
    address_problem,
    allow_list,
    callback_url_problem,
    resolve_checked,
)
from reviews.services.webhooks import signing_key, webhooks_enqueue, webhooks_sweep
from tests.reviews.webhook_helpers import Receiver

pytestmark = pytest.mark.postgres

DELAY = "reviews.tasks_webhooks.deliver_webhooks.delay"
REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.close()


def fake_dns(names: dict[str, list[str] | Callable[[], list[str]]]) -> Any:
    """Patch name resolution for the given made-up names; everything else resolves for real."""

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host in names:
            answer = names[host]
            addresses = answer() if callable(answer) else answer
            return [
                (
                    socket.AF_INET6 if ":" in address else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (address, int(port or 0)) if ":" not in address else (address, int(port or 0), 0, 0),
                )
                for address in addresses
            ]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    return mock.patch("socket.getaddrinfo", side_effect=getaddrinfo)


# --- Which addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fc00::5", "private"),
        ("fd12:3456::1", "private"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "not a public"),  # carrier-grade NAT
        ("192.0.2.10", "private"),  # documentation range
        ("64:ff9b::7f00:1", "not a public"),  # NAT64 of 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address: str, why: str, settings: Any) -> None:
    settings.HITL_WEBHOOK_ALLOW = []
    problem = address_problem(ipaddress.ip_address(address))
    assert problem is not None and why in problem


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str, settings: Any) -> None:
    settings.HITL_WEBHOOK_ALLOW = []
    assert address_problem(ipaddress.ip_address(address)) is None


def test_allow_list_takes_cidrs_and_host_names(settings: Any) -> None:
    settings.HITL_WEBHOOK_ALLOW = ["10.20.0.0/16", "127.0.0.1", "Hooks.Corp.Example."]
    allowed = allow_list()
    assert address_problem(ipaddress.ip_address("10.20.3.4")) is None
    assert address_problem(ipaddress.ip_address("127.0.0.1")) is None
    assert address_problem(ipaddress.ip_address("10.21.0.1")) is not None  # outside the allowed network
    assert address_problem(ipaddress.ip_address("169.254.169.254")) is not None
    assert allowed.allows_host("hooks.corp.example")
    assert not allowed.allows_host("corp.example")


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "300.1.2.3", "fe80::zz"])
def test_a_malformed_allow_list_entry_is_a_configuration_error(entry: str, settings: Any) -> None:
    settings.HITL_WEBHOOK_ALLOW = [entry]
    with pytest.raises(ImproperlyConfigured, match="HITL_WEBHOOK_ALLOW"):
        allow_list()


def test_a_malformed_allow_list_stops_the_start(db: Any) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hitl_portal.settings",
           "HITL_WEBHOOK_ALLOW": "hooks.corp.example,10.0.0.0/33"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode != 0
    assert "HITL_WEBHOOK_ALLOW" in result.stderr and "10.0.0.0/33" in result.stderr


# --- At submission ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.5/hook",
        "https://192.168.1.1/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "https://user:password@example.org/hook",
        "https://token@example.org/hook",
        "gopher://example.org/hook",
    ],
)
def test_callback_url_problems_decidable_at_submission(url: str, settings: Any) -> None:
    settings.HITL_WEBHOOK_ALLOW = []
    assert callback_url_problem(url) is not None


@pytest.mark.parametrize("url", ["https://example.org/hook", "http://hooks.example.com:8443/x?y=1"])
def test_public_names_pass_at_submission(url: str, settings: Any) -> None:
    settings.HITL_WEBHOOK_ALLOW = []
    assert callback_url_problem(url) is None


@pytest.fixture
def system(db: Any) -> AISystem:
    return AISystem.objects.create(slug="credit-scoring", name="Credit scoring", labels=["approve", "reject"])


@pytest.fixture
def point(system: AISystem) -> InterventionPoint:
    return InterventionPoint.objects.create(system=system, slug="loan-review", name="Loan review")


def submission(external_id: str, callback_url: str) -> dict[str, Any]:
    return {
        "system": "credit-scoring",
        "intervention_point": "loan-review",
        "external_id": external_id,
        "input": {"amount": 100},
        "prediction": {"label": "approve", "confidence": 0.99},
        "callback_url": callback_url,
    }


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:{port}/hooks/hitl", "http://localhost:{port}/hooks/hitl", "http://[::1]:{port}/x",
     "http://169.254.169.254/latest/meta-data/iam/", "https://admin:pw@example.org/hook"],
)
def test_single_ingest_refuses_a_non_public_callback_url_and_nothing_is_sent(
    url: str, point: InterventionPoint, api_client_for: Callable[..., Any], receiver: Receiver, settings: Any
) -> None:
    settings.HITL_WEBHOOK_ALLOW = []
    client = api_client_for("integration", systems=["credit-scoring"])
    port = receiver.server.server_address[1]
    response = client.post("/api/v1/cases/", submission("app-1", url.format(port=port)), format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["callback_url"]
    assert not Case.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert receiver.requests == []


def test_batch_ingest_refuses_the_bad_item_and_accepts_the_good_one(
    point: InterventionPoint, api_client_for: Callable[..., Any], receiver: Receiver, settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.HITL_WEBHOOK_ALLOW = []
    client = api_client_for("integration", systems=["credit-scoring"])
    body = {"cases": [submission("bad", receiver.url), submission("good", "https://example.org/hook")]}
    with mock.patch(DELAY), django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/cases/batch/", body, format="json")
    assert response.status_code == 207
    bad, good = response.json()["results"]
    assert bad["external_id"] == "bad" and list(bad["error"]) == ["callback_url"]
    assert good["status"] == CaseStatus.AUTO_ACCEPTED
    assert list(Case.objects.values_list("external_id", flat=True)) == ["good"]
    assert receiver.requests == []


def test_an_allow_listed_loopback_receiver_is_accepted_and_receives_the_delivery(
    point: InterventionPoint, api_client_for: Callable[..., Any], receiver: Receiver, settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.HITL_WEBHOOK_ALLOW = ["127.0.0.0/8"]
    client = api_client_for("integration", systems=["credit-scoring"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/cases/", submission("app-1", receiver.url), format="json")
    assert response.status_code == 201
    assert len(receiver.requests) == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert AuditEvent.objects.filter(action="webhook.delivered", case_id=delivery.case_id).count() == 1


# --- At send time ---------------------------------------------------------------------------


@pytest.fixture
def integration(make_user: Callable[..., User], system: AISystem) -> User:
    return make_user("integration", systems=[system.slug])


def stored_case(point: InterventionPoint, integration: User, callback_url: str, external_id: str = "app-1") -> Case:
    """A case stored directly (as if accepted before the submission check, or by a DB writer)."""
    return Case.objects.create(
        system=point.system, intervention_point=point, external_id=external_id, submitted_by=integration,
        input={"amount": 1}, prediction_label="approve", prediction_confidence=0.9, callback_url=callback_url,
        status=CaseStatus.AUTO_ACCEPTED, resolution=Resolution.AUTO_ACCEPTED, final_label="approve",
    )


def send_now(case: Case, capture: Any) -> WebhookDelivery:
    with mock.patch(DELAY), capture(execute=True), transaction.atomic():
        (delivery,) = webhooks_enqueue(cases=[case])
    assert webhooks_sweep() == 1
    delivery.refresh_from_db()
    return delivery


def assert_refused(delivery: WebhookDelivery, receiver: Receiver, why: str) -> None:
    assert receiver.requests == []  # the listener saw nothing
    assert delivery.status == DeliveryStatus.FAILED  # refused for good, not retried 8 times
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("refused:") and why in delivery.last_error
    event = AuditEvent.objects.get(action="webhook.failed", case_id=delivery.case_id)
    data = json.loads(event.payload)["data"]
    assert data["status_code"] is None and why in data["error"]


def test_a_stored_loopback_callback_is_refused_at_send_time(
    point: InterventionPoint, integration: User, receiver: Receiver, settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.HITL_WEBHOOK_ALLOW = []
    delivery = send_now(stored_case(point, integration, receiver.url), django_capture_on_commit_callbacks)
    assert_refused(delivery, receiver, "loopback")


def test_a_public_looking_name_resolving_to_loopback_is_refused_at_send_time(
    point: InterventionPoint, integration: User, receiver: Receiver, settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.HITL_WEBHOOK_ALLOW = []
    port = receiver.server.server_address[1]
    url = f"http://hooks.attacker.example:{port}/hooks/hitl"
    assert callback_url_problem(url) is None  # nothing to refuse without DNS
    with fake_dns({"hooks.attacker.example": ["127.0.0.1"]}):
        delivery = send_now(stored_case(point, integration, url), django_capture_on_commit_callbacks)
    assert_refused(delivery, receiver, "loopback")
    assert "127.0.0.1" in delivery.last_error


def test_a_name_with_one_public_and_one_metadata_address_is_refused(
    point: InterventionPoint, integration: User, receiver: Receiver, settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.HITL_WEBHOOK_ALLOW = []
    url = "http://mixed.attacker.example/latest/meta-data/"
    with fake_dns({"mixed.attacker.example": ["93.184.215.14", "169.254.169.254"]}):
        delivery = send_now(stored_case(point, integration, url), django_capture_on_commit_callbacks)
    assert_refused(delivery, receiver, "metadata")


def test_dns_rebinding_cannot_switch_the_address_between_check_and_connect(settings: Any) -> None:
    """The name is resolved once; the connection pool is keyed by that address, not the name."""
    settings.HITL_WEBHOOK_ALLOW = []
    answers = iter([["93.184.215.14"], ["127.0.0.1"], ["127.0.0.1"]])
    adapter = PinnedAddressAdapter(is_https_proto=True)
    request = requests.Request("POST", "https://rebind.attacker.example/hook", data=b"{}").prepare()
    with fake_dns({"rebind.attacker.example": lambda: next(answers)}) as resolver:
        host_params, pool_kwargs = adapter.build_connection_pool_key_attributes(request, True)
        named = [call for call in resolver.call_args_list if call.args[0] == "rebind.attacker.example"]
    assert len(named) == 1  # one look-up: the answer that was checked is the one connected to
    assert host_params["host"] == "93.184.215.14"
    assert request.headers["Host"] == "rebind.attacker.example"
    assert pool_kwargs["server_hostname"] == pool_kwargs["assert_hostname"] == "rebind.attacker.example"
    # The next look-up (now rebound to loopback) is refused, not connected to.
    with fake_dns({"rebind.attacker.example": lambda: next(answers)}), pytest.raises(DestinationRefused):
        resolve_checked("rebind.attacker.example", 443)


def test_an_allow_listed_host_name_is_connected_by_its_checked_address_with_its_name(
    point: InterventionPoint, integration: User, receiver: Receiver, settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.HITL_WEBHOOK_ALLOW = ["hooks.onprem.example"]
    port = receiver.server.server_address[1]
    url = f"http://hooks.onprem.example:{port}/hooks/hitl"
    with fake_dns({"hooks.onprem.example": ["127.0.0.1"]}):
        delivery = send_now(stored_case(point, integration, url), django_capture_on_commit_callbacks)
    assert delivery.status == DeliveryStatus.DELIVERED
    (request,) = receiver.requests
    assert request["headers"]["Host"] == f"hooks.onprem.example:{port}"


def test_a_redirect_is_not_followed_and_its_body_is_not_kept(
    point: InterventionPoint, integration: User, receiver: Receiver, settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.HITL_WEBHOOK_ALLOW = ["127.0.0.1/32"]
    receiver.statuses = [302]
    delivery = send_now(stored_case(point, integration, receiver.url), django_capture_on_commit_callbacks)
    assert len(receiver.requests) == 1
    assert delivery.status == DeliveryStatus.PENDING  # retried later, never followed
    assert delivery.last_status_code == 302
    assert delivery.last_error == "HTTP 302 Found"


# --- Standard Webhooks secrets ------------------------------------------------------------------


def test_new_secrets_are_standard_webhooks_secrets(api_client_for: Callable[..., Any], db: Any) -> None:
    admin = api_client_for("admin")
    response = admin.post("/api/v1/users/", {"username": "svc", "password": "pass-word-123",
                                              "role": "integration"}, format="json")
    assert response.status_code == 201
    issued = response.json()["webhook_secret"]
    rotated = admin.post("/api/v1/users/svc/rotate-secret/").json()["webhook_secret"]
    for secret in (issued, rotated):
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
        assert signing_key(secret) == base64.b64decode(secret.removeprefix("whsec_"))
    assert issued != rotated


def test_deliveries_verify_with_standardwebhooks_for_new_legacy_and_hex_secrets(
    point: InterventionPoint, integration: User, receiver: Receiver, settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.HITL_WEBHOOK_ALLOW = ["127.0.0.1/32"]
    profile = integration.integration_profile
    legacy = "whsec_" + "-_" + secrets.token_urlsafe(32)[2:]  # issued before: URL-safe alphabet, no padding
    hex_secret = secrets.token_hex(32)  # a secret set by hand
    current = integration_rotate_secret(actor=None, user=integration)
    for n, secret in enumerate([current, legacy, hex_secret]):
        profile.webhook_secret = secret
        profile.save(update_fields=["webhook_secret"])
        send_now(stored_case(point, integration, receiver.url, external_id=f"app-{n}"),
                 django_capture_on_commit_callbacks)
    assert len(receiver.requests) == 3
    for request, as_given, for_library in zip(
        receiver.requests,
        [current, legacy, hex_secret],
        # A receiver with a pre-release secret translates the URL-safe alphabet once (README).
        [current, "whsec_" + legacy.removeprefix("whsec_").replace("-", "+").replace("_", "/"), hex_secret],
        strict=True,
    ):
        headers = {k.lower(): v for k, v in request["headers"].items()}
        payload = Webhook(for_library).verify(request["body"], headers)
        assert payload["event"] == "case.auto_accepted"
        # The legacy header is unchanged for receivers written before: HMAC of the body with the secret text.
        assert headers["x-hitl-signature"] == "sha256=" + hmac.new(
            as_given.encode(), request["body"], hashlib.sha256
        ).hexdigest()
        # A tampered body fails.
        with pytest.raises(WebhookVerificationError):
            Webhook(for_library).verify(request["body"] + b" ", headers)
