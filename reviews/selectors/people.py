"""Reads of accounts: users with their role and linked systems, reviewer profiles."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone
from knox.models import AuthToken

from hitl_portal.roles import INTEGRATION
from reviews.models import AISystem, ReviewerProfile, TrainingRecord

# Django's default username rule; anything else cannot name a user, so it is a 404
# without a query (a NUL character would make PostgreSQL raise).
_USERNAME_RE = re.compile(r"^[\w.@+-]{1,150}$")


def _check_username(username: str) -> None:
    if not _USERNAME_RE.match(username):
        raise Http404("No such user.")


def user_list() -> QuerySet[User]:
    """All accounts with what the API shows of them, in a fixed number of queries."""
    return User.objects.select_related("reviewer_profile", "integration_profile").prefetch_related(
        "groups", "reviewer_profile__qualifications", "integration_profile__systems"
    )


def user_get(*, username: str) -> User:
    _check_username(username)
    user = User.objects.filter(username=username).first()
    if user is None:
        raise Http404("No such user.")
    return user


def reviewer_profile_get(*, username: str) -> ReviewerProfile:
    """The reviewer profile of ``username``; 404 when the user is not a reviewer."""
    _check_username(username)
    profile = (
        ReviewerProfile.objects.select_related("user")
        .prefetch_related("qualifications")
        .filter(user__username=username)
        .first()
    )
    if profile is None:
        raise Http404("No such reviewer.")
    return profile


def linked_system_slugs(user: User) -> list[str]:
    """A reviewer's qualifications or an integration's linked systems (from prefetched rows)."""
    for relation, systems in (("reviewer_profile", "qualifications"), ("integration_profile", "systems")):
        try:
            profile = getattr(user, relation)
        except ObjectDoesNotExist:
            continue
        return sorted(system.slug for system in getattr(profile, systems).all())
    return []


def token_list(*, user: User) -> QuerySet[Any]:
    """The user's own live API tokens, newest first (never their keys: only digests are stored)."""
    return AuthToken.objects.filter(user=user).filter(
        Q(expiry__isnull=True) | Q(expiry__gt=timezone.now())
    ).order_by("-created")


# Prefixes are hex (plus knox's optional prefix); anything else names no token, and a NUL
# would make PostgreSQL raise.
_TOKEN_ID_RE = re.compile(r"^[0-9A-Za-z_-]{1,25}$")


def own_token_get(*, user: User, token_id: str) -> AuthToken:
    """One of ``user``'s own tokens by its id (the key's first characters); 404 for anyone else's."""
    token = None
    if _TOKEN_ID_RE.match(token_id or ""):
        token = AuthToken.objects.filter(user=user, token_key=token_id).first()
    if token is None:
        raise Http404("No such token.")
    return token


def integration_list() -> QuerySet[User]:
    """Active integration accounts, by name (the officers' token rotation list)."""
    return User.objects.filter(groups__name=INTEGRATION, is_active=True).order_by("username")


def missing_trainings(
    profile_id: int, system_ids: Iterable[int], *, today: dt.date | None = None
) -> dict[int, list[str]]:
    """Per system, the required training kinds the reviewer holds no valid record of (Art. 26(2)).

    A record counts for a system when it is of the kind and either general (no
    system) or for that system, and not expired today. Two queries.
    """
    today = today or timezone.localdate()
    required = dict(AISystem.objects.filter(pk__in=list(system_ids)).values_list("pk", "required_trainings"))
    if not any(required.values()):
        return {}
    valid = list(
        TrainingRecord.objects.filter(reviewer_id=profile_id)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gte=today))
        .values_list("kind", "system_id")
    )
    return lacking_trainings(required, valid)


def lacking_trainings(
    required: Mapping[int, list[str] | None], valid: Iterable[tuple[str, int | None]]
) -> dict[int, list[str]]:
    """``missing_trainings`` from rows already read: required kinds per system, and the
    ``(kind, system_id)`` of the reviewer's records valid today (the claim reads both in
    the same statement as the reviewer's profile)."""
    valid = list(valid)
    general = {kind for kind, system_id in valid if system_id is None}
    specific = {(kind, system_id) for kind, system_id in valid if system_id is not None}
    missing: dict[int, list[str]] = {}
    for system_id, kinds in required.items():
        lacking = [kind for kind in kinds or [] if kind not in general and (kind, system_id) not in specific]
        if lacking:
            missing[system_id] = lacking
    return missing
