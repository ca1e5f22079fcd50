"""The oversight console's shared kit (read-only mixin, history without revert, service-backed forms,
actions that ask for a reason) and the admin of the portal's infrastructure rows.

Every app's ``admin.py`` builds on these, so the console behaves the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.text import capfirst
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

from hitl_portal.models import Heartbeat

# The reason the services take is the forms' extra ``change_reason`` field.
SERVICE_FIELD_ALIASES = {"reason": "change_reason"}


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


# --- The shared console kit: history without revert, service-backed forms, reason actions ---------


class _DiffHelper(HistoricalRecordContextHelper):
    """Show an empty foreign key as a dash, not simple-history's "Deleted user (pk=None)"."""

    def prepare_delta_change_value(self, change: Any, value: Any) -> Any:
        if isinstance(value, DeletedObject) and value.pk is None:
            return "—"
        return super().prepare_delta_change_value(change, value)


class ConsoleHistoryAdmin(SimpleHistoryAdmin):
    """Field-level history for every domain model, viewable but never "reverted".

    simple-history's revert form saves a historical version straight back into
    the table: a change of state with no service, no audit event and no version
    bump. History here is evidence to read; changes go through the change form
    (which calls the services), the actions, or the API.
    """

    def has_change_history_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_historical_record_context_helper(self, request: HttpRequest, historical_record: Any) -> Any:
        return _DiffHelper(self.model, historical_record)

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "POST":
            raise PermissionDenied("Historical versions cannot be restored from the console.")
        return super().history_form_view(request, object_id, version_id, extra_context)


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    """An inline for context only: the rows change through services, never through the parent form."""

    extra = 0
    can_delete = False
    show_change_link = True


class _DryRun(Exception):
    """Raised to roll back a validation run of a service."""


def _add_service_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Show a service's refusal on the form: on its field when the form has it, else at the top."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, field_messages in exc.message_dict.items():
        target = SERVICE_FIELD_ALIASES.get(field, field)
        if target in form.fields:
            form.add_error(target, field_messages)
        else:
            form.add_error(None, [f"{field}: {message}" for message in field_messages])


class ServiceBackedAdmin(ConsoleHistoryAdmin):
    """A change form that writes only through a service, and is validated by that same service.

    ``run_service`` is the one write; ``save_model`` calls it. So that a refusal
    (a rule the database cannot express, e.g. "accept_ai is not allowed for Annex
    III 1(a)") is shown on the form rather than as a server error, the form runs
    the service once inside a savepoint that is always rolled back: the rules are
    the services' own, never a copy that could drift. Nothing of the dry run
    survives (rows, history, audit events and their on-commit sealing are all
    discarded with the savepoint).
    """

    def run_service(self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool) -> Any:
        """Abstract hook: each subclass (systems, points, reviewers) calls its own create/update service."""
        raise NotImplementedError(f"{type(self).__name__} must define run_service()")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form_class = super().get_form(request, obj, change=change, **kwargs)
        model_admin = self

        class ServiceValidatedForm(form_class):  # type: ignore[valid-type,misc]
            def _post_clean(self) -> None:
                super()._post_clean()
                if self.errors:
                    return
                try:
                    with transaction.atomic():
                        model_admin.run_service(request, self.instance, self, change)
                        raise _DryRun
                except _DryRun:
                    pass
                except ValidationError as exc:
                    _add_service_errors(self, exc)

        return ServiceValidatedForm

    def save_model(self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool) -> None:
        created = self.run_service(request, obj, form, change)
        if not change and created is not None:
            # The service created the row; the admin goes on with (logs, redirects to) this object.
            obj.pk = created.pk
            obj._state.adding = False
        obj.refresh_from_db()


class ReasonForm(forms.Form):
    """The reason an oversight action needs: it goes into the audit event and the history."""

    reason = forms.CharField(
        label="Reason",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 70}),
        help_text="Required. Recorded in the audit trail with your name.",
    )


def reason_action(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    action_name: str,
    title: str,
    explanation: str,
    submit_label: str,
    apply: Callable[[Any, str], bool],
    done_message: str,
) -> TemplateResponse | None:
    """Ask for a reason on an intermediate page, then apply a service to each selected object.

    ``apply(obj, reason)`` calls the service and returns whether anything changed.
    Each object is its own transaction (the services are atomic), so one refusal
    (e.g. a blocked system) does not undo the others; refusals are reported.
    """
    form = ReasonForm(request.POST if request.POST.get("post") == "yes" else None)
    if form.is_bound and form.is_valid():
        reason = form.cleaned_data["reason"]
        changed: list[str] = []
        unchanged: list[str] = []
        for obj in queryset:
            try:
                (changed if apply(obj, reason) else unchanged).append(str(obj))
            except ValidationError as exc:
                modeladmin.message_user(request, f"{obj}: {' '.join(exc.messages)}", messages.ERROR)
        if changed:
            modeladmin.message_user(request, done_message.format(names=", ".join(changed)), messages.SUCCESS)
        if unchanged:
            modeladmin.message_user(request, f"Nothing to change for: {', '.join(unchanged)}.", messages.INFO)
        return None
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "action_title": title,
        "explanation": explanation,
        "objects_heading": capfirst(opts.verbose_name_plural),
        "submit_label": submit_label,
        "queryset": queryset,
        "opts": opts,
        "form": form,
        "action_name": action_name,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/action_reason_confirmation.html", context)



@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """When each background process last showed a sign of life (what /healthz reports)."""

    list_display = ("name", "seen_at")
    ordering = ("name",)
