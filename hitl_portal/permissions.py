"""The one permission layer: every API view and every page asks here.

Role requirements are declared per action (``roles = {"create": {...}}`` on a
viewset, ``allowed_roles`` on a page view); object visibility is a queryset
filter in each app's selectors (``*_visible_to(user)``), applied by the same views.
Admins (superusers) pass every role check.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission

from hitl_portal.roles import ADMIN, user_role


def has_role(user: Any, roles: Iterable[str]) -> bool:
    """True when the user is authenticated and holds one of ``roles`` (admins always)."""
    role = user_role(user)
    if role is None:
        return False
    return role == ADMIN or role in set(roles)


class RolePermission(BasePermission):
    """DRF permission reading the view's ``roles`` map.

    ``roles`` maps a viewset action (``list``, ``create``, ``halt``...) or an HTTP
    method (``GET``, ``POST``...) to the roles allowed; ``"*"`` is the fallback.
    A view with no entry for the request denies it: forgetting a declaration
    fails closed.
    """

    message = "Your role may not do this."
    code = "forbidden"

    def has_permission(self, request: Any, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        # A method the view does not offer is a 405 (raised by the handler), not a 403.
        if request.method.lower() not in {m.lower() for m in view.allowed_methods}:
            return True
        allowed = allowed_roles_for(view, request)
        if allowed is None:
            return False
        return has_role(request.user, allowed)


def allowed_roles_for(view: Any, request: Any) -> frozenset[str] | None:
    roles: dict[str, Iterable[str]] = getattr(view, "roles", {})
    action = getattr(view, "action", None)
    for key in (action, request.method, "*"):
        if key and key in roles:
            return frozenset(roles[key])
    return None


class RoleRequiredMixin(AccessMixin):
    """Page views: login required, then one of ``allowed_roles`` (403 otherwise)."""

    allowed_roles: Iterable[str] = (ADMIN,)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not has_role(request.user, self.allowed_roles):
            raise PermissionDenied("Your role may not open this page.")
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
