"""Records in the oversight console: legal holds and biometric uses change through their services (audited);
purge runs are read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from hitl_portal.admin import ConsoleHistoryAdmin, ReadOnlyAdminMixin, ServiceBackedAdmin, reason_action
from records.models import BiometricUse, LegalHold, PurgeRun
from records.services import biometric_use_end, biometric_use_start, legal_hold_place, legal_hold_release


class LegalHoldForm(forms.ModelForm):
    class Meta:
        model = LegalHold
        fields = ("system", "reason", "reference")


@admin.register(LegalHold)
class LegalHoldAdmin(ServiceBackedAdmin):
    """Legal holds stop retention purges (one system, or all when no system is chosen).

    Placed through the add form and released through the action, both by the
    services (audited); a hold is never edited or deleted.
    """

    form = LegalHoldForm
    list_display = ("id", "scope", "reference", "placed_by", "placed_at", "released_at", "released_by")
    list_filter = (("released_at", admin.EmptyFieldListFilter), "system")
    search_fields = ("reason", "reference")
    actions = ("release_holds",)
    readonly_fields = ("placed_by", "placed_at", "released_by", "released_at", "release_reason")

    def get_fields(self, request: HttpRequest, obj: LegalHold | None = None) -> tuple[str, ...]:
        base = ("system", "reason", "reference")
        return base if obj is None else (*base, *self.readonly_fields)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="scope", ordering="system__slug")
    def scope(self, hold: LegalHold) -> str:
        return hold.system.slug if hold.system is not None else "all systems"

    def run_service(self, request: HttpRequest, obj: LegalHold, form: forms.ModelForm, change: bool) -> Any:
        return legal_hold_place(
            actor=request.user,
            system=form.cleaned_data.get("system"),
            reason=form.cleaned_data.get("reason", ""),
            reference=form.cleaned_data.get("reference", ""),
        )

    @admin.action(description="Release selected legal holds")
    def release_holds(self, request: HttpRequest, queryset: QuerySet[LegalHold]) -> TemplateResponse | None:
        def apply(hold: LegalHold, reason: str) -> bool:
            legal_hold_release(actor=request.user, hold=hold, reason=reason)
            return True

        return reason_action(
            self,
            request,
            queryset.filter(released_at__isnull=True),
            action_name="release_holds",
            title="Release selected legal holds",
            explanation="Once no hold applies, retention purges of these systems resume at the next nightly run.",
            submit_label="Release holds",
            apply=apply,
            done_message="Released: {names}.",
        )


@admin.register(PurgeRun)
class PurgeRunAdmin(ReadOnlyAdminMixin, ConsoleHistoryAdmin):
    """Retention purges: what was erased and the export (path, SHA-256) that keeps it."""

    list_display = ("id", "system", "cutoff", "cases_purged", "events_purged", "history_rows_deleted", "by",
                    "started_at", "export_path")
    list_filter = ("system",)
    list_select_related = ("system", "by")
    ordering = ("-started_at",)
    readonly_fields = (
        "system", "cutoff", "retention_days", "reason", "started_at", "finished_at", "by", "export_path",
        "export_sha256", "export_bytes", "first_seq", "last_seq", "cases_purged", "history_rows_deleted",
        "events_purged",
    )


class BiometricUseForm(forms.ModelForm):
    class Meta:
        model = BiometricUse
        fields = ("system", "started_at", "reference_database", "purpose", "authorisation_ref")


@admin.register(BiometricUse)
class BiometricUseAdmin(ServiceBackedAdmin):
    """Periods of use of remote biometric identification systems (Art. 12(3)(a)-(b))."""

    form = BiometricUseForm
    list_display = ("id", "system", "started_at", "ended_at", "reference_database", "started_by", "ended_by")
    list_filter = ("system", ("ended_at", admin.EmptyFieldListFilter))
    list_select_related = ("system", "started_by", "ended_by")
    search_fields = ("reference_database", "purpose", "authorisation_ref")
    actions = ("end_uses",)
    readonly_fields = ("ended_at", "started_by", "ended_by")

    def get_fields(self, request: HttpRequest, obj: BiometricUse | None = None) -> tuple[str, ...]:
        base = ("system", "started_at", "reference_database", "purpose", "authorisation_ref")
        return base if obj is None else (*base, *self.readonly_fields)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def run_service(self, request: HttpRequest, obj: BiometricUse, form: forms.ModelForm, change: bool) -> Any:
        data = form.cleaned_data
        return biometric_use_start(
            actor=request.user,
            system=data["system"],
            reference_database=data.get("reference_database", ""),
            started_at=data.get("started_at"),
            purpose=data.get("purpose", ""),
            authorisation_ref=data.get("authorisation_ref", ""),
        )

    @admin.action(description="End selected periods of use now")
    def end_uses(self, request: HttpRequest, queryset: QuerySet[BiometricUse]) -> None:
        ended = []
        for use in queryset.filter(ended_at__isnull=True):
            biometric_use_end(actor=request.user, use=use)
            ended.append(str(use.pk))
        if ended:
            self.message_user(request, f"Ended uses: {', '.join(ended)}.", messages.SUCCESS)
        else:
            self.message_user(request, "No ongoing use was selected.", messages.INFO)
