"""The compliance workspace in the oversight console: read-only, with field-level history.

Catalog rows are versioned reference data (a change is a new catalog version and
migration); obligations, evidence and FRIA versions change through the
services (the workspace pages and the API), which write the audit events. The
console shows them, and their history, without a second way to change them.
"""

from __future__ import annotations

from django.contrib import admin

from compliance.models import (
    CatalogVersion,
    FundamentalRightsAssessment,
    Milestone,
    Obligation,
    ObligationEvidence,
    Requirement,
)
from hitl_portal.admin import ConsoleHistoryAdmin, ReadOnlyAdminMixin


class MilestoneInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Milestone
    extra = 0
    can_delete = False
    fields = ("key", "title", "original_date", "amended_date", "amendment_note")


@admin.register(CatalogVersion)
class CatalogVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("version", "title", "published_on", "date_basis", "is_current", "loaded_at")
    inlines = [MilestoneInline]


@admin.register(Requirement)
class RequirementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("ref", "framework", "title", "duty_holder", "applies_from_original", "applies_from_amended",
                    "catalog")
    list_filter = ("catalog", "framework", "duty_holder", "group")
    search_fields = ("ref", "title", "summary")
    ordering = ("catalog", "position")
    filter_horizontal = ("related",)


class EvidenceInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ObligationEvidence
    extra = 0
    can_delete = False
    fields = ("kind", "title", "url", "file", "portal_kind", "sha256", "added_by", "added_at")
    readonly_fields = fields


@admin.register(Obligation)
class ObligationAdmin(ReadOnlyAdminMixin, ConsoleHistoryAdmin):
    list_display = ("system", "ref", "status", "owner", "due_date", "applicable", "updated_at")
    list_filter = ("status", "applicable", "requirement__framework", "system")
    search_fields = ("requirement__ref", "requirement__title", "system__slug")
    list_select_related = ("system", "requirement", "owner")
    inlines = [EvidenceInline]

    @admin.display(description="Ref", ordering="requirement__ref")
    def ref(self, obj: Obligation) -> str:
        return obj.requirement.ref


@admin.register(FundamentalRightsAssessment)
class FriaAdmin(ReadOnlyAdminMixin, ConsoleHistoryAdmin):
    list_display = ("system", "version", "created_by", "created_at", "authority_notified_on")
    list_filter = ("system",)
