"""REST API of accounts: tokens, users, reviewers (api-v1: "Auth, users, reviewers")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken
from rest_framework.throttling import ScopedRateThrottle

from audit.models import AuditEvent
from hitl_portal.roles import user_role
from reviews.models import IntegrationProfile, ReviewerProfile
from tests.reviews.account_helpers import (
    PASSWORD,
    assert_field_error,
    make_system,
)

TOKEN = "/api/v1/auth/token/"
USERS = "/api/v1/users/"
STRONG_PASSWORD = "a-long-and-unusual-passphrase"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle() -> Iterator[None]:
    """Throttle counters live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def rotate_url(username: str) -> str:
    return f"{USERS}{username}/rotate-secret/"


def reviewer_url(username: str) -> str:
    return f"/api/v1/reviewers/{username}/"


# --- POST /auth/token/ -------------------------------------------------------------------------


def test_valid_credentials_get_a_working_token(anon_client: Any, make_user: Any) -> None:
    user = make_user("manager", "maria")
    response = anon_client.post(TOKEN, {"username": "maria", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert set(response.json()) == {"token", "expiry"}
    stored = AuthToken.objects.get(user=user)
    # Only a digest and the prefix are stored, never the key.
    assert stored.token_key == token[:15] and stored.digest != token and len(token) == 64
    assert response.json()["expiry"] is not None
    [event] = events("user.token_issued")
    assert (event.actor_id, event.actor_name, event.object_id) == (user.pk, "maria", str(user.pk))
    assert token not in (event.payload or "")
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert anon_client.get("/api/v1/systems/").status_code == 200
    user.refresh_from_db()
    assert user.last_login is not None


def test_form_fields_work_like_json(anon_client: Any, make_user: Any) -> None:
    """``curl -d username=… -d password=…`` (application/x-www-form-urlencoded) gets a token too."""
    make_user("manager", "fiona")
    form = "application/x-www-form-urlencoded"
    response = anon_client.post(TOKEN, f"username=fiona&password={PASSWORD}", content_type=form)
    assert response.status_code == 200, response.content
    assert response.json()["token"]
    wrong = anon_client.post(TOKEN, "username=fiona&password=nope", content_type=form)
    assert wrong.status_code == 400
    nul = anon_client.post(TOKEN, "username=fi%00ona&password=x", content_type=form)
    assert nul.status_code == 400
    assert "username" in str(nul.json())


def test_asking_again_issues_another_token_and_both_work(anon_client: Any, make_user: Any) -> None:
    make_user("reviewer", "rita")
    first = anon_client.post(TOKEN, {"username": "rita", "password": PASSWORD}, format="json").json()["token"]
    second = anon_client.post(TOKEN, {"username": "rita", "password": PASSWORD}, format="json").json()["token"]
    assert first != second
    assert len(events("user.token_issued")) == 2
    for key in (first, second):
        anon_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert anon_client.get("/api/v1/systems/").status_code == 200


def test_form_encoded_credentials_are_accepted(anon_client: Any, make_user: Any) -> None:
    make_user("manager", "maria")
    response = anon_client.post(TOKEN, {"username": "maria", "password": PASSWORD}, format="multipart")
    assert response.status_code == 415  # multipart is not a login form
    response = anon_client.post(TOKEN, "username=maria&password=" + PASSWORD,
                                content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and len(response.json()["token"]) == 64
    bad = anon_client.post(TOKEN, "username=maria", content_type="application/x-www-form-urlencoded")
    assert_field_error(bad, "password")


def test_a_stale_authorization_header_does_not_block_login(anon_client: Any, make_user: Any) -> None:
    make_user("integration", "bot")
    anon_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = anon_client.post(TOKEN, {"username": "bot", "password": PASSWORD}, format="json")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"username": "maria", "password": "wrong-password"},
        {"username": "nobody", "password": PASSWORD},
        {"username": "MARIA", "password": PASSWORD},
    ],
)
def test_bad_credentials_are_a_400_naming_the_field(anon_client: Any, make_user: Any, body: dict[str, str]) -> None:
    make_user("manager", "maria")
    response = anon_client.post(TOKEN, body, format="json")
    assert_field_error(response, "password")
    assert not AuthToken.objects.exists()
    assert events("user.token_issued") == []


