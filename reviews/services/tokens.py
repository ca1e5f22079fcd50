"""API tokens: issued hashed and expiring (django-rest-knox's table), revoked by their owner or on change.

A key is shown once, when it is issued; the database keeps its SHA-512 digest and
its first 15 characters (``token_key``), which is also how a token is named in
lists, events and URLs. People's tokens expire ``HITL_TOKEN_TTL`` after their last
use (rolling, see ``hitl_portal.api.authentication``), at the latest
``HITL_TOKEN_MAX_LIFETIME`` after issue. Integrations get long-lived tokens
(``HITL_TOKEN_TTL_INTEGRATION``) that an officer rotates. Every token of a user
dies when their password changes, when they are deactivated and when their role
changes (``reviews.services.people`` calls ``tokens_revoke_all``).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import User, update_last_login
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken

from audit.services import record_event
from hitl_portal.actors import Actor
from hitl_portal.errors import Forbidden
from hitl_portal.roles import INTEGRATION, user_role


def token_ttl_for(user: User) -> dt.timedelta | None:
    """How long a new token of ``user`` lives: integrations long (``None``: forever), people short."""
    if user_role(user) == INTEGRATION:
        ttl = settings.HITL_TOKEN_TTL_INTEGRATION
        return ttl if ttl.total_seconds() > 0 else None
    return settings.HITL_TOKEN_TTL


def _prune(user: User, keep: int) -> int:
    """Delete the user's expired tokens and, beyond ``keep`` live ones, the oldest. Returns how many."""
    now = timezone.now()
    expired = AuthToken.objects.filter(user=user, expiry__lte=now).delete()[0]
    live = list(
        AuthToken.objects.filter(user=user).order_by("-created").values_list("digest", flat=True)
    )
    surplus = live[keep:] if keep >= 0 else []
    if surplus:
        AuthToken.objects.filter(digest__in=surplus).delete()
    return expired + len(surplus)


@transaction.atomic
def user_token_issue(*, user: User, actor: Actor = None) -> tuple[AuthToken, str]:
    """Issue a new API token for ``user`` (whose credentials the caller checked). Returns ``(token, key)``.

    The key is shown this once. Audited as the user's own act unless ``actor`` says
    otherwise; the event names the token by its prefix, never the key. A user keeps
    at most ``HITL_TOKENS_PER_USER`` live tokens: the oldest beyond that is revoked.
    """
    if not user.is_active:
        raise ValidationError({"username": ["This account is inactive."]})
    # Lock the user row: two logins at once must not both keep the oldest token.
    User.objects.select_for_update().filter(pk=user.pk).first()
    pruned = _prune(user, settings.HITL_TOKENS_PER_USER - 1)
    token, key = AuthToken.objects.create(user=user, expiry=token_ttl_for(user))
    if actor is None:
        update_last_login(None, user)  # type: ignore[arg-type]  # the signal receiver ignores its sender
    record_event("user.token_issued", actor=actor if actor is not None else user, obj=user,
                 object_label=user.username,
                 data={"created": True, "token": token.token_key, "expiry": token.expiry, "pruned": pruned})
    return token, key


@transaction.atomic
def user_token_revoke(*, actor: User, token: AuthToken) -> None:
    """Revoke one of the actor's own tokens (found by ``reviews.selectors.people.own_token_get``)."""
    if token.user_id != actor.pk:
        raise Forbidden("Only your own tokens are revoked here.", code="not_owner")
    AuthToken.objects.filter(digest=token.digest).delete()
    record_event("user.token_revoked", actor=actor, obj=actor, object_label=actor.username,
                 data={"token": token.token_key, "cause": "owner"})


def tokens_revoke_all(*, user: User, actor: Actor, cause: str, reason: str = "") -> int:
    """Revoke every token of ``user`` in the caller's transaction; audited when there were any.

    ``cause`` says why (``password_changed``, ``deactivated``, ``role_changed``,
    ``rotated``, ``console``).
    """
    prefixes = sorted(AuthToken.objects.filter(user=user).values_list("token_key", flat=True))
    if not prefixes:
        return 0
    AuthToken.objects.filter(user=user).delete()
    record_event("user.token_revoked", actor=actor, obj=user, object_label=user.username, reason=reason,
                 data={"tokens": prefixes, "cause": cause})
    return len(prefixes)


@transaction.atomic
def user_token_rotate(*, actor: Actor, user: User, reason: str) -> tuple[AuthToken, str]:
    """Revoke every API token of ``user`` and issue a new one, shown this once to ``actor``.

    For an integration's long-lived token, or any token that may have leaked: the
    old keys stop working at once. Audited (revocation and issue) with the reason.
    """
    if not (reason or "").strip():
        raise ValidationError({"reason": ["A reason is required."]})
    if not user.is_active:
        raise ValidationError({"username": ["This account is inactive."]})
    revoked = tokens_revoke_all(user=user, actor=actor, cause="rotated", reason=reason.strip())
    token, key = AuthToken.objects.create(user=user, expiry=token_ttl_for(user))
    record_event("user.token_issued", actor=actor, obj=user, object_label=user.username, reason=reason.strip(),
                 data={"created": True, "rotated": revoked > 0, "token": token.token_key, "expiry": token.expiry})
    return token, key


@transaction.atomic
def user_tokens_revoke(*, actor: Actor, user: User, reason: str) -> int:
    """Revoke every API token of ``user`` (console action); they log in again for a new one."""
    if not (reason or "").strip():
        raise ValidationError({"reason": ["A reason is required."]})
    return tokens_revoke_all(user=user, actor=actor, cause="console", reason=reason.strip())


def purge_expired_tokens() -> int:
    """Delete tokens past their expiry (they no longer authenticate; this only tidies the table)."""
    return AuthToken.objects.filter(expiry__lte=timezone.now()).delete()[0]
