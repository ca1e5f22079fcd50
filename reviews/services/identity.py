"""Identity at the perimeter: login lockouts, the TOTP second factor, accounts made by single sign-on.

- Lockouts are counted by django-axes (per user name and per client address);
  crossing the failure limit is recorded here as ``user.locked_out`` and an
  administrator lifts it with ``login_unlock`` (``user.unlocked``).
- A TOTP device (django-otp) is enrolled by its owner (``user.mfa_enrolled``) and
  removed by an administrator (``user.mfa_reset``).
- A person who signs in with OpenID Connect for the first time gets an account with
  the role their identity provider's claims map to (``user.created``); a later login
  with a different mapped role changes it (``user.updated``, tokens revoked).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_failure_limit
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from audit.services import payload_of, record_event
from hitl_portal.actors import Actor
from hitl_portal.roles import GROUP_ROLES, INTEGRATION
from reviews.services.people import _set_role, user_update

LOCKED_OUT_ACTION = "user.locked_out"


def login_lockout_record(*, request: Any, username: str | None, ip_address: str | None) -> AuditEvent | None:
    """Record that failed logins crossed the limit (called from django-axes' ``user_locked_out``).

    axes signals every refused attempt of a locked-out client; only the attempt that
    crosses the limit is recorded, so guessing on cannot flood the audit trail. The
    password is never part of the event.
    """
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is None or failures != get_failure_limit(request, getattr(request, "axes_credentials", None)):
        return None
    user = User.objects.filter(username=username).first() if username else None
    with transaction.atomic():
        return record_event(
            LOCKED_OUT_ACTION, actor=None, obj=user, object_type=None if user else "login",
            object_label=(username or "")[:150],
            data={"username": (username or "")[:150], "ip_address": ip_address,
                  "path": (getattr(request, "path", "") or "")[:200], "failures": failures,
                  "cool_off_seconds": int(settings.AXES_COOLOFF_TIME.total_seconds())},
        )


def recent_lockout_addresses(*, username: str) -> list[str]:
    """Client addresses locked out while guessing ``username`` within the cool-off window."""
    since = timezone.now() - settings.AXES_COOLOFF_TIME - dt.timedelta(minutes=1)
    addresses: set[str] = set()
    for event in AuditEvent.objects.filter(action=LOCKED_OUT_ACTION, object_label=username, at__gte=since):
        payload = payload_of(event) or {}
        address = (payload.get("data") or {}).get("ip_address")
        if address:
            addresses.add(str(address))
    return sorted(addresses)


@transaction.atomic
def login_unlock(*, actor: Actor, user: User, reason: str) -> dict[str, Any]:
    """Lift the lockout of ``user``'s user name and of the addresses that locked it, audited.

    Returns what was cleared. Addresses locked while guessing other names stay
    locked until their cool-off ends.
    """
    if not (reason or "").strip():
        raise ValidationError({"reason": ["A reason is required."]})
    addresses = recent_lockout_addresses(username=user.username)
    cleared = AxesProxyHandler.reset_attempts(username=user.username)
    for address in addresses:
        cleared += AxesProxyHandler.reset_attempts(ip_address=address)
    result = {"username": user.username, "ip_addresses": addresses, "cleared": cleared}
    record_event("user.unlocked", actor=actor, obj=user, object_label=user.username, reason=reason.strip(),
                 data=result)
    return result


def mfa_device_for(user: User) -> TOTPDevice | None:
    """The user's confirmed TOTP device, if any."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


@transaction.atomic
def mfa_enrolment_start(*, user: User) -> TOTPDevice:
    """The unconfirmed device whose secret the enrolment page shows (made once, kept until confirmed)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


@transaction.atomic
def mfa_enrolment_confirm(*, user: User, code: str) -> TOTPDevice:
    """Confirm the pending device with a code from the app (``user.mfa_enrolled``)."""
    device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        raise ValidationError({"code": ["Start the enrolment again: no device is waiting for confirmation."]})
    if not device.verify_token((code or "").strip().replace(" ", "")):
        raise ValidationError({"code": ["That code is not valid. Check the time on your phone and try again."]})
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    record_event("user.mfa_enrolled", actor=user, obj=user, object_label=user.username,
                 data={"device": device.persistent_id, "kind": "totp"})
    return device


def mfa_verify(*, user: User, code: str) -> TOTPDevice | None:
    """The confirmed device that accepts ``code``, or ``None`` (django-otp throttles repeated failures)."""
    device = mfa_device_for(user)
    if device is None:
        return None
    return device if device.verify_token((code or "").strip().replace(" ", "")) else None


@transaction.atomic
def mfa_reset(*, actor: Actor, user: User, reason: str) -> int:
    """Remove every TOTP device of ``user`` (a lost phone); they enrol again at their next login."""
    if not (reason or "").strip():
        raise ValidationError({"reason": ["A reason is required."]})
    removed = TOTPDevice.objects.filter(user=user).delete()[0]
    record_event("user.mfa_reset", actor=actor, obj=user, object_label=user.username, reason=reason.strip(),
                 data={"devices_removed": removed})
    return removed


def role_from_claims(claims: dict[str, Any]) -> str | None:
    """The portal role the identity provider's claims map to (``HITL_OIDC_ROLE_MAP``), or ``None``.

    The role claim may be a string or a list; the first mapped value wins, in the
    order of the map, so a person in two mapped groups gets the first listed.
    Integrations never sign in through SSO.
    """
    raw = claims.get(str(settings.HITL_OIDC_ROLE_CLAIM))
    values = {raw} if isinstance(raw, str) else {str(v) for v in raw} if isinstance(raw, list) else set()
    for claim_value, role in settings.HITL_OIDC_ROLE_MAP.items():
        if claim_value in values and role in GROUP_ROLES and role != INTEGRATION:
            return role
    return None


def username_from_claims(claims: dict[str, Any]) -> str | None:
    value = claims.get(str(settings.HITL_OIDC_USERNAME_CLAIM)) or claims.get("sub")
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:150]


@transaction.atomic
def sso_user_provision(*, claims: dict[str, Any]) -> User:
    """Create the account of a person signing in with SSO for the first time (just in time).

    No usable password: the account logs in through the identity provider only.
    Refused (``ValidationError``) when the claims map to no role.
    """
    role = role_from_claims(claims)
    username = username_from_claims(claims)
    if role is None or username is None:
        raise ValidationError({"role": ["Your identity provider's claims map to no portal role."]})
    user = User(username=username, email=str(claims.get("email") or "")[:254],
                first_name=str(claims.get("given_name") or "")[:150],
                last_name=str(claims.get("family_name") or "")[:150])
    user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise ValidationError({"username": ["A user with that username already exists."]}) from exc
    _set_role(user, role, user)
    record_event("user.created", actor=user, obj=user, object_label=username,
                 after={"username": username, "role": role, "systems": []}, data={"source": "oidc"})
    return user


def sso_user_sync(*, user: User, claims: dict[str, Any]) -> User:
    """At each SSO login, follow the identity provider: a changed mapped role changes the account's.

    Claims that map to no role deactivate nothing here; the login itself is refused.
    """
    role = role_from_claims(claims)
    if role is None:
        raise ValidationError({"role": ["Your identity provider's claims map to no portal role."]})
    if user.is_superuser:
        return user
    return user_update(actor=user, user=user, changes={}, role=role, reason="Role from the identity provider.")
