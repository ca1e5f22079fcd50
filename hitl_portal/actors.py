"""Who is acting right now: one place for history users, audit actors and request ids.

django-simple-history's middleware only sees session users; DRF authenticates
tokens inside the view and Celery has no request at all. So the acting user is kept
in a context variable set by the API layer after authentication, by the web
middleware, and by the Celery task hooks, and both history rows and audit events
read it from here.
"""

from __future__ import annotations

import contextvars
import uuid
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from django.contrib.auth import get_user_model

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.http import HttpRequest
    from rest_framework.request import Request

SYSTEM_USERNAME = "hitl-system"

# Who a service acts for: a signed-in user (a person, an integration's account or the
# system account), or None for the system without an account (audit: actor_type "system").
Actor: TypeAlias = "User | None"

_actor: contextvars.ContextVar[Actor] = contextvars.ContextVar("hitl_actor", default=None)
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("hitl_request_id", default=None)


def set_actor(user: Any) -> None:
    """Bind the acting user (an authenticated User) to the current context."""
    _actor.set(user if user is not None and getattr(user, "is_authenticated", False) else None)


def set_system_actor() -> None:
    _actor.set(system_user())


def clear_actor() -> None:
    _actor.set(None)
    _request_id.set(None)


def current_actor() -> Actor:
    return _actor.get()


def set_request_id(value: str | None) -> None:
    _request_id.set(value)


def current_request_id() -> str:
    value = _request_id.get()
    if value is None:
        value = uuid.uuid4().hex
        _request_id.set(value)
    return value


_system_user_id: int | None = None


def system_user() -> User:
    """The service account that background work acts as (created on first use).

    It cannot log in: no usable password, not active.
    """
    global _system_user_id
    User = get_user_model()
    if _system_user_id is not None:
        user = User.objects.filter(pk=_system_user_id, username=SYSTEM_USERNAME).first()
        if user is not None:
            return user
    user, created = User.objects.get_or_create(
        username=SYSTEM_USERNAME, defaults={"is_active": False, "first_name": "HITL", "last_name": "system"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    _system_user_id = user.pk
    return user


def request_user(request: HttpRequest | Request) -> User:
    """The signed-in user of a request that passed its view's login or role check.

    ``request.user`` is typed ``User | AnonymousUser``: the role mixins of the pages and
    the permission classes of the API refuse anonymous requests before a handler runs,
    which the type system cannot see.
    """
    return cast("User", request.user)


def get_history_user(instance: Any = None, request: Any = None, **_: Any) -> Any:
    """simple-history's ``get_user`` hook: explicit user, then bound actor, then session user."""
    explicit = getattr(instance, "_history_user", None)
    if explicit is not None:
        return explicit
    actor = _actor.get()
    if actor is not None:
        return actor
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return user
    return None