def test_inactive_users_get_no_token(anon_client: Any, make_user: Any) -> None:
    user = make_user("reviewer", "gone")
    user.is_active = False
    user.save(update_fields=["is_active"])
    response = anon_client.post(TOKEN, {"username": "gone", "password": PASSWORD}, format="json")
    assert_field_error(response, "password")
    # The same answer as a wrong password: the endpoint does not reveal which accounts exist.
    wrong = anon_client.post(TOKEN, {"username": "gone", "password": "nope-nope-nope"}, format="json")
    assert response.json() == wrong.json()
    assert not AuthToken.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD}, "username"),
        ({"username": "maria"}, "password"),
        ({"username": 5, "password": PASSWORD}, "username"),
        ({"username": "maria", "password": ["x"]}, "password"),
        ({"username": "u" * 151, "password": PASSWORD}, "username"),
        ({"username": "maria", "password": PASSWORD, "otp": "1"}, "otp"),
        ([], "non_field_errors"),
    ],
)
def test_malformed_token_requests_name_the_field(anon_client: Any, make_user: Any, body: Any, field: str) -> None:
    make_user("manager", "maria")
    assert_field_error(anon_client.post(TOKEN, body, format="json"), field)


def test_token_endpoint_is_throttled_per_client_address(
    anon_client: Any, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user("manager", "maria")
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "3/min"})
    # A frozen clock: the test does not depend on how fast it runs.
    monkeypatch.setattr(ScopedRateThrottle, "timer", lambda self: 1_000_000.0)
    body = {"username": "maria", "password": "wrong-password"}
    for _ in range(3):
        assert anon_client.post(TOKEN, body, format="json", REMOTE_ADDR="10.0.0.1").status_code == 400
    throttled = anon_client.post(TOKEN, {"username": "maria", "password": PASSWORD}, format="json",
                                 REMOTE_ADDR="10.0.0.1")
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert not AuthToken.objects.exists()
    other = anon_client.post(TOKEN, {"username": "maria", "password": PASSWORD}, format="json",
                             REMOTE_ADDR="10.0.0.2")
    assert other.status_code == 200


def test_token_endpoint_takes_only_post(anon_client: Any) -> None:
    response = anon_client.get(TOKEN)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


# --- POST /users/ -----------------------------------------------------------------------------------


