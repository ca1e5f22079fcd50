"""Token authentication that loads the token, its user and the user's role in one query.

DRF's ``TokenAuthentication`` reads the token with its user (one query, compiled
by the ORM on every request), and the role check then reads the user's groups
(a second query). On the ingest and review hot paths those two queries and their
compilation cost more than the work the request exists for. This class answers
the same question with one statement, built once per process from the models'
metadata, and leaves the role on the user the way ``hitl_portal.roles.user_role``
caches it. Nothing is cached across requests: a deleted token, a deactivated
user or a changed role takes effect on the very next request, as before.

Same answers as DRF's class: an unknown key → 401 "Invalid token.", an inactive
user → 401 "User inactive or deleted.", ``(user, token)`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections, models, router
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.settings import api_settings

from hitl_portal.roles import ADMIN, GROUP_ROLES


@dataclass(frozen=True)
class _Plan:
    sql: str
    token_names: list[str]
    user_names: list[str]
    # (column index, converter functions, column expression) for columns that need converting.
    converters: list[tuple[int, list[Any], Any]]


_plans: dict[str, _Plan] = {}


def _token_model() -> type[models.Model]:
    from rest_framework.authtoken.models import Token

    return Token


def _plan(alias: str) -> _Plan:
    plan = _plans.get(alias)
    if plan is not None:
        return plan
    conn = connections[alias]
    qn = conn.ops.quote_name
    token_model = _token_model()
    user_model = get_user_model()
    token_fields = list(token_model._meta.concrete_fields)
    user_fields = list(user_model._meta.concrete_fields)
    membership = user_model._meta.get_field("groups").remote_field.through
    group_model = user_model._meta.get_field("groups").related_model
    member_user = qn(membership._meta.get_field("user").column)
    member_group = qn(membership._meta.get_field("group").column)
    # The user's role group; "exactly one per user", so any order names the same one.
    role = (
        f"(SELECT g.{qn('name')} FROM {qn(membership._meta.db_table)} ug "
        f"INNER JOIN {qn(group_model._meta.db_table)} g ON g.{qn('id')} = ug.{member_group} "
        f"WHERE ug.{member_user} = u.{qn(user_model._meta.pk.column)} "
        f"AND g.{qn('name')} IN ({', '.join(['%s'] * len(GROUP_ROLES))}) "
        f"ORDER BY ug.{qn('id')} LIMIT 1)"
    )
    columns = [f"t.{qn(f.column)}" for f in token_fields] + [f"u.{qn(f.column)}" for f in user_fields]
    token_user = qn(token_model._meta.get_field("user").column)
    sql = (
        f"SELECT {', '.join(columns)}, {role} "
        f"FROM {qn(token_model._meta.db_table)} t "
        f"INNER JOIN {qn(user_model._meta.db_table)} u ON u.{qn(user_model._meta.pk.column)} = t.{token_user} "
        f"WHERE t.{qn(token_model._meta.pk.column)} = %s"
    )
    converters: list[tuple[int, list[Any], Any]] = []
    for index, (field, table_alias) in enumerate([(f, "t") for f in token_fields] + [(f, "u") for f in user_fields]):
        col = field.get_col(table_alias)
        funcs = conn.ops.get_db_converters(col) + col.get_db_converters(conn)
        if funcs:
            converters.append((index, funcs, col))
    plan = _Plan(
        sql=sql,
        token_names=[f.attname for f in token_fields],
        user_names=[f.attname for f in user_fields],
        converters=converters,
    )
    _plans[alias] = plan
    return plan


def load_token(key: str) -> tuple[Any, Any] | None:
    """``(user, token)`` for a token key, the user's role already cached on it; ``None`` if unknown."""
    token_model = _token_model()
    alias = router.db_for_read(token_model)
    plan = _plan(alias)
    conn = connections[alias]
    with conn.cursor() as cursor:
        cursor.execute(plan.sql, [*GROUP_ROLES, key])
        raw = cursor.fetchone()
    if raw is None:
        return None
    row = list(raw)
    for index, funcs, col in plan.converters:
        for func in funcs:
            row[index] = func(row[index], col, conn)
    n_token = len(plan.token_names)
    token = token_model.from_db(alias, plan.token_names, row[:n_token])
    user = get_user_model().from_db(alias, plan.user_names, row[n_token:-1])
    token.user = user  # type: ignore[attr-defined]
    # What ``user_role`` would compute from the groups (superusers are admins).
    user._hitl_role = ADMIN if user.is_superuser else row[-1]  # type: ignore[attr-defined]
    return user, token


class PortalTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``: token, user and role in one query (see the module docstring)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        # PostgreSQL cannot compare text with NUL in it; no key contains one.
        found = load_token(key) if "\x00" not in key else None
        if found is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user, token = found
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return user, token


# The security requirements the schema documents for views using these classes: the
# same as drf-spectacular derives for DRF's token and session classes. Views declare it
# (``extend_schema(auth=SCHEMA_AUTH)``) because the schema generator would otherwise see
# two different classes behind the one "tokenAuth" scheme and warn (a failed
# ``check --deploy``); the published schema is unchanged.
SCHEMA_AUTH: list[dict[str, list[str]]] = [{"tokenAuth": []}, {"cookieAuth": []}]


def portal_authentication_classes() -> list[type[Any]]:
    """The configured authentication classes, with DRF's token class replaced by the one-query one."""
    return [
        PortalTokenAuthentication if cls is TokenAuthentication else cls
        for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES
    ]
