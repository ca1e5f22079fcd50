"""Template context shared by every page: the user's role for the navigation, the unread alerts."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from hitl_portal.middleware import mfa_required_for
from hitl_portal.roles import user_role


def portal(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    role = user_role(user) if user is not None and user.is_authenticated else None
    from hitl_portal.notifications import unread_count

    # A session that still owes its second factor sees no links it could not open.
    mfa_pending = bool(role) and mfa_required_for(user) and not getattr(user, "is_verified", lambda: True)()
    return {
        "portal_role": role,
        "portal_role_label": role.replace("_", " ") if role else None,
        # One indexed COUNT per page: the header's badge.
        "unread_notifications": unread_count(user) if role else 0,
        "oidc_enabled": settings.OIDC_ENABLED,
        "mfa_pending": mfa_pending,
    }