def test_admin_creates_a_reviewer_qualified_for_systems(api_client_for: Any) -> None:
    make_system("credit-scoring")
    make_system("fraud")
    client = api_client_for("admin")
    body = {"username": "rev.one", "password": STRONG_PASSWORD, "role": "reviewer", "email": "rev@ex.org",
            "systems": ["fraud", "credit-scoring"]}
    response = client.post(USERS, body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    user = User.objects.get(username="rev.one")
    assert data == {"id": user.pk, "username": "rev.one", "role": "reviewer", "email": "rev@ex.org",
                    "systems": ["credit-scoring", "fraud"], "webhook_secret": None}
    assert user.check_password(STRONG_PASSWORD)
    assert user_role(user) == "reviewer"
    assert sorted(user.reviewer_profile.qualifications.values_list("slug", flat=True)) == ["credit-scoring", "fraud"]
    [event] = events("user.created")
    assert event.actor_id == client.user.pk
    assert STRONG_PASSWORD not in (event.payload or "")
    assert user.reviewer_profile.history.latest().history_user == client.user


def test_an_integration_gets_its_webhook_secret_once(api_client_for: Any) -> None:
    make_system("credit-scoring")
    client = api_client_for("admin")
    body = {"username": "scoring-backend", "password": STRONG_PASSWORD, "role": "integration",
            "systems": ["credit-scoring"]}
    response = client.post(USERS, body, format="json")
    assert response.status_code == 201, response.json()
    secret = response.json()["webhook_secret"]
    profile = IntegrationProfile.objects.get(user__username="scoring-backend")
    assert secret and secret == profile.webhook_secret
    assert list(profile.systems.values_list("slug", flat=True)) == ["credit-scoring"]
    listing = client.get(USERS).content.decode()
    assert secret not in listing
    assert secret not in "".join(e.payload or "" for e in AuditEvent.objects.all())


@pytest.mark.parametrize("role", ["compliance_officer", "manager", "reviewer", "integration"])
def test_only_admins_create_users(api_client_for: Any, role: str) -> None:
    body = {"username": "newbie", "password": STRONG_PASSWORD, "role": "manager"}
    response = api_client_for(role).post(USERS, body, format="json")
    assert response.status_code == 403
    assert set(response.json()) == {"code", "detail"}
    assert not User.objects.filter(username="newbie").exists()


def test_creating_users_needs_authentication(anon_client: Any) -> None:
    body = {"username": "newbie", "password": STRONG_PASSWORD, "role": "manager"}
    assert anon_client.post(USERS, body, format="json").status_code == 401


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"role": "admin"}, "role"),
        ({"role": "superuser"}, "role"),
        ({"role": None}, "role"),
        ({"password": "short"}, "password"),
        ({"password": "1234567890123"}, "password"),
        ({"password": 1234567890123}, "password"),
        ({"username": "has space"}, "username"),
        ({"username": "taken"}, "username"),
        ({"username": "TAKEN"}, "username"),
        ({"username": ""}, "username"),
        ({"username": "u" * 151}, "username"),
        ({"email": "not-an-address"}, "email"),
        ({"email": 42}, "email"),
        ({"systems": ["no-such-system"]}, "systems"),
        ({"systems": "credit-scoring"}, "systems"),
        ({"systems": ["bad slug"]}, "systems"),
        ({"role": "manager", "systems": ["credit-scoring"]}, "systems"),
        ({"webhook_secret": "mine"}, "webhook_secret"),
        ({"is_superuser": True}, "is_superuser"),
    ],
)
def test_bad_user_input_is_a_400_naming_the_field(
    api_client_for: Any, make_user: Any, overrides: dict[str, Any], field: str
) -> None:
    make_system("credit-scoring")
    make_user("manager", "taken")
    body = {"username": "newbie", "password": STRONG_PASSWORD, "role": "reviewer", **overrides}
    response = api_client_for("admin").post(USERS, body, format="json")
    assert_field_error(response, field)
    assert User.objects.filter(username__in=["newbie", "has space"]).count() == 0


@pytest.mark.parametrize("field", ["username", "password", "role"])
def test_required_user_fields(api_client_for: Any, field: str) -> None:
    body = {"username": "newbie", "password": STRONG_PASSWORD, "role": "manager"}
    body.pop(field)
    assert_field_error(api_client_for("admin").post(USERS, body, format="json"), field)


# --- GET /users/ -----------------------------------------------------------------------------------


def test_admin_lists_users_with_roles_and_systems(api_client_for: Any, make_user: Any) -> None:
    make_system("credit-scoring")
    make_user("reviewer", "r1", systems=["credit-scoring"])
    make_user("integration", "i1", systems=["credit-scoring"])
    make_user("manager", "m1")
    client = api_client_for("admin", username="root")
    response = client.get(USERS)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    by_name = {u["username"]: u for u in body["results"]}
    assert by_name["r1"]["role"] == "reviewer" and by_name["r1"]["systems"] == ["credit-scoring"]
    assert by_name["i1"]["role"] == "integration" and by_name["i1"]["systems"] == ["credit-scoring"]
    assert by_name["m1"]["role"] == "manager" and by_name["m1"]["systems"] == []
    assert by_name["root"]["role"] == "admin"
    assert all("webhook_secret" not in u and "password" not in u for u in body["results"])


