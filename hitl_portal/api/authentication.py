"""Token authentication that loads the token, its user and the user's role in one query.

Tokens are django-rest-knox's: only a SHA-512 digest is stored, with the first 15
characters of the key (``token_key``) kept in clear for the lookup, and an expiry.
knox's own class reads the token with its user, then every other token of that
user (to delete expired ones), and the role check then reads the user's groups:
on the ingest and review hot paths those queries cost more than the work the
request exists for. This class answers the same question with one statement,
built once per process from the models' metadata, compares the digest in
constant time, and leaves the role on the user the way
``hitl_portal.roles.user_role`` caches it. Nothing is cached across requests: a
revoked token, a deactivated user or a changed role takes effect on the very next
request.

Expiry rolls (knox's ``AUTO_REFRESH``): a person's token used within its lifetime
is extended to now + ``TOKEN_TTL``, capped at ``AUTO_REFRESH_MAX_TTL`` after its
creation, written at most once per ``MIN_REFRESH_INTERVAL`` (so the hot path stays
one query). Integration tokens do not roll: they are long-lived and rotated by an
officer.

Answers: an unknown, revoked or expired key → 401 "Invalid token.", an inactive
user → 401 "User inactive or deleted.", ``(user, token)`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from hmac import compare_digest
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, models, router
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.crypto import hash_token
from knox.settings import CONSTANTS, knox_settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request
from rest_framework.settings import api_settings

from hitl_portal.roles import ADMIN, GROUP_ROLES, INTEGRATION
from hitl_portal.sql import RowShape, column_of, load_row, row_shape


@dataclass(frozen=True)
class _Plan:
    sql: str
    shape: RowShape


_plans: dict[str, _Plan] = {}


def _token_model() -> type[models.Model]:
    from knox.models import get_token_model

    return get_token_model()


def _plan(alias: str) -> _Plan:
    plan = _plans.get(alias)
    if plan is not None:
        return plan
    conn = connections[alias]
    qn = conn.ops.quote_name
    token_model = _token_model()
    user_model = get_user_model()
    shape = row_shape(alias, (token_model, "t"), (user_model, "u"))
    groups = user_model._meta.get_field("groups")
    membership = groups.remote_field.through if isinstance(groups, models.ManyToManyField) else None
    group_model = groups.related_model
    if membership is None or group_model is None:
        raise ImproperlyConfigured("the user model's groups must be a many-to-many field to a model")
    member_user = qn(column_of(membership, "user"))
    member_group = qn(column_of(membership, "group"))
    # The user's role group; "exactly one per user", so any order names the same one.
    role = (
        f"(SELECT g.{qn('name')} FROM {qn(membership._meta.db_table)} ug "
        f"INNER JOIN {qn(group_model._meta.db_table)} g ON g.{qn('id')} = ug.{member_group} "
        f"WHERE ug.{member_user} = u.{qn(column_of(user_model))} "
        f"AND g.{qn('name')} IN ({', '.join(['%s'] * len(GROUP_ROLES))}) "
        f"ORDER BY ug.{qn('id')} LIMIT 1)"
    )
    token_user = qn(column_of(token_model, "user"))
    sql = (
        f"SELECT {shape.columns}, {role} "
        f"FROM {qn(token_model._meta.db_table)} t "
        f"INNER JOIN {qn(user_model._meta.db_table)} u ON u.{qn(column_of(user_model))} = t.{token_user} "
        f"WHERE t.{qn(column_of(token_model, 'token_key'))} = %s"
    )
    plan = _Plan(sql=sql, shape=shape)
    _plans[alias] = plan
    return plan


def load_token(key: str) -> tuple[Any, Any] | None:
    """``(user, token)`` for a live token key, the user's role cached on it; ``None`` if unknown or expired."""
    # PostgreSQL cannot compare text with NUL in it; no key contains one.
    if not key or "\x00" in key or len(key) > 200:
        return None
    token_model = _token_model()
    alias = router.db_for_read(token_model)
    plan = _plan(alias)
    conn = connections[alias]
    with conn.cursor() as cursor:
        cursor.execute(plan.sql, [*GROUP_ROLES, key[: CONSTANTS.TOKEN_KEY_LENGTH]])
        rows = cursor.fetchall()
    if not rows:
        return None
    digest = hash_token(key)
    digest_index = plan.shape.names_of(token_model).index("digest")
    for raw in rows:
        if not compare_digest(digest, raw[digest_index]):
            continue
        (token, user), extra = load_row(plan.shape, alias, raw)
        if token.expiry is not None and token.expiry <= timezone.now():  # type: ignore[attr-defined]
            return None
        token.user = user  # type: ignore[attr-defined]
        # What ``user_role`` would compute from the groups (superusers are admins).
        user._hitl_role = ADMIN if user.is_superuser else extra[-1]  # type: ignore[attr-defined]
        return user, token
    return None


def _roll_expiry(token: Any, role: str | None) -> None:
    """Extend a person's token (knox's rolling refresh), writing at most once per interval."""
    if token.expiry is None or role == INTEGRATION or not knox_settings.AUTO_REFRESH:
        return
    new_expiry = timezone.now() + knox_settings.TOKEN_TTL
    if knox_settings.AUTO_REFRESH_MAX_TTL is not None:
        new_expiry = min(new_expiry, token.created + knox_settings.AUTO_REFRESH_MAX_TTL)
    if (new_expiry - token.expiry).total_seconds() > knox_settings.MIN_REFRESH_INTERVAL:
        token.expiry = new_expiry
        type(token).objects.filter(digest=token.digest).update(expiry=new_expiry)


class PortalTokenAuthentication(BaseAuthentication):
    """``Authorization: Token <key>``: token, user and role in one query (see the module docstring)."""

    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.keyword.lower().encode():
            return None
        if len(auth) == 1:
            raise exceptions.AuthenticationFailed(_("Invalid token header. No credentials provided."))
        if len(auth) > 2:
            raise exceptions.AuthenticationFailed(_("Invalid token header. Token string should not contain spaces."))
        try:
            key = auth[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed(
                _("Invalid token header. Token string should not contain invalid characters.")
            ) from exc
        return self.authenticate_credentials(key)

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        found = load_token(key)
        if found is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user, token = found
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        _roll_expiry(token, user._hitl_role)
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


# The security requirements the schema documents: the token scheme (below) and the session
# cookie. Views may declare it (``extend_schema(auth=SCHEMA_AUTH)``); it is what
# drf-spectacular derives anyway. Typed Any on purpose: drf-spectacular annotates
# ``extend_schema(auth=...)`` as ``Sequence[str]`` but uses the value as ``AutoSchema.get_auth``'s
# result, a list of security requirement objects like this one.
SCHEMA_AUTH: Any = [{"tokenAuth": []}, {"cookieAuth": []}]


def portal_authentication_classes() -> list[type[Any]]:
    """The configured authentication classes (the token class is already the one-query one)."""
    return [cls for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES]  # type: ignore[misc]


class PortalTokenScheme(OpenApiAuthenticationExtension):
    """Documents ``PortalTokenAuthentication`` as the ``tokenAuth`` scheme it always was."""

    target_class = "hitl_portal.api.authentication.PortalTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Token-based authentication with required prefix \"Token\"",
        }
