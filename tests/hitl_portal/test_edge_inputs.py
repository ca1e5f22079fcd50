"""Inputs that used to give a 500: edge dates in every query parameter of every GET endpoint, NUL
bytes, unknown API paths, invalid cursors, a dropped database connection. Every answer under /api/
is JSON, below 500 (503 for the database), with a status the OpenAPI schema documents."""

from __future__ import annotations

import functools
import re
from typing import Any

import pytest
from django.db import connection
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.reviews.factories import make_system_with_point

SYSTEM, POINT = "edge-system", "edge-point"
EDGE_VALUES = [
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999+14:00",
    "9999-12-31T23:59:59Z",
    "\x00",
    "a\x00b",
]


@functools.cache
def _schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _get_operations() -> list[tuple[str, list[str]]]:
    """Every GET path of /api/v1/ with its query parameter names."""
    operations = []
    for path, item in _schema()["paths"].items():
        get = item.get("get")
        if get is None or not path.startswith("/api/v1/"):
            continue
        names = [p["name"] for p in get.get("parameters", []) if p.get("in") == "query"]
        operations.append((path, names))
    return operations


def _documented(path: str, method: str, status: int) -> bool:
    responses = _schema()["paths"][path][method]["responses"]
    return str(status) in responses or "default" in responses


def _fill(path: str, user: str, case_id: int) -> str:
    values = {"slug": SYSTEM, "point": POINT, "username": user, "id": str(case_id), "version": "1", "ref": "x"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), path)


@pytest.fixture
def admin_client(make_user: Any, api_client_for: Any) -> tuple[APIClient, int]:
    make_system_with_point(SYSTEM, POINT)
    make_user("reviewer", "edge-reviewer", systems=[SYSTEM])
    integration = api_client_for("integration", systems=[SYSTEM])
    response = integration.post("/api/v1/cases/", {
        "system": SYSTEM, "intervention_point": POINT, "external_id": "edge-1", "input": {},
        "prediction": {"label": "approve", "confidence": 0.2}}, format="json")
    assert response.status_code == 201, response.content
    return api_client_for("admin"), response.json()["id"]


OPERATIONS = _get_operations()


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "params"), OPERATIONS, ids=[path for path, _ in OPERATIONS])
def test_edge_values_in_every_query_parameter_never_give_a_5xx(
    admin_client: tuple[APIClient, int], path: str, params: list[str]
) -> None:
    client, case_id = admin_client
    url = _fill(path, "edge-reviewer", case_id)
    for name in [*params, "system"] if "system" not in params else params:
        for value in EDGE_VALUES:
            response = client.get(url, {name: value})
            where = f"GET {url}?{name}={value!r}"
            assert response.status_code < 500, f"{where}: {response.status_code} {response.content[:300]!r}"
            assert _documented(path, "get", response.status_code), f"{where}: undocumented {response.status_code}"
            if response.status_code >= 400:
                assert response["Content-Type"].startswith("application/json"), where


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/gold-items/?system=%00", "/api/v1/cases/?system=%00",
                                 "/api/v1/audit/events/?action=%00", "/api/v1/incidents/?status=%00"])
def test_nul_in_query_strings_is_a_400(admin_client: tuple[APIClient, int], url: str) -> None:
    client, _ = admin_client
    response = client.get(url)
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/nothing-here/", "/api/v1/cases/abc/", "/api/v1/", "/api/v2/cases/",
                                 "/api/v1/systems/x/y/z/"])
def test_unknown_api_paths_are_a_json_404(admin_client: tuple[APIClient, int], url: str) -> None:
    client, _ = admin_client
    response = client.get(url)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_unknown_pages_stay_html(client: Any) -> None:
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/cases/", "/api/v1/audit/events/", "/api/v1/incidents/",
                                  "/api/v1/systems/", "/api/v1/users/", "/api/v1/gold-items/"])
def test_an_invalid_cursor_is_a_400_naming_it(admin_client: tuple[APIClient, int], path: str) -> None:
    client, _ = admin_client
    response = client.get(path, {"cursor": "not-a-cursor"})
    assert response.status_code == 400, response.content
    assert "cursor" in response.json()
    assert _documented(path, "get", 400)


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["bad slug!", "x" * 300, "\x00", "ünïcode"])
def test_queue_claim_with_a_malformed_system_is_a_documented_400(api_client_for: Any, slug: str) -> None:
    make_system_with_point(SYSTEM, POINT)
    client = api_client_for("reviewer", systems=[SYSTEM])
    response = client.post("/api/v1/queue/claim/", {"system": slug}, format="json")
    assert response.status_code == 400, response.content
    assert "system" in response.json()
    assert _documented("/api/v1/queue/claim/", "post", 400)


@pytest.mark.django_db(transaction=True)
def test_a_dropped_database_connection_is_a_json_503_under_the_api(api_client_for: Any, monkeypatch: Any) -> None:
    from django.db import OperationalError
    from django.db.backends.base.base import BaseDatabaseWrapper

    client = api_client_for("admin")

    def dropped(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(BaseDatabaseWrapper, "cursor", dropped)
    client.raise_request_exception = False
    response = client.get("/api/v1/systems/")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "database_unavailable"
    monkeypatch.undo()
    connection.close()


@pytest.mark.parametrize("value", ["0001-01-01", "9999-12-31", "0001-01-01T00:00:00+14:00",
                                   "9999-12-31T23:59:59-14:00", "2026-02-30", "a\x00b", "x" * 65])
def test_the_shared_parser_refuses_edge_times_naming_the_field(value: str) -> None:
    from rest_framework import serializers

    from hitl_portal.api.dates import parse_moment

    with pytest.raises(serializers.ValidationError) as refused:
        parse_moment(value, "from")
    assert set(refused.value.detail) == {"from"}


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-24", "2026-11-24T00:00:00+00:00"),
    ("2026-11-24T10:00:00+02:00", "2026-11-24T08:00:00+00:00"),
    ("2026-11-24T10:00:00 02:00", "2026-11-24T08:00:00+00:00"),  # an unencoded "+" arrives as a space
    ("2026-11-24T10:00:00", "2026-11-24T10:00:00+00:00"),
    ("2999-01-01", "2999-01-01T00:00:00+00:00"),
])
def test_the_shared_parser_reads_dates_and_times_as_utc(value: str, expected: str) -> None:
    from hitl_portal.api.dates import parse_moment

    assert parse_moment(value, "from").isoformat() == expected
