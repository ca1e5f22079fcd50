"""Accounts of the portal's people and integrations: users, roles, reviewer competence."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from typing import Any

from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import record_event
from hitl_portal.actors import Actor
from hitl_portal.models import NotificationKind
from hitl_portal.notifications import notify
from hitl_portal.roles import COMPLIANCE_OFFICER, GROUP_ROLES, INTEGRATION, REVIEWER
from reviews.models import AISystem, IntegrationProfile, ReviewerProfile, ReviewerStatus, TrainingRecord
from reviews.services.tokens import tokens_revoke_all

# Token issue and rotation live in ``reviews.services.tokens``; importable from here too.
from reviews.services.tokens import user_token_issue as user_token_issue
from reviews.services.tokens import user_token_rotate as user_token_rotate


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + standard base64 of 32 random bytes.

    The spec's libraries base64-decode what follows the prefix to get the HMAC
    key; secrets issued before used the URL-safe alphabet (see
    ``reviews.services.webhooks.signing_key`` for how those keep working).
    """
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _systems_by_slug(slugs: list[str], field: str = "systems") -> list[AISystem]:
    systems = list(AISystem.objects.filter(slug__in=slugs))
    missing = sorted(set(slugs) - {s.slug for s in systems})
    if missing:
        raise ValidationError({field: [f"unknown system(s): {', '.join(missing)}"]})
    return systems


@transaction.atomic
def user_create(
    *, actor: Actor, username: str, password: str, role: str, email: str = "", systems: list[str] | None = None,
    validate: bool = True,
) -> tuple[User, str | None]:
    """Create a user with exactly one role. Returns the user and, for integrations, the webhook secret.

    ``systems`` qualifies a reviewer for those systems, or links an integration to
    them (it may post cases only there).
    """
    if role not in GROUP_ROLES:
        raise ValidationError({"role": [f"must be one of: {', '.join(GROUP_ROLES)}"]})
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": ["A user with that username already exists."]})
    linked = _systems_by_slug(systems or [])
    user = User(username=username, email=email)
    if validate:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    user.full_clean(exclude=["password"])
    try:
        # A savepoint: losing a race for the username is a 400, not a broken transaction.
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise ValidationError({"username": ["A user with that username already exists."]}) from exc
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    secret: str | None = None
    if role == REVIEWER:
        profile = ReviewerProfile(user=user)
        profile._history_user = actor  # type: ignore[attr-defined]
        profile.save()
        profile.qualifications.set(linked)
    elif role == INTEGRATION:
        secret = new_webhook_secret()
        integration = IntegrationProfile(user=user, webhook_secret=secret)
        integration._history_user = actor  # type: ignore[attr-defined]
        integration.save()
        integration.systems.set(linked)
    record_event("user.created", actor=actor, obj=user, object_label=username,
                 after={"username": username, "role": role, "systems": sorted(s.slug for s in linked)})
    return user, secret


@transaction.atomic
def integration_rotate_secret(*, actor: Actor, user: User) -> str:
    """Issue a new webhook secret (shown once); the old one stops signing at once."""
    try:
        profile = IntegrationProfile.objects.select_for_update().get(user=user)
    except IntegrationProfile.DoesNotExist as exc:
        raise ValidationError({"username": ["not an integration user"]}) from exc
    profile.webhook_secret = new_webhook_secret()
    profile.secret_rotated_at = timezone.now()
    profile._history_user = actor  # type: ignore[attr-defined]
    profile.save(update_fields=["webhook_secret", "secret_rotated_at"])
    record_event("user.secret_rotated", actor=actor, obj=user, object_label=user.username)
    return profile.webhook_secret