def test_user_list_pages_by_cursor_without_n_plus_one(api_client_for: Any, make_user: Any) -> None:
    make_system("credit-scoring")
    client = api_client_for("admin", username="aaa-admin")
    make_user("reviewer", "b-rev", systems=["credit-scoring"])
    make_user("integration", "b-int", systems=["credit-scoring"])
    with CaptureQueriesContext(connection) as few:
        assert client.get(USERS).status_code == 200
    for index in range(3):
        make_user("reviewer", f"c-rev{index}", systems=["credit-scoring"])
        make_user("integration", f"d-int{index}", systems=["credit-scoring"])
        make_user("compliance_officer", f"e-co{index}")
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(USERS).json()["results"]) == 12
    assert len(many) == len(few)
    first = client.get(USERS, {"page_size": 4}).json()
    second = client.get(first["next"]).json()
    names = [u["username"] for u in first["results"] + second["results"]]
    assert names == sorted(names) and len(set(names)) == 8


@pytest.mark.parametrize("role", ["compliance_officer", "manager", "reviewer", "integration"])
def test_only_admins_list_users(api_client_for: Any, role: str) -> None:
    assert api_client_for(role).get(USERS).status_code == 403


def test_listing_users_needs_authentication(anon_client: Any) -> None:
    assert anon_client.get(USERS).status_code == 401


def test_a_bad_cursor_is_not_a_500(api_client_for: Any) -> None:
    response = api_client_for("admin").get(USERS, {"cursor": "garbage\x00", "page_size": "lots"})
    # Bad input, so a 400 naming the parameter (not a 404, as if the list did not exist).
    assert response.status_code == 400
    assert "cursor" in response.json()


# --- POST /users/{username}/rotate-secret/ ------------------------------------------------------


def test_admin_rotates_an_integration_secret(api_client_for: Any, make_user: Any) -> None:
    user = make_user("integration", "bot")
    old = user.integration_profile.webhook_secret
    client = api_client_for("admin")
    response = client.post(rotate_url("bot"))
    assert response.status_code == 200
    new = response.json()["webhook_secret"]
    assert new != old
    user.integration_profile.refresh_from_db()
    assert user.integration_profile.webhook_secret == new
    [event] = events("user.secret_rotated")
    assert event.actor_id == client.user.pk
    assert new not in (event.payload or "") and old not in (event.payload or "")


def test_rotating_a_non_integration_is_a_400_naming_username(api_client_for: Any, make_user: Any) -> None:
    make_user("reviewer", "rita")
    assert_field_error(api_client_for("admin").post(rotate_url("rita")), "username")


@pytest.mark.parametrize("username", ["nobody", "a%00b", "x" * 200])
def test_rotating_for_an_unknown_user_is_a_404(api_client_for: Any, username: str) -> None:
    response = api_client_for("admin").post(rotate_url(username))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("role", ["compliance_officer", "manager", "reviewer", "integration"])
def test_only_admins_rotate_secrets(api_client_for: Any, make_user: Any, role: str) -> None:
    user = make_user("integration", "bot")
    old = user.integration_profile.webhook_secret
    assert api_client_for(role).post(rotate_url("bot")).status_code == 403
    user.integration_profile.refresh_from_db()
    assert user.integration_profile.webhook_secret == old


def test_rotating_needs_authentication(anon_client: Any, make_user: Any) -> None:
    make_user("integration", "bot")
    assert anon_client.post(rotate_url("bot")).status_code == 401


# --- PATCH /reviewers/{username}/ -------------------------------------------------------------------


