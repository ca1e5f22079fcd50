"""Admin of the portal's infrastructure rows, and the read-only mixin the console shares."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from hitl_portal.models import Heartbeat


class ReadOnlyAdminMixin:
    """Viewable, never added, changed or deleted from the admin (superusers included).

    Used for records that only services or background processes write: changing
    them by hand would be a change of state without its audit event.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """When each background process last showed a sign of life (what /healthz reports)."""

    list_display = ("name", "seen_at")
    ordering = ("name",)


from hitl_portal import admin_auth  # noqa: E402,F401  (audited User/Group/Token admin)
