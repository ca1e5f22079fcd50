"""Admin views for webhook deliveries and their attempts (read-only, plus "Redeliver").

Deliveries are written only by ``reviews.services.webhooks``; the admin shows
them and offers one action, which goes through the audited service.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from hitl_portal.actors import request_user
from hitl_portal.admin import ReadOnlyAdminMixin
from reviews.models import WebhookAttempt, WebhookDelivery
from reviews.services.webhooks import webhook_redeliver


class WebhookAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Every attempt of a delivery, oldest first."""

    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("attempted_at", "status_code", "duration_ms", "error")
    readonly_fields = fields
    ordering = ("attempted_at", "id")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Webhook deliveries with their attempt log; "Redeliver" re-sends through the service."""

    list_display = (
        "id",
        "event",
        "case",
        "url",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "event", "created_at", "delivered_at")
    search_fields = ("=uuid", "url", "case__external_id", "=case__id")
    list_select_related = ("case",)
    date_hierarchy = "created_at"
    readonly_fields = (
        "uuid",
        "case",
        "integration",
        "event",
        "url",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
        "body",
    )
    fields = readonly_fields
    raw_id_fields = ("case", "integration")
    inlines = (WebhookAttemptInline,)
    actions = ("redeliver",)
    ordering = ("-id",)

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        """Who may re-send: superusers, or staff holding the model's change permission."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.action(description="Redeliver selected webhooks", permissions=["redeliver"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = 0
        for delivery in queryset.order_by("id"):
            webhook_redeliver(actor=request_user(request), delivery=delivery)
            count += 1
        self.message_user(request, f"{count} webhook(s) queued for redelivery.", messages.SUCCESS)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # The default "delete selected" would bypass the service (and is refused anyway).
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
