"""API-wide conventions (api-v1 "Conventions"): JSON errors naming the field, 401/403/413
bodies, health, and the OpenAPI schema and docs served without the network."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import override_settings
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from reviews.models import AISystem
from tests.reviews.account_helpers import (
    assert_field_error,
    make_point,
    make_system,
    system_body,
)

SYSTEMS = "/api/v1/systems/"

pytestmark = pytest.mark.django_db


def post_raw(client: Any, url: str, raw: str | bytes, content_type: str = "application/json") -> Any:
    return client.generic("POST", url, raw, content_type=content_type)


# --- body size -----------------------------------------------------------------------------------


@override_settings(HITL_MAX_BODY_BYTES=2048)
def test_a_body_over_the_limit_is_a_json_413(api_client_for: Any) -> None:
    client = api_client_for("compliance_officer")
    response = client.post(SYSTEMS, system_body(purpose="p" * 4000), format="json")
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "body_too_large"
    assert not AISystem.objects.exists()
    # Just under the limit is fine.
    assert client.post(SYSTEMS, system_body(purpose="p" * 1000), format="json").status_code == 201


# --- text PostgreSQL cannot store, malformed JSON, wrong types ---------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "Credit\x00scoring"}, "name"),
        ({"labels": ["approve", "re\x00ject"]}, "labels"),
        ({"purpose": "x" * 100_000}, "purpose"),
    ],
)
def test_unstorable_or_huge_text_is_a_400_naming_the_field(
    api_client_for: Any, overrides: dict[str, Any], field: str
) -> None:
    response = api_client_for("compliance_officer").post(SYSTEMS, system_body(**overrides), format="json")
    assert response.status_code == 400
    assert any(key.startswith(field) for key in response.json()), response.json()
    assert not AISystem.objects.exists()


def test_a_lone_surrogate_is_a_400_naming_the_field(api_client_for: Any) -> None:
    raw = json.dumps(system_body()).replace('"Credit scoring"', '"Credit \\ud800 scoring"')
    response = post_raw(api_client_for("compliance_officer"), SYSTEMS, raw)
    assert_field_error(response, "name")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_as_json(api_client_for: Any, constant: str) -> None:
    system = make_system()
    raw = '{"slug": "p", "name": "P", "stage": "validation", "confidence_below": ' + constant + "}"
    response = post_raw(api_client_for("compliance_officer"), f"{SYSTEMS}{system.slug}/intervention-points/", raw)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert constant.lstrip("-") in json.dumps(response.json())


@pytest.mark.parametrize("raw", ['{"slug": ', "{'slug': 'x'}", "\xff\xfe", '{"a": 1} trailing'])
def test_malformed_json_is_a_json_400(api_client_for: Any, raw: str) -> None:
    response = post_raw(api_client_for("compliance_officer"), SYSTEMS, raw.encode("latin-1"))
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_an_empty_body_names_the_required_fields(api_client_for: Any) -> None:
    response = post_raw(api_client_for("compliance_officer"), SYSTEMS, "")
    assert_field_error(response, "slug")
    assert {"name", "labels", "role"} <= set(response.json())


def test_a_form_body_is_refused_with_415(api_client_for: Any) -> None:
    response = post_raw(api_client_for("compliance_officer"), SYSTEMS, "slug=x", "application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


WRITE_ENDPOINTS = [
    ("post", "/api/v1/auth/token/", None),
    ("post", "/api/v1/users/", "admin"),
    ("patch", "/api/v1/reviewers/rita/", "compliance_officer"),
    ("post", "/api/v1/systems/", "compliance_officer"),
    ("patch", "/api/v1/systems/credit-scoring/", "compliance_officer"),
    ("post", "/api/v1/systems/credit-scoring/halt/", "compliance_officer"),
    ("post", "/api/v1/systems/credit-scoring/resume/", "compliance_officer"),
    ("post", "/api/v1/systems/credit-scoring/intervention-points/", "compliance_officer"),
    ("patch", "/api/v1/systems/credit-scoring/intervention-points/loan-review/", "compliance_officer"),
]
JUNK_BODIES = [
    [],
    [{"slug": "x"}],
    "a string",
    12,
    None,
    True,
    {"slug": {"nested": [1, {"deeper": None}]}, "name": ["x"] * 50, "labels": {"a": 1}, "reason": [None]},
    {"username": {"$ne": ""}, "password": {"$gt": ""}, "status": 3, "high_stakes": [None], "qualifications": [7]},
]


@pytest.mark.parametrize(("method", "url", "role"), WRITE_ENDPOINTS)
@pytest.mark.parametrize("body", JUNK_BODIES, ids=[f"junk{i}" for i in range(len(JUNK_BODIES))])
def test_junk_bodies_are_a_400_never_a_500(
    api_client_for: Any, anon_client: Any, make_user: Any, method: str, url: str, role: str | None, body: Any
) -> None:
    make_point(make_system())
    make_user("reviewer", "rita")
    client = api_client_for(role) if role else anon_client
    response = getattr(client, method)(url, json.dumps(body), content_type="application/json")
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert isinstance(response.json(), dict) and response.json()


# --- unknown slugs in the body ------------------------------------------------------------------------


def test_unknown_system_slugs_in_a_body_are_named(api_client_for: Any, make_user: Any) -> None:
    make_user("reviewer", "rita")
    admin = api_client_for("admin")
    body = {"username": "newbie", "password": "a-long-and-unusual-passphrase", "role": "integration",
            "systems": ["ghost"]}
    response = admin.post("/api/v1/users/", body, format="json")
    assert_field_error(response, "systems")
    assert "ghost" in json.dumps(response.json())
    response = admin.patch("/api/v1/reviewers/rita/", {"qualifications": ["ghost"], "reason": "x"}, format="json")
    assert_field_error(response, "qualifications")


# --- 401 / 403 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Token nope", "Bearer abc", "Token", "Token a b"])
def test_missing_or_bad_credentials_are_a_json_401(anon_client: Any, header: str | None) -> None:
    if header:
        anon_client.credentials(HTTP_AUTHORIZATION=header)
    response = anon_client.get(SYSTEMS)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


def test_a_wrong_role_is_a_403_with_code_and_detail(api_client_for: Any) -> None:
    response = api_client_for("reviewer").get("/api/v1/users/")
    assert response.status_code == 403
    assert set(response.json()) == {"code", "detail"}
    assert response.json()["code"] == "forbidden"


# --- health, schema, docs ---------------------------------------------------------------------------


def test_healthz_reports_database_and_broker(anon_client: Any) -> None:
    response = anon_client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["broker"] in {"ok", "embedded"}


def test_schema_is_served_as_openapi_3(anon_client: Any) -> None:
    response = anon_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    for route in ("/api/v1/auth/token/", "/api/v1/auth/tokens/", "/api/v1/auth/tokens/{token_id}/",
                  "/api/v1/users/{username}/rotate-token/",
                  "/api/v1/users/", "/api/v1/users/{username}/rotate-secret/",
                  "/api/v1/reviewers/{username}/", "/api/v1/systems/", "/api/v1/systems/{slug}/",
                  "/api/v1/systems/{slug}/halt/", "/api/v1/systems/{slug}/resume/",
                  "/api/v1/systems/{slug}/intervention-points/",
                  "/api/v1/systems/{slug}/intervention-points/{point}/"):
        assert route in schema["paths"], route


def test_docs_page_loads_its_assets_locally(anon_client: Any) -> None:
    response = anon_client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html[:500]
    assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
    static_assets = [a for a in assets if a.startswith("/static/")]
    assert any("swagger-ui" in a for a in static_assets)
    for asset in static_assets:
        assert finders.find(asset.removeprefix("/static/")), asset


ACCOUNT_AND_SYSTEM_ROUTES = [
    path("api/v1/", include("reviews.api.urls_accounts")),
    path("api/v1/", include("reviews.api.urls_systems")),
]


def test_account_and_system_endpoints_are_documented_without_warnings() -> None:
    """Every endpoint here documents its request and responses; the generator has nothing to guess."""
    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=ACCOUNT_AND_SYSTEM_ROUTES).get_schema(request=None, public=True)
    assert not GENERATOR_STATS._warn_cache, dict(GENERATOR_STATS._warn_cache)
    assert not GENERATOR_STATS._error_cache, dict(GENERATOR_STATS._error_cache)
    validate_schema(schema)
    operations = [(route, method, op) for route, item in schema["paths"].items() for method, op in item.items()]
    # + rotate-salt of an intervention point; auth/tokens/ (list), auth/tokens/{token_id}/ (delete),
    # users/{username}/rotate-token/
    assert len(operations) == 19
    for route, method, operation in operations:
        success = [code for code in operation["responses"] if code.startswith("2")]
        assert success, (route, method)
        if method != "delete":  # 204: nothing to return
            assert "content" in operation["responses"][success[0]], (route, method)
        if method in {"post", "patch"} and not route.endswith("rotate-secret/"):
            assert "requestBody" in operation, (route, method)
        if route != "/api/v1/auth/token/":
            assert {"401", "403"} <= set(operation["responses"]), (route, method)
