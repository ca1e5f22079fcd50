"""The portal's roles: Django groups, exactly one per user; superusers are admins."""

from __future__ import annotations

from typing import Any

COMPLIANCE_OFFICER = "compliance_officer"
MANAGER = "manager"
REVIEWER = "reviewer"
INTEGRATION = "integration"
ADMIN = "admin"  # not a group: a superuser

GROUP_ROLES: tuple[str, ...] = (COMPLIANCE_OFFICER, MANAGER, REVIEWER, INTEGRATION)
ALL_ROLES: frozenset[str] = frozenset((*GROUP_ROLES, ADMIN))
# Roles that must prove a second factor (TOTP) when HITL_REQUIRE_MFA is on.
MFA_ROLES: frozenset[str] = frozenset((COMPLIANCE_OFFICER, ADMIN))


def user_role(user: Any) -> str | None:
    """The user's role, cached on the user object for the request."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    cached = getattr(user, "_hitl_role", "unset")
    if cached != "unset":
        return cached
    if user.is_superuser:
        role: str | None = ADMIN
    else:
        names = [g.name for g in user.groups.all() if g.name in GROUP_ROLES]
        role = names[0] if names else None
    user._hitl_role = role
    return role