def test_compliance_officer_suspends_a_reviewer(api_client_for: Any, make_user: Any) -> None:
    make_user("reviewer", "rita")
    client = api_client_for("compliance_officer")
    response = client.patch(reviewer_url("rita"), {"status": "suspended", "reason": "Gold accuracy 0.6"},
                            format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "suspended"
    assert response.json()["status_reason"] == "Gold accuracy 0.6"
    profile = ReviewerProfile.objects.get(user__username="rita")
    assert profile.status == "suspended"
    [event] = events("reviewer.suspended")
    assert (event.actor_id, event.reason) == (client.user.pk, "Gold accuracy 0.6")
    assert profile.history.latest().history_user == client.user
    response = client.patch(reviewer_url("rita"), {"status": "active", "reason": "Retrained"}, format="json")
    assert response.json()["status"] == "active"
    assert len(events("reviewer.reinstated")) == 1


def test_admin_changes_qualifications_and_adjudicator_flag(api_client_for: Any, make_user: Any) -> None:
    make_system("credit-scoring")
    make_system("fraud")
    make_user("reviewer", "rita", systems=["credit-scoring"])
    client = api_client_for("admin")
    response = client.patch(reviewer_url("rita"), {"qualifications": ["fraud"], "adjudicator": True,
                                                   "reason": "Trained on fraud"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["qualifications"] == ["fraud"]
    assert response.json()["adjudicator"] is True
    [event] = events("reviewer.updated")
    assert json.loads(event.payload)["after"] == {"adjudicator": True, "qualifications": ["fraud"]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "suspended"}, "reason"),
        ({"status": "suspended", "reason": "   "}, "reason"),
        ({"status": "fired", "reason": "x"}, "status"),
        ({"status": None, "reason": "x"}, "status"),
        ({"qualifications": ["no-such-system"], "reason": "x"}, "qualifications"),
        ({"qualifications": "credit-scoring", "reason": "x"}, "qualifications"),
        ({"adjudicator": "yes", "reason": "x"}, "adjudicator"),
        ({"adjudicator": 1, "reason": "x"}, "adjudicator"),
        ({"username": "other", "reason": "x"}, "username"),
        ({"reason": 12}, "reason"),
        ({"rank": "senior", "reason": "x"}, "rank"),
    ],
)
def test_bad_reviewer_changes_name_the_field(api_client_for: Any, make_user: Any, body: Any, field: str) -> None:
    make_system("credit-scoring")
    make_user("reviewer", "rita")
    response = api_client_for("compliance_officer").patch(reviewer_url("rita"), body, format="json")
    assert_field_error(response, field)
    assert ReviewerProfile.objects.get(user__username="rita").status == "active"
    assert not AuditEvent.objects.filter(action__startswith="reviewer.").exists()


@pytest.mark.parametrize("role", ["manager", "reviewer", "integration"])
def test_other_roles_may_not_change_reviewers(api_client_for: Any, make_user: Any, role: str) -> None:
    make_user("reviewer", "rita")
    response = api_client_for(role).patch(reviewer_url("rita"), {"status": "suspended", "reason": "x"},
                                          format="json")
    assert response.status_code == 403
    assert ReviewerProfile.objects.get(user__username="rita").status == "active"


def test_a_reviewer_may_not_change_their_own_record(api_client_for: Any, make_user: Any) -> None:
    client = api_client_for(make_user("reviewer", "rita"))
    response = client.patch(reviewer_url("rita"), {"adjudicator": True, "reason": "I am good"}, format="json")
    assert response.status_code == 403


def test_changing_reviewers_needs_authentication(anon_client: Any, make_user: Any) -> None:
    make_user("reviewer", "rita")
    assert anon_client.patch(reviewer_url("rita"), {"status": "suspended", "reason": "x"},
                             format="json").status_code == 401


@pytest.mark.parametrize("username", ["nobody", "manny", "a%00b"])
def test_unknown_reviewers_are_404(api_client_for: Any, make_user: Any, username: str) -> None:
    make_user("manager", "manny")  # exists, but is no reviewer
    response = api_client_for("compliance_officer").patch(reviewer_url(username), {"status": "suspended",
                                                                                   "reason": "x"}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
