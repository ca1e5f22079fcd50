"""Quality rows in the oversight console: read-only (they change through the services and pages).

Gold items are created through the API, the gold items page (one by one or a CSV
upload) or ``manage.py import_gold_items``; "Add" here leads to that page. Servings,
calibration sessions and snapshots are records of what happened, viewable only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from hitl_portal.admin import ConsoleHistoryAdmin, ReadOnlyAdminMixin
from quality.models import CalibrationSession, GoldItem, GoldServing, ReviewerQualitySnapshot


@admin.register(GoldItem)
class GoldItemAdmin(ReadOnlyAdminMixin, ConsoleHistoryAdmin):
    """Gold items (cases with a known answer); "Add" opens the gold items page (form and CSV upload)."""

    list_display = ("id", "case", "system", "point", "gold_label", "active", "source", "created_by", "created_at")
    list_filter = ("active", "source", "case__system")
    search_fields = ("case__external_id",)
    list_select_related = ("case__system", "case__intervention_point", "created_by")
    readonly_fields = ("case", "active", "source", "note", "created_by", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        # Creation goes through the gold service (routing check, audit event), on the quality page.
        return redirect("quality:gold")

    @admin.display(description="system")
    def system(self, item: GoldItem) -> str:
        return item.case.system.slug

    @admin.display(description="intervention point")
    def point(self, item: GoldItem) -> str:
        return item.case.intervention_point.slug

    @admin.display(description="gold label")
    def gold_label(self, item: GoldItem) -> str:
        return item.case.gold_label or ""


@admin.register(GoldServing)
class GoldServingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Which reviewer got a copy of which gold item (and in which calibration session)."""

    list_display = ("id", "item", "case", "reviewer", "session", "created_at")
    list_filter = ("session",)
    search_fields = ("reviewer__username",)
    list_select_related = ("item", "case", "reviewer", "session")


@admin.register(CalibrationSession)
class CalibrationSessionAdmin(ReadOnlyAdminMixin, ConsoleHistoryAdmin):
    """Calibration sessions (started and read on the calibration pages)."""

    list_display = ("name", "status", "created_by", "created_at")
    list_filter = ("status",)
    search_fields = ("name",)


@admin.register(ReviewerQualitySnapshot)
class ReviewerQualitySnapshotAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Daily figures per reviewer (what reviewers see of their own gold accuracy)."""

    list_display = ("reviewer", "day", "gold_answered", "gold_accuracy", "agreement", "computed_at")
    list_filter = ("day",)
    search_fields = ("reviewer__username",)
    date_hierarchy = "day"
