"""The one permission layer: every API view, every page and every template asks here.

Role requirements are declared on the view, per action or HTTP method, the same way
for the API and for pages: ``roles = {"GET": {...}, "POST": {...}, "*": {...}}``
(``"*"`` is the fallback; a page may write ``allowed_roles = (...)`` for "every
method"). A view with no entry for a request denies it: forgetting a declaration
fails closed. Function views declare theirs with ``@declare_roles`` (``PUBLIC``:
no login). Templates never list roles: they ask ``{% may "url-name" as ok %}``
(``hitl_portal.templatetags.portal_access``), which reads the same declaration
through ``may_access``. Object visibility is a queryset filter in each app's
selectors (``*_visible_to(user)``), applied by the same views. Admins
(superusers) pass every role check.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from django.contrib.auth.mixins import AccessMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from rest_framework.permissions import BasePermission

from hitl_portal.roles import ADMIN, user_role

# Declared on views anyone may open, signed in or not (health, login, the public key page).
PUBLIC = "__public__"
# Declared on views any signed-in user may open (the home page sends each role on).
AUTHENTICATED = "__authenticated__"

F = TypeVar("F", bound=Callable[..., Any])


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
        # A method the view does not offer is a 405 (raised by the handler), not a 401/403.
        if request.method.lower() not in {m.lower() for m in view.allowed_methods}:
            return True
        if not (request.user and request.user.is_authenticated):
            allowed = allowed_roles_for(view, request)
            return allowed is not None and PUBLIC in allowed
        return roles_admit(request.user, allowed_roles_for(view, request))


def declared_roles(view: Any) -> Mapping[str, Iterable[str]]:
    """A view's (class or instance or function) role map; ``allowed_roles`` counts as ``{"*": ...}``."""
    roles: Mapping[str, Iterable[str]] = getattr(view, "roles", None) or {}
    shorthand = getattr(view, "allowed_roles", None)
    if shorthand is not None and "*" not in roles:
        roles = {**roles, "*": shorthand}
    return roles


def roles_for(view: Any, method: str, action: str | None = None) -> frozenset[str] | None:
    """The roles allowed to call ``view`` with ``method`` (or viewset ``action``); None: nobody."""
    roles = declared_roles(view)
    for key in (action, method.upper(), "*"):
        if key and key in roles:
            return frozenset(roles[key])
    return None


def allowed_roles_for(view: Any, request: Any) -> frozenset[str] | None:
    return roles_for(view, request.method, getattr(view, "action", None))


def roles_admit(user: Any, allowed: frozenset[str] | None) -> bool:
    """Whether ``user`` is admitted by a declaration (``PUBLIC``/``AUTHENTICATED`` markers included)."""
    if allowed is None:
        return False
    if PUBLIC in allowed:
        return True
    if AUTHENTICATED in allowed:
        return bool(user is not None and user.is_authenticated)
    return has_role(user, allowed)


def declare_roles(roles: Mapping[str, Iterable[str]]) -> Callable[[F], F]:
    """Declare and enforce a function view's roles (the same map a class view carries).

    ``PUBLIC``: anyone; otherwise sign-in first (redirect to the login page), then
    the roles declared for the method (403).
    """
    declared = {key: frozenset(value) for key, value in roles.items()}

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            allowed = roles_for(guarded, request.method or "GET")
            if allowed is None or PUBLIC not in allowed:
                if not request.user.is_authenticated:
                    return redirect_to_login(request.get_full_path())
                if not roles_admit(request.user, allowed):
                    raise PermissionDenied("Your role may not do this on this page.")
            return view(request, *args, **kwargs)

        guarded.roles = declared  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def may_access(user: Any, url_name: str, *args: Any, method: str = "GET") -> bool:
    """Whether ``user`` may call the view behind ``url_name`` (reversed with ``args``) with ``method``.

    The one question templates and views ask before offering a link or a button.
    The Django admin (``admin:*``) is for admins only; a URL that does not resolve,
    or a view that declares nothing, is not offered.
    """
    if url_name.startswith("admin:"):
        return user_role(user) == ADMIN
    try:
        match = resolve(reverse(url_name, args=args))
    except (NoReverseMatch, Resolver404):
        return False
    view = getattr(match.func, "view_class", None) or getattr(match.func, "cls", None) or match.func
    actions = getattr(match.func, "actions", None)
    action = actions.get(method.lower()) if actions else None
    return roles_admit(user, roles_for(view, method, action))


class RoleRequiredMixin(AccessMixin):
    """Page views: login required, then the roles declared for the request's method (403 otherwise).

    Declare ``roles = {"GET": {...}, "POST": {...}}`` (like the API views) or
    ``allowed_roles = (...)`` for every method. Undeclared methods are denied.
    """

    roles: Mapping[str, Iterable[str]] = {}
    allowed_roles: Iterable[str] | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        allowed = roles_for(self, request.method or "GET")
        if allowed is not None and PUBLIC in allowed:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not roles_admit(request.user, allowed):
            raise PermissionDenied("Your role may not do this on this page.")
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]

    def may(self, request: HttpRequest, method: str) -> bool:
        """Whether this page would let the user send ``method`` (e.g. whether to show its form)."""
        return roles_admit(request.user, roles_for(self, method))
