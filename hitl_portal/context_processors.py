"""Template context shared by every page: the user's role for the navigation, the unread alerts."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from hitl_portal.roles import user_role


def portal(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    role = user_role(user) if user is not None and user.is_authenticated else None
    from hitl_portal.notifications import unread_count

    return {
        "portal_role": role,
        "portal_role_label": role.replace("_", " ") if role else None,
        # One indexed COUNT per page: the header's badge.
        "unread_notifications": unread_count(user) if role else 0,
    }
