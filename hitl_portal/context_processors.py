"""Template context shared by every page: the user's role for the navigation."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from hitl_portal.roles import user_role


def portal(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    role = user_role(user) if user is not None and user.is_authenticated else None
    return {"portal_role": role, "portal_role_label": role.replace("_", " ") if role else None,
            "oidc_enabled": settings.OIDC_ENABLED}
