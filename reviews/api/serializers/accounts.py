"""Input validation and representation of accounts: tokens, users, reviewers."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers

from hitl_portal.roles import ADMIN, GROUP_ROLES, INTEGRATION, REVIEWER, user_role
from reviews.api.serializers.systems import (
    RejectUnknownFieldsMixin,
    StrictBooleanField,
    StrictCharField,
    StrictSlugField,
    enum_field,
)
from reviews.models import ReviewerProfile, ReviewerStatus
from reviews.selectors.people import linked_system_slugs

# Raw passwords are hashed, so any length would do; a bound keeps hashing cheap.
PASSWORD_MAX_LENGTH = 1024
MAX_SYSTEMS = 1000


class StrictEmailField(serializers.EmailField):
    """An address is a string (DRF would take whatever ``str()`` makes of a number)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class TokenObtainSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """Credentials exchanged for an API token."""

    username = StrictCharField(max_length=150, trim_whitespace=False)
    password = StrictCharField(max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, write_only=True,
                               style={"input_type": "password"})
    otp = serializers.RegexField(
        r"^[0-9]{6,8}$", required=False, write_only=True,
        help_text="The current code of your authenticator app: required for compliance officers and "
        "admins when the portal requires a second factor (HITL_REQUIRE_MFA).",
        error_messages={"invalid": "Enter the 6-digit code of your authenticator app."},
    )


class TokenSerializer(serializers.Serializer):
    """Send it as ``Authorization: Token <token>``. Shown once: only a digest is stored."""

    token = serializers.CharField(read_only=True)
    expiry = serializers.DateTimeField(
        read_only=True, allow_null=True,
        help_text="When the token stops working unless used before (people's tokens roll on each use, up to "
        "a maximum lifetime); null: never (integrations, when so configured).",
    )


class TokenInfoSerializer(serializers.Serializer):
    """One of your API tokens, named by its first characters (the key itself is never stored)."""

    id = serializers.CharField(source="token_key", read_only=True, help_text="The key's first 15 characters.")
    created = serializers.DateTimeField(read_only=True)
    expiry = serializers.DateTimeField(read_only=True, allow_null=True)
    current = serializers.SerializerMethodField(help_text="True for the token this request was made with.")

    def get_current(self, token: Any) -> bool:
        auth = self.context.get("auth")
        return bool(auth is not None and getattr(auth, "digest", None) == token.digest)


class TokenRotateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """Why an integration's token is rotated (recorded in the audit trail)."""

    reason = StrictCharField(max_length=2000)


class UserCreateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """A new account with exactly one role; the answer holds the integration's webhook secret once."""

    id = serializers.IntegerField(read_only=True)
    username = StrictCharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = StrictCharField(max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, write_only=True,
                               style={"input_type": "password"})
    role = enum_field("GroupRoleEnum", [(role, role) for role in GROUP_ROLES])
    email = StrictEmailField(max_length=254, required=False, allow_blank=True)
    systems = serializers.ListField(
        child=StrictSlugField(max_length=80), max_length=MAX_SYSTEMS, required=False,
        help_text="A reviewer's qualifications, or the systems an integration may post cases to.",
    )
    webhook_secret = serializers.CharField(
        read_only=True, allow_null=True,
        help_text="Integration users only, shown this once (null for other roles).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("systems") and attrs["role"] not in (REVIEWER, INTEGRATION):
            raise serializers.ValidationError(
                {"systems": ["Only reviewer and integration users are linked to systems."]}
            )
        if "systems" in attrs:
            attrs["systems"] = sorted(set(attrs["systems"]))
        return attrs

    def to_representation(self, instance: Any) -> dict[str, Any]:
        user, secret = instance
        return {
            "id": user.pk,
            "username": user.username,
            "role": user_role(user),
            "email": user.email,
            "systems": linked_system_slugs(user),
            "webhook_secret": secret,
        }


class UserSerializer(serializers.Serializer):
    """An account as administrators see it (never a secret)."""

    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    role = enum_field(
        "UserRoleEnum", [(role, role) for role in (*GROUP_ROLES, ADMIN)], read_only=True, allow_null=True,
        help_text="admin for superusers; null for an account without a role (the system account).",
    )
    email = serializers.CharField(read_only=True, help_text="The e-mail address; empty when none is on file.")
    is_active = serializers.BooleanField(read_only=True)
    systems = serializers.ListField(child=serializers.CharField(), read_only=True)
    date_joined = serializers.DateTimeField(read_only=True)
    last_login = serializers.DateTimeField(read_only=True, allow_null=True)

    def to_representation(self, instance: User) -> dict[str, Any]:
        # Role and systems come from prefetched groups and profiles (see selectors.people.user_list).
        return {
            "id": instance.pk,
            "username": instance.username,
            "role": user_role(instance),
            "email": instance.email,
            "is_active": instance.is_active,
            "systems": linked_system_slugs(instance),
            "date_joined": serializers.DateTimeField().to_representation(instance.date_joined),
            "last_login": (
                serializers.DateTimeField().to_representation(instance.last_login) if instance.last_login else None
            ),
        }


class WebhookSecretSerializer(serializers.Serializer):
    """The new secret that signs webhooks from now on, shown this once."""

    webhook_secret = serializers.CharField(read_only=True)


class QualificationsField(serializers.ListField):
    """System slugs in (unknown ones are named by the service), the profile's slugs out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=StrictSlugField(max_length=80), max_length=MAX_SYSTEMS, **kwargs)

    def get_attribute(self, instance: ReviewerProfile) -> list[str]:
        return sorted(system.slug for system in instance.qualifications.all())

    def to_representation(self, data: list[str]) -> list[str]:
        return list(data)


class ReviewerSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """A reviewer's competence record: status, qualifications (system slugs), adjudicator flag.

    Every change needs a ``reason``; it is audited.
    """

    username = serializers.CharField(source="user.username", read_only=True)
    status = enum_field("ReviewerStatusEnum", ReviewerStatus.choices, required=False)
    status_reason = serializers.CharField(read_only=True)
    status_changed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    qualifications = QualificationsField(required=False, help_text="Slugs of the systems the reviewer may review.")
    adjudicator = StrictBooleanField(required=False)
    reason = StrictCharField(max_length=2000, write_only=True, help_text="Why (kept in the audit trail).")

    def validate_qualifications(self, value: list[str]) -> list[str]:
        return sorted(set(value))
