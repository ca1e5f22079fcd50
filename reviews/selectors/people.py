"""Reads of accounts: users with their role and linked systems, reviewer profiles."""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import QuerySet
from django.http import Http404

from reviews.models import ReviewerProfile

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