@transaction.atomic
def reviewer_update(
    *,
    # Any, not Actor: the quality app still passes request.user (User | AnonymousUser).
    actor: Any,
    profile: ReviewerProfile,
    reason: str,
    status: str | None = None,
    qualifications: list[str] | None = None,
    adjudicator: bool | None = None,
) -> ReviewerProfile:
    """Suspend or reinstate a reviewer, change qualifications or the adjudicator flag (audited)."""
    if not (reason or "").strip():
        raise ValidationError({"reason": ["A reason is required."]})
    profile = ReviewerProfile.objects.select_for_update().get(pk=profile.pk)
    username = profile.user.username
    if status is not None and status not in ReviewerStatus.values:
        raise ValidationError({"status": [f"must be one of: {', '.join(ReviewerStatus.values)}"]})
    changed_fields: list[str] = []
    if status is not None and status != profile.status:
        before_status = profile.status
        profile.status = status
        profile.status_reason = reason
        profile.status_changed_at = timezone.now()
        changed_fields += ["status", "status_reason", "status_changed_at"]
        action = "reviewer.suspended" if status == ReviewerStatus.SUSPENDED else "reviewer.reinstated"
        record_event(action, actor=actor, obj=profile, object_label=username, reason=reason,
                     before={"status": before_status}, after={"status": status})
        if status == ReviewerStatus.SUSPENDED:
            # Officers must know (the queue just lost a reviewer), and so must the reviewer.
            notify(kind=NotificationKind.REVIEWER_SUSPENDED, subject=f"Reviewer {username} was suspended",
                   body=f"Reason: {reason}\nThe reviewer's competence record is on the Quality pages.",
                   roles=(COMPLIANCE_OFFICER,), users=[profile.user])
    details_before: dict[str, Any] = {}
    details_after: dict[str, Any] = {}
    if adjudicator is not None and adjudicator != profile.adjudicator:
        details_before["adjudicator"], details_after["adjudicator"] = profile.adjudicator, adjudicator
        profile.adjudicator = adjudicator
        changed_fields.append("adjudicator")
    if changed_fields:
        profile._history_user = actor  # type: ignore[attr-defined]
        profile.save(update_fields=[*changed_fields, "updated_at"])
    if qualifications is not None:
        systems = _systems_by_slug(qualifications, "qualifications")
        current = sorted(profile.qualifications.values_list("slug", flat=True))
        wanted = sorted(s.slug for s in systems)
        if current != wanted:
            profile._history_user = actor  # type: ignore[attr-defined]
            profile.qualifications.set(systems)
            details_before["qualifications"], details_after["qualifications"] = current, wanted
    if details_after:
        record_event("reviewer.updated", actor=actor, obj=profile, object_label=username, reason=reason,
                     before=details_before, after=details_after)
    return profile


@transaction.atomic
def training_record_add(
    *,
    # Any, not Actor: the quality app still passes request.user (User | AnonymousUser).
    actor: Any,
    profile: ReviewerProfile,
    title: str,
    completed_at: dt.date,
    kind: str = "ai_literacy",
    expires_at: dt.date | None = None,
    system: AISystem | None = None,
    evidence_url: str = "",
) -> TrainingRecord:
    """Record a reviewer's training (Art. 4 AI literacy, Art. 26(2) competence), audited.

    Expiry must not precede completion. Recording a training does not reinstate a
    suspended reviewer: that stays a compliance officer's explicit act.
    """
    record = TrainingRecord(
        reviewer=profile, title=(title or "").strip(), kind=(kind or "").strip(), system=system,
        completed_at=completed_at, expires_at=expires_at, evidence_url=evidence_url or "",
    )
    if expires_at is not None and completed_at is not None and expires_at < completed_at:
        raise ValidationError({"expires_at": ["Must not be before the completion date."]})
    record.full_clean()
    record._history_user = actor  # type: ignore[attr-defined]
    record.save()
    record_event(
        "reviewer.training_recorded", actor=actor, obj=profile, object_label=profile.user.username,
        after={"training_record": record.pk, "title": record.title, "kind": record.kind,
               "system": system.slug if system else None, "completed_at": completed_at, "expires_at": expires_at},
    )
    return record


USER_UPDATED_ACTION = "user.updated"
# Account fields a console change may touch (roles are groups, handled apart).
USER_FIELDS = ("username", "first_name", "last_name", "email", "is_active", "is_staff", "is_superuser")


def _set_role(user: User, role: str, actor: Actor) -> None:
    """Make ``role`` the user's one role, creating the profile the role needs if missing."""
    roles = Group.objects.filter(name__in=GROUP_ROLES)
    user.groups.remove(*roles.exclude(name=role))
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    if role == REVIEWER and not ReviewerProfile.objects.filter(user=user).exists():
        profile = ReviewerProfile(user=user)
        profile._history_user = actor  # type: ignore[attr-defined]
        profile.save()
    elif role == INTEGRATION and not IntegrationProfile.objects.filter(user=user).exists():
        # The secret is shown to nobody here: rotate it from the console to hand it over.
        integration = IntegrationProfile(user=user, webhook_secret=new_webhook_secret())
        integration._history_user = actor  # type: ignore[attr-defined]
        integration.save()


