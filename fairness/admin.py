"""Bias audits in the oversight console: read-only, with their field history.

Audits are requested through the API, the bias-audit pages or the nightly
schedule, and written only by the services (each step audited); "Add" here
leads to the request page. Chunks are the audits' working counts.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from fairness.models import BiasAudit, BiasAuditChunk
from hitl_portal.admin import ConsoleHistoryAdmin, ReadOnlyAdminMixin


class BiasAuditChunkInline(admin.TabularInline):
    model = BiasAuditChunk
    fields = ("key", "cases", "done_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(BiasAudit)
class BiasAuditAdmin(ReadOnlyAdminMixin, ConsoleHistoryAdmin):
    list_display = ("id", "system", "attribute", "period_from", "period_to", "status", "chunks_total",
                    "cases_counted", "flagged", "incident", "requested_by", "requested_at")
    list_filter = ("status", "flagged", "system")
    search_fields = ("attribute", "system__slug")
    list_select_related = ("system", "incident", "requested_by")
    readonly_fields = ("system", "attribute", "period_from", "period_to", "status", "requested_by", "positive_label",
                       "thresholds", "min_group_size", "chunk_seconds", "chunks_total", "cases_counted", "flagged",
                       "incident", "results", "error", "requested_at", "started_at", "finished_at")
    exclude = ("plan",)
    inlines = [BiasAuditChunkInline]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        # Requests go through the service (validation, audit event, enqueue on commit), on the pages.
        return redirect("fairness:request")
