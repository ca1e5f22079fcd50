"""Identity at the perimeter (issue 11, findings 1-3): lockout, expiring tokens, TOTP, OIDC SSO."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client, override_settings
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import payload_of
from reviews.services.people import user_set_password, user_update
from tests.token_helpers import new_token_key

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

PASSWORD = "pass-word-123"
TOKEN = "/api/v1/auth/token/"
TOKENS = "/api/v1/auth/tokens/"
LIMIT = 5  # AXES_FAILURE_LIMIT's default


@pytest.fixture(autouse=True)
def _fresh_counters() -> Iterator[None]:
    """Failed-login counters and throttles live in the cache (Redis here); each test starts with none."""
    cache.clear()
    yield
    cache.clear()


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def data_of(event: AuditEvent) -> dict[str, Any]:
    return (payload_of(event) or {}).get("data") or {}


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def logged_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


# --- 1. Lockout on every login path -------------------------------------------------------------


@pytest.mark.parametrize("login_url", ["/accounts/login/", "/admin/login/"])
def test_login_pages_lock_out_after_n_failures_until_an_admin_unlocks(make_user: Any, login_url: str) -> None:
    victim = make_user("admin", "victim")
    admin = make_user("admin", "root")
    client = Client(REMOTE_ADDR="203.0.113.7")
    for attempt in range(1, LIMIT + 1):
        response = client.post(login_url, {"username": "victim", "password": f"wrong-{attempt}"})
        assert response.status_code == (429 if attempt == LIMIT else 200), attempt
    assert b"Login locked" in response.content
    # The right password is refused while locked, from this address and from another one.
    for address in ("203.0.113.7", "198.51.100.9"):
        locked = Client(REMOTE_ADDR=address)
        response = locked.post(login_url, {"username": "victim", "password": PASSWORD})
        assert response.status_code == 429 and logged_in_user_id(locked) is None
    [event] = events("user.locked_out")  # one event per lockout, not one per refused attempt
    assert event.actor_type == "system" and event.object_label == "victim"
    assert data_of(event)["ip_address"] == "203.0.113.7" and data_of(event)["failures"] == LIMIT
    assert PASSWORD not in event.payload and "wrong-" not in event.payload

    console = Client()
    console.force_login(admin)
    response = console.post("/admin/auth/user/", {
        "action": "unlock_logins", "_selected_action": [victim.pk], "post": "yes", "reason": "Owner called.",
    })
    assert response.status_code == 302
    [unlocked] = events("user.unlocked")
    assert (unlocked.actor_name, unlocked.reason, unlocked.object_label) == ("root", "Owner called.", "victim")
    assert data_of(unlocked)["ip_addresses"] == ["203.0.113.7"]

    again = Client(REMOTE_ADDR="203.0.113.7")
    response = again.post(login_url, {"username": "victim", "password": PASSWORD})
    assert response.status_code == 302 and logged_in_user_id(again) == str(victim.pk)


def test_the_unlock_action_needs_a_reason_and_an_admin(make_user: Any) -> None:
    victim = make_user("reviewer", "rev")
    officer = make_user("compliance_officer", "off")
    client = Client()
    client.force_login(officer)
    response = client.post("/admin/auth/user/", {"action": "unlock_logins", "_selected_action": [victim.pk],
                                                 "post": "yes", "reason": "x"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert events("user.unlocked") == []
    admin_client = Client()
    admin_client.force_login(make_user("admin", "root"))
    response = admin_client.post("/admin/auth/user/", {"action": "unlock_logins", "_selected_action": [victim.pk],
                                                       "post": "yes", "reason": ""})
    assert response.status_code == 200 and b"This field is required" in response.content
    assert events("user.unlocked") == []


def test_one_address_guessing_many_names_is_locked_out(make_user: Any) -> None:
    make_user("manager", "maria")
    client = Client(REMOTE_ADDR="192.0.2.50")
    for index in range(LIMIT):
        client.post("/accounts/login/", {"username": f"guess{index}", "password": "nope-nope"})
    response = client.post("/accounts/login/", {"username": "maria", "password": PASSWORD})
    assert response.status_code == 429 and logged_in_user_id(client) is None
    # Another address still logs maria in: her user name was never guessed LIMIT times.
    other = Client(REMOTE_ADDR="192.0.2.51")
    assert other.post("/accounts/login/", {"username": "maria", "password": PASSWORD}).status_code == 302


def test_token_endpoint_shares_the_lockout_and_keeps_its_throttle(make_user: Any, anon_client: APIClient) -> None:
    make_user("integration", "bot")
    for attempt in range(1, LIMIT + 1):
        response = anon_client.post(TOKEN, {"username": "bot", "password": "wrong-pass"}, format="json",
                                    REMOTE_ADDR="10.1.1.1")
        assert response.status_code == (429 if attempt == LIMIT else 400), attempt
    assert response.json()["code"] == "locked_out" and "Retry-After" in response
    right = anon_client.post(TOKEN, {"username": "bot", "password": PASSWORD}, format="json", REMOTE_ADDR="10.1.1.2")
    assert right.status_code == 429 and right.json()["code"] == "locked_out"
    assert not AuthToken.objects.exists()
    assert len(events("user.locked_out")) == 1
    # Failures on the login page count for the API too (one lockout for every path).
    make_user("manager", "maria")
    page = Client(REMOTE_ADDR="10.2.2.2")
    for _ in range(LIMIT):
        page.post("/accounts/login/", {"username": "maria", "password": "wrong-pass"})
    api = anon_client.post(TOKEN, {"username": "maria", "password": PASSWORD}, format="json", REMOTE_ADDR="10.3.3.3")
    assert api.status_code == 429 and api.json()["code"] == "locked_out"


def test_lockout_ends_after_the_cool_off(make_user: Any) -> None:
    make_user("reviewer", "rita")
    with override_settings(AXES_COOLOFF_TIME=dt.timedelta(seconds=2)):
        client = Client(REMOTE_ADDR="192.0.2.9")
        for _ in range(LIMIT):
            client.post("/accounts/login/", {"username": "rita", "password": "wrong-pass"})
        assert client.post("/accounts/login/", {"username": "rita", "password": PASSWORD}).status_code == 429
        time.sleep(2.2)
        assert client.post("/accounts/login/", {"username": "rita", "password": PASSWORD}).status_code == 302


# --- 2. Expiring, hashed, revocable tokens ---------------------------------------------------------


def obtain(client: APIClient, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(TOKEN, {"username": username, "password": password, **extra}, format="json")


def test_a_token_dies_when_the_password_changes(make_user: Any, anon_client: APIClient) -> None:
    user = make_user("manager", "maria")
    admin = make_user("admin", "root")
    key = obtain(anon_client, "maria").json()["token"]
    assert token_client(key).get("/api/v1/systems/").status_code == 200
    user_set_password(actor=admin, user=user, password="a-brand-new-passphrase")
    response = token_client(key).get("/api/v1/systems/")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    [event] = events("user.token_revoked")
    assert data_of(event)["cause"] == "password_changed" and event.actor_name == "root"
    assert data_of(event)["tokens"] == [key[:15]] and key not in event.payload


def test_a_token_dies_on_deactivation_and_on_a_role_change(make_user: Any) -> None:
    admin = make_user("admin", "root")
    leaver = make_user("reviewer", "leaver")
    mover = make_user("reviewer", "mover")
    leaver_key, mover_key = new_token_key(leaver), new_token_key(mover)
    user_update(actor=admin, user=leaver, changes={"is_active": False}, reason="Left the company.")
    user_update(actor=admin, user=mover, changes={}, role="manager", reason="Promoted.")
    assert not AuthToken.objects.filter(user__in=[leaver, mover]).exists()
    assert token_client(leaver_key).get("/api/v1/systems/").status_code == 401
    assert token_client(mover_key).get("/api/v1/systems/").status_code == 401
    causes = sorted(data_of(e)["cause"] for e in events("user.token_revoked"))
    assert causes == ["deactivated", "role_changed"]
    # A change that touches neither keeps the tokens.
    stays = make_user("reviewer", "stays")
    key = new_token_key(stays)
    user_update(actor=admin, user=stays, changes={"email": "s@example.org"}, reason="Typo.")
    assert token_client(key).get("/api/v1/systems/").status_code == 200


def test_tokens_expire_and_roll_forward_on_use(make_user: Any, anon_client: APIClient, settings: Any) -> None:
    make_user("manager", "maria")
    body = obtain(anon_client, "maria").json()
    key = body["token"]
    token = AuthToken.objects.get(token_key=key[:15])
    expected = timezone.now() + settings.HITL_TOKEN_TTL
    assert abs((token.expiry - expected).total_seconds()) < 60
    # Used with a minute left: the expiry moves to now + TTL.
    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() + dt.timedelta(minutes=1))
    assert token_client(key).get("/api/v1/systems/").status_code == 200
    token.refresh_from_db()
    assert abs((token.expiry - (timezone.now() + settings.HITL_TOKEN_TTL)).total_seconds()) < 60
    # Never past the maximum lifetime from issue.
    created = timezone.now() - settings.HITL_TOKEN_MAX_LIFETIME + dt.timedelta(hours=1)
    AuthToken.objects.filter(pk=token.pk).update(created=created, expiry=timezone.now() + dt.timedelta(minutes=1))
    assert token_client(key).get("/api/v1/systems/").status_code == 200
    token.refresh_from_db()
    assert token.expiry == created + settings.HITL_TOKEN_MAX_LIFETIME
    # Expired: refused, and not revived by trying.
    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - dt.timedelta(seconds=1))
    response = token_client(key).get("/api/v1/systems/")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


def test_integration_tokens_are_long_lived_and_do_not_roll(make_user: Any, anon_client: APIClient,
                                                          settings: Any) -> None:
    make_user("integration", "bot")
    key = obtain(anon_client, "bot").json()["token"]
    token = AuthToken.objects.get(token_key=key[:15])
    assert abs((token.expiry - timezone.now() - settings.HITL_TOKEN_TTL_INTEGRATION).total_seconds()) < 60
    soon = timezone.now() + dt.timedelta(minutes=5)
    AuthToken.objects.filter(pk=token.pk).update(expiry=soon)
    assert token_client(key).get("/api/v1/systems/").status_code == 200
    token.refresh_from_db()
    assert token.expiry == soon


def test_a_user_lists_and_revokes_only_their_own_tokens(make_user: Any) -> None:
    maria = make_user("manager", "maria")
    other = make_user("reviewer", "rita")
    first, second = new_token_key(maria), new_token_key(maria)
    foreign = new_token_key(other)
    client = token_client(first)
    listed = client.get(TOKENS)
    assert listed.status_code == 200
    results = listed.json()["results"]
    assert sorted(r["id"] for r in results) == sorted([first[:15], second[:15]])
    assert [r["current"] for r in results if r["id"] == first[:15]] == [True]
    assert all(set(r) == {"id", "created", "expiry", "current"} for r in results)
    assert first not in listed.content.decode() and foreign[:15] not in listed.content.decode()
    # Someone else's token: 404, and it keeps working.
    denied = client.delete(f"{TOKENS}{foreign[:15]}/")
    assert denied.status_code == 404 and denied.json()["code"] == "not_found"
    assert token_client(foreign).get("/api/v1/systems/").status_code == 200
    # One's own: gone at once.
    assert client.delete(f"{TOKENS}{second[:15]}/").status_code == 204
    assert token_client(second).get("/api/v1/systems/").status_code == 401
    [event] = events("user.token_revoked")
    assert (event.actor_name, data_of(event)) == ("maria", {"token": second[:15], "cause": "owner"})
    for junk in ("%00", "x" * 200, "a%20b"):
        assert client.delete(f"{TOKENS}{junk}/").status_code == 404, junk
    assert APIClient().get(TOKENS).status_code == 401
    assert APIClient().delete(f"{TOKENS}{first[:15]}/").status_code == 401


def test_an_officer_rotates_an_integration_token(make_user: Any, api_client_for: Any) -> None:
    bot = make_user("integration", "bot")
    old = new_token_key(bot)
    officer = api_client_for("compliance_officer")
    url = "/api/v1/users/bot/rotate-token/"
    assert officer.post(url, {}, format="json").json()["reason"]
    response = officer.post(url, {"reason": "Key seen in a CI log."}, format="json")
    assert response.status_code == 200
    new = response.json()["token"]
    assert response.json()["expiry"] is not None
    assert token_client(old).get("/api/v1/systems/").status_code == 401
    assert token_client(new).get("/api/v1/systems/").status_code == 200
    revoked, issued = events("user.token_revoked")[-1], events("user.token_issued")[-1]
    assert revoked.actor_name == issued.actor_name == officer.user.username
    assert issued.reason == "Key seen in a CI log." and new not in issued.payload and old not in revoked.payload
    # Reviewers may not; people's tokens are not rotated here; unknown users are 404.
    assert api_client_for("reviewer").post(url, {"reason": "x"}, format="json").status_code == 403
    make_user("manager", "maria")
    not_integration = officer.post("/api/v1/users/maria/rotate-token/", {"reason": "x"}, format="json")
    assert not_integration.status_code == 400 and "username" in not_integration.json()
    assert officer.post("/api/v1/users/ghost/rotate-token/", {"reason": "x"}, format="json").status_code == 404


def test_passwords_like_the_user_name_are_refused(api_client_for: Any) -> None:
    response = api_client_for("admin").post("/api/v1/users/", {
        "username": "margaret.hamilton", "password": "margaret.hamilton1", "role": "manager",
    }, format="json")
    assert response.status_code == 400 and "too similar" in " ".join(response.json()["password"])


def test_existing_drf_tokens_are_moved_hashed(make_user: Any) -> None:
    """The data migration's copy: a DRF key keeps working from knox's table (only its digest stored)."""
    import importlib

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("reviews.migrations.0005_api_tokens_to_knox")
    user = make_user("integration", "legacy")
    legacy_key = "0123456789abcdef0123456789abcdef01234567"  # DRF's 40 hex characters
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer, "
                       "created timestamptz)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, now())", [legacy_key, user.pk])
    with connection.schema_editor() as editor:
        migration._move_tokens(apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    stored = AuthToken.objects.get(user=user)
    assert stored.token_key == legacy_key[:15] and legacy_key not in stored.digest
    assert token_client(legacy_key).get("/api/v1/systems/").status_code == 200


# --- 3a. TOTP second factor -----------------------------------------------------------------------


def code_for(device: TOTPDevice, steps_ahead: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def password_login(client: Client, username: str) -> Any:
    return client.post("/accounts/login/", {"username": username, "password": PASSWORD})


@override_settings(HITL_REQUIRE_MFA=True)
def test_an_officer_must_enrol_and_verify_totp_when_required(make_user: Any) -> None:
    officer = make_user("compliance_officer", "olga")
    client = Client()
    assert password_login(client, "olga").status_code == 302
    response = client.get("/dashboard/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/?next=")
    api = client.get("/api/v1/systems/")
    assert api.status_code == 403 and api.json()["code"] == "mfa_required"
    page = client.get("/accounts/mfa/")
    device = TOTPDevice.objects.get(user=officer, confirmed=False)
    assert page.status_code == 200 and device.config_url.encode().replace(b"&", b"&amp;") in page.content
    assert client.post("/accounts/mfa/", {"code": "000000", "next": "/dashboard/"}).status_code == 200
    response = client.post("/accounts/mfa/", {"code": code_for(device), "next": "/dashboard/"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200
    [event] = events("user.mfa_enrolled")
    assert event.actor_name == "olga" and device.bin_key.hex() not in event.payload

    # Next login: the verify step, not a new enrolment.
    fresh = Client()
    password_login(fresh, "olga")
    response = fresh.get("/dashboard/")
    assert response["Location"].startswith("/accounts/mfa/verify/")
    # An unverified session may not add a device of its own.
    assert fresh.get("/accounts/mfa/")["Location"].startswith("/accounts/mfa/verify/")
    device.refresh_from_db()
    assert fresh.post("/accounts/mfa/verify/", {"code": "123456"}).status_code == 200
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.save()
    assert fresh.post("/accounts/mfa/verify/", {"code": code_for(device, 1), "next": "/dashboard/"}).status_code == 302
    assert fresh.get("/dashboard/").status_code == 200
    assert TOTPDevice.objects.filter(user=officer).count() == 1


@override_settings(HITL_REQUIRE_MFA=True)
def test_a_reviewer_needs_no_second_factor_and_admins_do_in_the_console(make_user: Any) -> None:
    make_user("reviewer", "rita")
    client = Client()
    password_login(client, "rita")
    assert client.get("/review/").status_code == 200
    make_user("admin", "root")
    admin = Client()
    assert admin.post("/admin/login/", {"username": "root", "password": PASSWORD, "next": "/admin/"}).status_code == 302
    assert admin.get("/admin/")["Location"].startswith("/accounts/mfa/")


def test_without_the_setting_officers_need_no_second_factor(make_user: Any) -> None:
    make_user("compliance_officer", "olga")
    client = Client()
    password_login(client, "olga")
    assert client.get("/dashboard/").status_code == 200


@override_settings(HITL_REQUIRE_MFA=True)
def test_the_token_endpoint_asks_officers_for_the_code(make_user: Any, anon_client: APIClient) -> None:
    officer = make_user("compliance_officer", "olga")
    assert obtain(anon_client, "olga").json()["otp"]
    device = TOTPDevice.objects.create(user=officer, name="app", confirmed=True)
    assert "otp" in obtain(anon_client, "olga", otp="000000").json()
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.save()
    response = obtain(anon_client, "olga", otp=code_for(device))
    assert response.status_code == 200 and len(response.json()["token"]) == 64
    make_user("reviewer", "rita")
    assert obtain(anon_client, "rita").status_code == 200


def test_an_admin_resets_a_lost_second_factor(make_user: Any) -> None:
    officer = make_user("compliance_officer", "olga")
    TOTPDevice.objects.create(user=officer, name="app", confirmed=True)
    console = Client()
    console.force_login(make_user("admin", "root"))
    response = console.post("/admin/auth/user/", {"action": "reset_mfa", "_selected_action": [officer.pk],
                                                  "post": "yes", "reason": "Phone lost."})
    assert response.status_code == 302 and not TOTPDevice.objects.filter(user=officer).exists()
    [event] = events("user.mfa_reset")
    assert event.reason == "Phone lost." and data_of(event)["devices_removed"] == 1


# --- 3b. OpenID Connect single sign-on against a real provider -------------------------------------


@pytest.fixture
def oidc_provider() -> Iterator[str]:
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread(require_client_registration=True, require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def sso(oidc_provider: str) -> Iterator[str]:
    registered = requests.post(f"{oidc_provider}/oauth2/clients", json={
        "redirect_uris": ["http://testserver/accounts/sso/callback/"],
        "token_endpoint_auth_method": "client_secret_post",
    }, timeout=10)
    assert registered.status_code == 201
    client = registered.json()
    backends = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend",
                "reviews.oidc.PortalOIDCBackend"]
    with override_settings(
        OIDC_ENABLED=True, OIDC_RP_CLIENT_ID=client["client_id"], OIDC_RP_CLIENT_SECRET=client["client_secret"],
        OIDC_OP_AUTHORIZATION_ENDPOINT=f"{oidc_provider}/oauth2/authorize",
        OIDC_OP_TOKEN_ENDPOINT=f"{oidc_provider}/oauth2/token",
        OIDC_OP_USER_ENDPOINT=f"{oidc_provider}/userinfo", OIDC_OP_JWKS_ENDPOINT=f"{oidc_provider}/jwks",
        AUTHENTICATION_BACKENDS=backends,
        # oidc-provider-mock signs with its one key and names no ``kid`` in the token header.
        OIDC_VERIFY_KID=False,
        HITL_OIDC_ROLE_CLAIM="groups",
        HITL_OIDC_ROLE_MAP={"hitl-officers": "compliance_officer", "hitl-reviewers": "reviewer",
                            "hitl-bots": "integration"},
    ):
        yield oidc_provider


def sso_login(provider: str, sub: str, claims: dict[str, Any]) -> tuple[Client, Any]:
    """The browser's round trip, without a browser: portal → provider's form → callback → portal."""
    assert requests.put(f"{provider}/users/{sub}", json=claims, timeout=10).status_code == 204
    client = Client()
    start = client.get("/accounts/sso/login/?next=/review/")
    assert start.status_code == 302 and start["Location"].startswith(f"{provider}/oauth2/authorize?")
    consent = requests.post(start["Location"], data={"sub": sub}, allow_redirects=False, timeout=10)
    assert consent.status_code == 302
    callback = consent.headers["Location"]
    assert callback.startswith("http://testserver/accounts/sso/callback/?")
    return client, client.get(callback.removeprefix("http://testserver"))


def test_sso_creates_the_user_just_in_time_with_the_mapped_role(sso: str) -> None:
    client, response = sso_login(sso, "sub-1", {
        "email": "rita@example.org", "preferred_username": "rita.sso", "groups": ["staff", "hitl-reviewers"],
    })
    assert response.status_code == 302 and response["Location"] == "/review/"
    user = User.objects.get(username="rita.sso")
    assert list(user.groups.values_list("name", flat=True)) == ["reviewer"]
    assert not user.has_usable_password() and user.email == "rita@example.org"
    assert client.get("/review/").status_code == 200
    [created] = events("user.created")
    assert created.actor_name == "rita.sso" and data_of(created) == {"source": "oidc"}

    # The provider moves her to the officers: the next login follows, audited.
    client, response = sso_login(sso, "sub-1", {
        "email": "rita@example.org", "preferred_username": "rita.sso", "groups": ["hitl-officers"],
    })
    assert response.status_code == 302
    user.refresh_from_db()
    assert list(user.groups.values_list("name", flat=True)) == ["compliance_officer"]
    assert '"role":"compliance_officer"' in events("user.updated")[-1].payload


def test_sso_refuses_unmapped_people_and_never_takes_over_a_local_account(sso: str, make_user: Any) -> None:
    client, response = sso_login(sso, "sub-2", {"email": "x@example.org", "preferred_username": "xavier",
                                                "groups": ["staff"]})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?sso=failed"
    assert not User.objects.filter(username="xavier").exists() and logged_in_user_id(client) is None
    # Integrations never come through SSO.
    client, response = sso_login(sso, "sub-3", {"email": "b@example.org", "preferred_username": "botty",
                                                "groups": ["hitl-bots"]})
    assert response["Location"] == "/accounts/login/?sso=failed"
    # A local administrator with a password is not signed into by a matching claim.
    make_user("admin", "root")
    client, response = sso_login(sso, "sub-4", {"email": "r@example.org", "preferred_username": "root",
                                                "groups": ["hitl-officers"]})
    assert response["Location"] == "/accounts/login/?sso=failed" and logged_in_user_id(client) is None


def test_a_provider_answering_garbage_is_a_failed_login_not_a_500(sso: str) -> None:
    with override_settings(OIDC_VERIFY_KID=True):  # the mock's tokens name no key id: unverifiable here
        _, response = sso_login(sso, "sub-5", {"email": "k@example.org", "preferred_username": "kim",
                                               "groups": ["hitl-reviewers"]})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?sso=failed"
    assert not User.objects.filter(username="kim").exists()


def test_sso_pages_are_404_when_not_configured() -> None:
    client = Client()
    assert client.get("/accounts/sso/login/").status_code == 404
    assert client.get("/accounts/sso/callback/?code=x&state=y").status_code == 404
    assert b"single sign-on" not in client.get("/accounts/login/").content


def test_the_login_page_offers_sso_when_configured(sso: str) -> None:
    assert b"Log in with single sign-on" in Client().get("/accounts/login/").content