@transaction.atomic
def user_update(
    *, actor: Actor, user: User, changes: dict[str, Any], role: str | None = None, reason: str = ""
) -> User:
    """Change an account's fields (``USER_FIELDS``) and/or its role, audited with before and after.

    A role is a group; exactly one is kept. Nothing changed records nothing.
    """
    unknown = sorted(set(changes) - set(USER_FIELDS))
    if unknown:
        raise ValidationError({name: ["This field cannot be changed here."] for name in unknown})
    if role is not None and role not in GROUP_ROLES:
        raise ValidationError({"role": [f"must be one of: {', '.join(GROUP_ROLES)}"]})
    user = User.objects.select_for_update().get(pk=user.pk)
    if "username" in changes and changes["username"] != user.username:
        taken = User.objects.filter(username__iexact=changes["username"]).exclude(pk=user.pk).exists()
        if taken:
            raise ValidationError({"username": ["A user with that username already exists."]})
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    changed = [name for name, value in changes.items() if getattr(user, name) != value]
    for name in changed:
        before[name], after[name] = getattr(user, name), changes[name]
        setattr(user, name, changes[name])
    if changed:
        user.full_clean(exclude=["password"])
        user.save(update_fields=changed)
    if role is not None:
        current = sorted(user.groups.filter(name__in=GROUP_ROLES).values_list("name", flat=True))
        if current != [role]:
            _set_role(user, role, actor)
            before["role"], after["role"] = current[0] if len(current) == 1 else current, role
    if after:
        record_event(USER_UPDATED_ACTION, actor=actor, obj=user, object_label=user.username, reason=reason,
                     data={"account": "user"}, before=before, after=after)
    # A token carries the access of the account as it was: deactivation and a new role
    # (or losing or gaining admin) end every one of them.
    if after.get("is_active") is False:
        tokens_revoke_all(user=user, actor=actor, cause="deactivated", reason=reason)
    elif "role" in after or "is_superuser" in after:
        tokens_revoke_all(user=user, actor=actor, cause="role_changed", reason=reason)
    return user


@transaction.atomic
def user_set_password(*, actor: Actor, user: User, password: str | None, validate: bool = True) -> User:
    """Set a new password (``None``: an unusable one, so the account cannot log in with a password).

    Audited without the password, of course.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    if password is None:
        user.set_unusable_password()
    else:
        if validate:
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise ValidationError({"password": exc.messages}) from exc
        user.set_password(password)
    user.save(update_fields=["password"])
    record_event(USER_UPDATED_ACTION, actor=actor, obj=user, object_label=user.username,
                 data={"account": "user", "password": "unusable" if password is None else "changed"})
    # Whoever had the old password may have made tokens with it.
    tokens_revoke_all(user=user, actor=actor, cause="password_changed")
    return user


TRAINING_EXPIRY_NOTICE_DAYS = 30


def training_expiry_alerts(*, today: dt.date | None = None) -> int:
    """Alert officers and the reviewer 30 days before a training expires (once per record); returns how many."""
    today = today or timezone.localdate()
    soon = today + dt.timedelta(days=TRAINING_EXPIRY_NOTICE_DAYS)
    records = (TrainingRecord.objects.filter(expires_at__gte=today, expires_at__lte=soon,
                                             reviewer__user__is_active=True)
               .select_related("reviewer__user", "system").order_by("expires_at", "id"))
    raised = 0
    for record in records:
        user = record.reviewer.user
        with transaction.atomic():
            notification = notify(
                kind=NotificationKind.TRAINING_EXPIRY,
                subject=f"Training of {user.username} expires on {record.expires_at:%Y-%m-%d}: {record.title}",
                body=(f"{record.kind} training{f' for {record.system.name}' if record.system else ''} expires on "
                      f"{record.expires_at:%Y-%m-%d}. Without a renewed record the reviewer cannot claim the cases "
                      "of systems that require it (Art. 26(2))."),
                roles=(COMPLIANCE_OFFICER,), users=[user], severity="info",
                dedupe_key=f"training-expiry:{record.pk}:{record.expires_at:%Y-%m-%d}",
            )
        raised += notification is not None
    return raised
