"""Every URL route × every role × every method the route offers: the declared access, and nothing else.

The walker reads each route's own declaration (``roles`` / ``allowed_roles`` on class
views, ``@declare_roles`` on function views, the viewset action map) through the
permission layer, then sends the request as each role and checks the answer:
allowed → neither 401/403 nor a login redirect nor a 5xx (a 404 for an object that
does not exist is fine: the role check passed); denied → 403 (401 or a login redirect
when signed out). So every page and endpoint has its denied case, and a route that
forgets to declare its roles fails here (it denies everybody, admins included).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from hitl_portal.permissions import PUBLIC, roles_admit, roles_for

ROLES = ("anonymous", "reviewer", "manager", "compliance_officer", "integration", "admin")
# Framework routes with their own access rules: Django's admin and auth views, static files.
FRAMEWORK_PREFIXES = ("admin/", "accounts/", "static/")
# Values for path converters: objects that do not exist (the role check runs before the lookup).
CONVERTER_VALUES = {"int": "987654321", "slug": "no-such-slug", "str": "no-such-thing", "path": "no/such", "uuid":
                    "00000000-0000-0000-0000-000000000000"}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# The words of every role refusal (hitl_portal.permissions), API and pages alike.
ROLE_REFUSAL = "Your role may not do this"


@dataclass(frozen=True)
class Route:
    path: str
    view: Any
    actions: dict[str, str] | None
    name: str

    def methods(self) -> list[str]:
        if self.actions:
            # HEAD mirrors GET (DRF adds it to every viewset with a GET) and has no body to read.
            return sorted(m for m in self.actions if m != "head")
        if isinstance(self.view, type):
            names = getattr(self.view, "http_method_names", HTTP_METHODS)
            return [m for m in HTTP_METHODS if m in names and hasattr(self.view, m)]
        declared = getattr(self.view, "roles", {})
        return sorted({m.lower() for m in declared if m.lower() in HTTP_METHODS})


def _fill(route: str) -> str:
    def value(match: re.Match[str]) -> str:
        return CONVERTER_VALUES.get(match.group(1) or "str", "x")

    path = re.sub(r"<(?:(\w+):)?\w+>", value, route)
    return "/" + path.replace("^", "").replace("$", "")


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[Route]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            route = prefix + str(entry.pattern)
            if route.startswith(FRAMEWORK_PREFIXES):
                continue
            callback = entry.callback
            view = getattr(callback, "view_class", None) or getattr(callback, "cls", None) or callback
            yield Route(_fill(route), view, getattr(callback, "actions", None), entry.name or route)


ROUTES = sorted(_walk(get_resolver().url_patterns), key=lambda r: r.path)


def test_the_walker_sees_every_area() -> None:
    paths = {route.path for route in ROUTES}
    for expected in ("/api/v1/cases/", "/review/", "/dashboard/", "/compliance/", "/audit/cases/", "/quality/",
                     "/fairness/", "/healthz", "/api/v1/incidents/", "/compliance/incidents/"):
        assert any(p.startswith(expected) for p in paths), expected
    assert len(ROUTES) > 60


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.name}:{r.path}" for r in ROUTES])
def test_route_declares_its_roles(route: Route) -> None:
    """Every method a route offers has a declaration (so access is decided, never defaulted)."""
    for method in route.methods():
        action = route.actions.get(method) if route.actions else None
        assert roles_for(route.view, method.upper(), action) is not None, f"{method.upper()} {route.path}"


@pytest.mark.django_db
@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.name}:{r.path}" for r in ROUTES])
def test_route_answers_each_role_as_declared(route: Route, make_user: Any) -> None:
    users = {role: None if role == "anonymous" else make_user(role) for role in ROLES}
    is_api = route.path.startswith("/api/")
    for method in route.methods():
        action = route.actions.get(method) if route.actions else None
        allowed_roles = roles_for(route.view, method.upper(), action)
        for role, user in users.items():
            client = APIClient()
            if user is not None:
                client.force_login(user)
            allowed = roles_admit(user, allowed_roles) if user is not None else (
                allowed_roles is not None and PUBLIC in allowed_roles
            )
            response = getattr(client, method)(route.path, {}, format="json" if is_api else None)
            where = f"{method.upper()} {route.path} as {role}"
            assert response.status_code < 500, f"{where}: {response.status_code}"
            login_redirect = response.status_code == 302 and "/accounts/login/" in response.get("Location", "")
            # A role refusal says so (API and pages alike); other 403s are the domain's own
            # refusals (e.g. "not qualified"), which come after the role check passed.
            role_refusal = response.status_code == 403 and ROLE_REFUSAL in response.content.decode(errors="replace")
            if allowed:
                assert response.status_code != 401 and not role_refusal and not login_redirect, (
                    f"{where}: declared allowed, got {response.status_code}"
                )
            elif user is None:
                assert response.status_code in (401, 403) or login_redirect, (
                    f"{where}: signed out, got {response.status_code}"
                )
            else:
                assert role_refusal, f"{where}: declared denied, got {response.status_code}"
