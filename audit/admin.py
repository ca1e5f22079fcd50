"""The audit trail in the oversight console: read-only for everyone, superusers included.

Events are written only by ``audit.services.record_event`` inside the state
change's own transaction; the database refuses UPDATE and DELETE anyway, and the
admin offers no way to try. The one tool here verifies the chain. Checkpoints
and purge runs are read-only too; legal holds and biometric uses are placed and
ended through their services (audited), never edited.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from audit.models import AuditEvent, Checkpoint
from audit.selectors import verify_chain
from hitl_portal.admin import ReadOnlyAdminMixin


class SealedFilter(admin.SimpleListFilter):
    """Sealed events are in the chain; unsealed ones wait for the sealer (seconds at most)."""

    title = "sealed"
    parameter_name = "sealed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Sealed"), ("no", "Waiting for the sealer")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        if self.value() == "yes":
            return queryset.filter(seq__isnull=False)
        if self.value() == "no":
            return queryset.filter(seq__isnull=True)
        return queryset


class ObjectTypeFilter(admin.SimpleListFilter):
    """Filter by the kind of object an event is about (case, aisystem, reviewerprofile...)."""

    title = "object type"
    parameter_name = "object_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # Few distinct values; the (object_type, object_id) index serves the DISTINCT.
        types = AuditEvent.objects.order_by("object_type").values_list("object_type", flat=True).distinct()
        return [(name, name) for name in types if name]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        return queryset.filter(object_type=self.value()) if self.value() else queryset


class ActionFamilyFilter(admin.SimpleListFilter):
    """Filter by action family (``case.*``, ``system.*``...) or one exact action."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        from audit.catalogue import ACTIONS

        families = sorted({name.split(".", 1)[0] for name in ACTIONS})
        return [(f"{family}.*", f"{family}.*") for family in families] + [(name, name) for name in sorted(ACTIONS)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        value = self.value()
        if not value:
            return queryset
        if value.endswith(".*"):
            return queryset.filter(action__startswith=value[:-1])
        return queryset.filter(action=value)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who did what, when and why, chained by hash; nothing here can be changed."""

    list_display = ("seq", "at", "actor_display", "action", "object_display", "reason_short")
    list_display_links = ("seq", "action")
    list_filter = (SealedFilter, ActionFamilyFilter, "actor_type", ObjectTypeFilter)
    search_fields = (
        "action",
        "actor_name",
        "=object_id",
        "object_label",
        "reason",
        "=request_id",
        "=hash",
        "=payload_sha256",
    )
    search_help_text = "Action, actor, object label or reason; exact object id, request id or hash."
    ordering = ("-seq", "-id")
    list_per_page = 100
    # The table is large and append-only: no COUNT(*) of the whole trail per page view.
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("seq", "at", "action", "reason")}),
        ("Actor", {"fields": ("actor_type", "actor_name", "actor_id", "request_id")}),
        ("Object", {"fields": ("object_type", "object_id", "object_label", "system_id", "case_id")}),
        ("Payload", {"fields": ("payload_pretty", "payload_sha256")}),
        ("Chain", {"fields": ("prev_hash", "hash", "sealed_at")}),
    )
    readonly_fields = (
        "seq",
        "at",
        "action",
        "reason",
        "actor_type",
        "actor_name",
        "actor_id",
        "request_id",
        "object_type",
        "object_id",
        "object_label",
        "system_id",
        "case_id",
        "payload_pretty",
        "payload_sha256",
        "prev_hash",
        "hash",
        "sealed_at",
    )

    @admin.display(description="actor", ordering="actor_name")
    def actor_display(self, event: AuditEvent) -> str:
        return f"{event.actor_name} ({event.actor_type})" if event.actor_type != "system" else event.actor_name

    @admin.display(description="object")
    def object_display(self, event: AuditEvent) -> str:
        if not event.object_type:
            return "-"
        label = f" {event.object_label}" if event.object_label and event.object_label != event.object_id else ""
        return f"{event.object_type}:{event.object_id}{label}"

    @admin.display(description="reason")
    def reason_short(self, event: AuditEvent) -> str:
        return Truncator(event.reason).chars(80)

    @admin.display(description="payload")
    def payload_pretty(self, event: AuditEvent) -> str:
        if event.payload is None:
            return "(purged; its SHA-256 below still anchors the chain)"
        try:
            text = json.dumps(json.loads(event.payload), indent=2, sort_keys=True, ensure_ascii=False)
        except ValueError:
            text = event.payload
        return format_html('<pre class="console-json">{}</pre>', text)

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path("verify/", self.admin_site.admin_view(self.verify_view), name="{}_{}_verify".format(*info)),
            *super().get_urls(),
        ]

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        """Walk the sealed chain and report the result as a message on the list."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        result = verify_chain()
        if result.ok:
            messages.success(
                request,
                f"The audit chain verifies: {result.events} events, head hash {result.head_hash or '-'}, "
                f"{result.checkpoints} signed checkpoints.",
            )
        else:
            messages.error(
                request,
                f"The audit chain is BROKEN at seq {result.first_bad_seq}: {result.problem} "
                f"({result.events} events verify before it).",
            )
        return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))


# --- Checkpoints, legal holds, purge runs, biometric uses -----------------------------------


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Signed checkpoints of the chain head (beat signs one every ten minutes; append-only)."""

    list_display = ("seq", "signed_at", "hash_short", "key_short")
    ordering = ("-seq",)
    search_fields = ("=seq", "=hash")
    show_full_result_count = False
    readonly_fields = ("seq", "hash", "signed_at", "signature", "key_fingerprint", "public_key")

    @admin.display(description="chain hash")
    def hash_short(self, checkpoint: Checkpoint) -> str:
        return f"{checkpoint.hash[:16]}…"

    @admin.display(description="key")
    def key_short(self, checkpoint: Checkpoint) -> str:
        return f"{checkpoint.key_fingerprint[:16]}…"


