"""The Django admin as the oversight console (see also admin_webhooks)."""

from reviews import admin_accounts, admin_webhooks  # noqa: F401  (register the account and webhook admin)

# ruff: noqa: I001  (the registration import above must stay first)
import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from hitl_portal.admin import ConsoleHistoryAdmin, ReadOnlyAdminMixin, ReadOnlyInline, ServiceBackedAdmin, reason_action
from reviews.models import (
    ROUTING_FIELDS,
    AISystem,
    Case,
    Decision,
    IdempotencyKey,
    IntegrationProfile,
    InterventionPoint,
    ReviewerProfile,
    ReviewerStatus,
    TrainingRecord,
)
from reviews.services.people import integration_rotate_secret, reviewer_update
from reviews.services.queue import case_reassign
from reviews.services.systems import (
    SYSTEM_FIELDS,
    intervention_point_create,
    intervention_point_update,
    intervention_point_rotate_salt,
    system_create,
    system_halt,
    system_resume,
    system_update,
)


def _json_pretty(value: Any) -> str:
    return format_html(
        '<pre class="console-json">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False),
    )


# --- AI systems and intervention points ---------------------------------------------------


class InterventionPointInline(ReadOnlyInline):
    model = InterventionPoint
    fields = ("slug", "name", "stage", "version", "reviewers_required", "sla_seconds", "on_sla_breach")
    readonly_fields = fields


class AISystemAdminForm(forms.ModelForm):
    """Registration fields only; status and classification change through actions and the wizard."""

    change_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 70}),
        help_text="Why this change is made; recorded in the audit event.",
    )

    class Meta:
        model = AISystem
        fields = "__all__"  # noqa: DJ007  (the admin narrows it to its fieldsets)


@admin.register(AISystem)
class AISystemAdmin(ServiceBackedAdmin):
    """AI systems under oversight; the halt / resume actions are the Art. 14(4)(e) stop button."""

    form = AISystemAdminForm
    list_display = ("name", "slug", "tier_display", "annex_iii_area", "status", "status_changed_at", "role")
    list_filter = ("status", "declared_tier", "classified_tier", "role", "sector", "is_public_body")
    search_fields = ("name", "slug", "provider", "purpose")
    inlines = (InterventionPointInline,)
    actions = ("halt_systems", "resume_systems")
    fieldsets = (
        (None, {"fields": ("slug", "name", "purpose", "provider", "role", "sector", "is_public_body")}),
        (
            "Risk classification",
            {
                "fields": (
                    "declared_tier",
                    "annex_iii_area",
                    "classified_tier",
                    "classification_rationale",
                    "classified_at",
                )
            },
        ),
        ("Labels and fairness", {"fields": ("labels", "positive_label", "non_match_label", "protected_attributes",
                                            "bias_thresholds")}),
        ("Reviewer competence", {"fields": ("required_trainings",)}),
        ("Operations", {"fields": ("status", "status_reason", "status_changed_at", "retention_days", "kpi_targets")}),
        ("Integrations", {"fields": ("share_cases_between_integrations",)}),
        ("Audit", {"fields": ("change_reason", "created_at", "updated_at")}),
    )
    readonly_fields = (
        "status",
        "status_reason",
        "status_changed_at",
        "classified_tier",
        "classification_rationale",
        "classified_at",
        "created_at",
        "updated_at",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: AISystem | None = None) -> tuple[str, ...]:
        # The slug is the system's public identifier (API paths, audit filters).
        return (*self.readonly_fields, "slug") if obj is not None else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # cases and history refer to systems; halt instead

    @admin.display(description="risk tier", ordering="classified_tier")
    def tier_display(self, system: AISystem) -> str:
        return system.risk_tier or "-"

    def run_service(self, request: HttpRequest, obj: AISystem, form: forms.ModelForm, change: bool) -> Any:
        """The one write: audit event, history user and the blocking rule come with the service."""
        reason = form.cleaned_data.get("change_reason", "")
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in SYSTEM_FIELDS}
            return system_update(actor=request.user, system=obj, changes=changes, reason=reason) if changes else None
        values = {name: form.cleaned_data[name] for name in SYSTEM_FIELDS if name in form.cleaned_data}
        return system_create(
            actor=request.user,
            slug=form.cleaned_data["slug"],
            name=values.pop("name"),
            labels=values.pop("labels"),
            **values,
        )

    @admin.action(description="Halt selected systems")
    def halt_systems(self, request: HttpRequest, queryset: QuerySet[AISystem]) -> TemplateResponse | None:
        def apply(system: AISystem, reason: str) -> bool:
            return system_halt(actor=request.user, system=system, reason=reason).status != system.status

        return reason_action(
            self,
            request,
            queryset,
            action_name="halt_systems",
            title="Halt selected systems",
            explanation=(
                "While halted, every case of these systems goes to human review and nothing is "
                "auto-accepted (EU AI Act Art. 14(4)(e)). Integrations keep submitting."
            ),
            submit_label="Halt systems",
            apply=apply,
            done_message="Halted: {names}.",
        )

    @admin.action(description="Resume selected systems")
    def resume_systems(self, request: HttpRequest, queryset: QuerySet[AISystem]) -> TemplateResponse | None:
        def apply(system: AISystem, reason: str) -> bool:
            return system_resume(actor=request.user, system=system, reason=reason).status != system.status

        return reason_action(
            self,
            request,
            queryset,
            action_name="resume_systems",
            title="Resume selected systems",
            explanation="Routing rules apply again: cases that no rule sends to a human are auto-accepted.",
            submit_label="Resume systems",
            apply=apply,
            done_message="Resumed: {names}.",
        )


class InterventionPointAdminForm(forms.ModelForm):
    """Routing rules; the system-dependent checks are the services' own."""

    change_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 70}),
        help_text="Why the rules change; recorded in the audit event (the version goes up by one).",
    )

    class Meta:
        model = InterventionPoint
        fields = "__all__"  # noqa: DJ007  (the admin narrows it to its fieldsets)

    # High-stakes conditions are checked by the service (reviews.routing.high_stakes_errors),
    # whose refusal the service-backed form shows on the field.


@admin.register(InterventionPoint)
class InterventionPointAdmin(ServiceBackedAdmin):
    """Where humans step in; every rule change bumps the version that cases record."""

    form = InterventionPointAdminForm
    list_display = (
        "__str__",
        "name",
        "stage",
        "version",
        "reviewers_required",
        "confidence_below",
        "random_sample_rate",
        "sla_seconds",
        "on_sla_breach",
        "blind_review_rate",
    )
    list_filter = ("system", "stage", "on_sla_breach", "reviewers_required")
    list_select_related = ("system",)
    search_fields = ("slug", "name", "system__slug", "system__name")
    fieldsets = (
        (None, {"fields": ("system", "slug", "name", "stage", "version")}),
        (
            "Routing rules",
            {
                "fields": (
                    "confidence_below",
                    "always_review_labels",
                    "high_stakes",
                    "random_sample_rate",
                )
            },
        ),
        (
            "Review",
            {
                "fields": (
                    "reviewers_required",
                    "sla_seconds",
                    "on_sla_breach",
                    "blind_review_rate",
                    "gold_rate",
                    "guidelines",
                )
            },
        ),
        ("Random sample secret", {"fields": ("sampling_salt_masked", "salt_rotated_at")}),
        ("Audit", {"fields": ("change_reason", "created_at", "updated_at")}),
    )
    readonly_fields = ("version", "sampling_salt_masked", "salt_rotated_at", "created_at", "updated_at")
    actions = ("rotate_salts",)

    def get_readonly_fields(self, request: HttpRequest, obj: InterventionPoint | None = None) -> tuple[str, ...]:
        return (*self.readonly_fields, "system", "slug") if obj is not None else self.readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="sampling salt")
    def sampling_salt_masked(self, point: InterventionPoint) -> str:
        # Never shown, not even here: whoever knows it can predict the random sample.
        if point.pk is None:
            return "generated when the point is saved"
        return "•••••••• (secret; use the action \"Rotate sampling salt\" to replace it)"

    def has_rotate_salts_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.action(description="Rotate sampling salt", permissions=["rotate_salts"])
    def rotate_salts(self, request: HttpRequest, queryset: QuerySet[InterventionPoint]) -> TemplateResponse | None:
        def apply(point: InterventionPoint, reason: str) -> bool:
            intervention_point_rotate_salt(actor=request.user, point=point, reason=reason)
            return True

        return reason_action(
            self,
            request,
            queryset,
            action_name="rotate_salts",
            title="Rotate sampling salt",
            explanation=(
                "A new secret salt decides which cases fall into the random sample from now on "
                "(cases already routed keep their routing). Do it when the salt may have leaked."
            ),
            submit_label="Rotate salts",
            apply=apply,
            done_message="Sampling salt rotated: {names}.",
        )

    def run_service(self, request: HttpRequest, obj: InterventionPoint, form: forms.ModelForm, change: bool) -> Any:
        """The one write: audit event, version bump and history user come with the service."""
        reason = form.cleaned_data.get("change_reason", "")
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in ROUTING_FIELDS}
            if not changes:
                return None
            return intervention_point_update(actor=request.user, point=obj, changes=changes, reason=reason)
        rules = {name: form.cleaned_data[name] for name in ROUTING_FIELDS if name in form.cleaned_data}
        return intervention_point_create(
            actor=request.user,
            system=form.cleaned_data["system"],
            slug=form.cleaned_data["slug"],
            name=rules.pop("name"),
            **rules,
        )


# --- People ----------------------------------------------------------------------------------


class TrainingRecordInline(ReadOnlyInline):
    model = TrainingRecord
    fields = ("title", "kind", "system", "completed_at", "expires_at", "evidence_url")
    readonly_fields = fields


class ReviewerProfileAdminForm(forms.ModelForm):
    """Qualifications and the adjudicator flag; suspension goes through the actions."""

    change_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 70}),
        help_text="Required when anything changes; recorded in the audit event.",
    )

    class Meta:
        model = ReviewerProfile
        fields = "__all__"  # noqa: DJ007  (the admin narrows it to its fieldsets)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if [name for name in self.changed_data if name != "change_reason"] and not cleaned.get("change_reason"):
            self.add_error("change_reason", "A reason is required to change a reviewer's competence.")
        return cleaned


@admin.register(ReviewerProfile)
class ReviewerProfileAdmin(ServiceBackedAdmin):
    """Reviewers' competence (Art. 4, Art. 26(2)); suspend and reinstate ask for a reason."""

    form = ReviewerProfileAdminForm
    list_display = ("user", "status", "adjudicator", "qualified_for", "training_valid_until", "status_changed_at")
    list_filter = ("status", "adjudicator", "qualifications")
    search_fields = ("user__username", "user__email", "user__first_name", "user__last_name")
    filter_horizontal = ("qualifications",)
    inlines = (TrainingRecordInline,)
    actions = ("suspend_reviewers", "reinstate_reviewers")
    fieldsets = (
        (None, {"fields": ("user", "status", "status_reason", "status_changed_at")}),
        ("Competence", {"fields": ("adjudicator", "qualifications")}),
        ("Audit", {"fields": ("change_reason", "created_at", "updated_at")}),
    )
    readonly_fields = ("user", "status", "status_reason", "status_changed_at", "created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReviewerProfile]:
        return (
            super().get_queryset(request).select_related("user").prefetch_related("qualifications", "training_records")
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # reviewers are created with their user account (POST /api/v1/users/)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # suspend instead: decisions keep pointing at the reviewer

    @admin.display(description="qualified for")
    def qualified_for(self, profile: ReviewerProfile) -> str:
        return ", ".join(sorted(system.slug for system in profile.qualifications.all())) or "-"

    @admin.display(description="training valid until")
    def training_valid_until(self, profile: ReviewerProfile) -> str:
        records = list(profile.training_records.all())
        if not records:
            return "no training recorded"
        if any(record.expires_at is None for record in records):
            return "no expiry"
        latest = max(record.expires_at for record in records if record.expires_at is not None)
        return f"{latest:%Y-%m-%d}" + (" (expired)" if latest < timezone.localdate() else "")

    def run_service(self, request: HttpRequest, obj: ReviewerProfile, form: forms.ModelForm, change: bool) -> Any:
        """Through ``reviewer_update``: one audit event with before/after and the reason."""
        changed = set(form.changed_data)
        kwargs: dict[str, Any] = {}
        if "adjudicator" in changed:
            kwargs["adjudicator"] = form.cleaned_data["adjudicator"]
        if "qualifications" in changed:
            kwargs["qualifications"] = [system.slug for system in form.cleaned_data["qualifications"]]
        if not kwargs:
            return None
        return reviewer_update(actor=request.user, profile=obj, reason=form.cleaned_data["change_reason"], **kwargs)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        # Qualifications were set by the service (form.save_m2m would bypass it);
        # the inlines are read-only, so there is nothing else to save.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def _set_status(self, request: HttpRequest, queryset: QuerySet[ReviewerProfile], status: str) -> Any:
        def apply(profile: ReviewerProfile, reason: str) -> bool:
            return reviewer_update(actor=request.user, profile=profile, reason=reason, status=status).status != (
                profile.status
            )

        suspend = status == ReviewerStatus.SUSPENDED
        return reason_action(
            self,
            request,
            queryset,
            action_name="suspend_reviewers" if suspend else "reinstate_reviewers",
            title="Suspend selected reviewers" if suspend else "Reinstate selected reviewers",
            explanation=(
                "A suspended reviewer can claim no case; claims they hold expire and return to the queue."
                if suspend
                else "Reinstated reviewers can claim cases of the systems they are qualified for again."
            ),
            submit_label="Suspend reviewers" if suspend else "Reinstate reviewers",
            apply=apply,
            done_message=("Suspended: {names}." if suspend else "Reinstated: {names}."),
        )

    @admin.action(description="Suspend selected reviewers")
    def suspend_reviewers(self, request: HttpRequest, queryset: QuerySet[ReviewerProfile]) -> Any:
        return self._set_status(request, queryset, ReviewerStatus.SUSPENDED)

    @admin.action(description="Reinstate selected reviewers")
    def reinstate_reviewers(self, request: HttpRequest, queryset: QuerySet[ReviewerProfile]) -> Any:
        return self._set_status(request, queryset, ReviewerStatus.ACTIVE)


@admin.register(TrainingRecord)
class TrainingRecordAdmin(ReadOnlyAdminMixin, ConsoleHistoryAdmin):
    """Evidence of AI literacy and competence training, with expiry."""

    list_display = ("title", "reviewer", "kind", "system", "completed_at", "expires_at", "evidence_link")
    list_filter = ("kind", "system", "expires_at")
    list_select_related = ("reviewer__user", "system")
    search_fields = ("title", "reviewer__user__username")
    date_hierarchy = "completed_at"

    @admin.display(description="evidence")
    def evidence_link(self, record: TrainingRecord) -> str:
        if not record.evidence_url:
            return "-"
        return format_html('<a href="{}" rel="noopener noreferrer">link</a>', record.evidence_url)


@admin.register(IntegrationProfile)
class IntegrationProfileAdmin(ReadOnlyAdminMixin, ConsoleHistoryAdmin):
    """Integration accounts; the webhook secret is never displayed except once, on rotation."""

    list_display = ("user", "linked_systems", "secret_rotated_at", "created_at")
    list_filter = ("systems",)
    search_fields = ("user__username",)
    fields = ("user", "systems", "secret_rotated_at", "created_at")
    readonly_fields = fields
    actions = ("rotate_secrets",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[IntegrationProfile]:
        return super().get_queryset(request).select_related("user").prefetch_related("systems")

    def has_rotate_secrets_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    @admin.display(description="systems")
    def linked_systems(self, profile: IntegrationProfile) -> str:
        return ", ".join(sorted(system.slug for system in profile.systems.all())) or "-"

    @admin.action(description="Rotate webhook secrets of selected integrations", permissions=["rotate_secrets"])
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet[IntegrationProfile]) -> None:
        for profile in queryset.select_related("user"):
            secret = integration_rotate_secret(actor=request.user, user=profile.user)
            self.message_user(
                request, f"New webhook secret for {profile.user.username} (shown once): {secret}", messages.WARNING
            )


# --- Cases and decisions --------------------------------------------------------------------


class DecisionInline(ReadOnlyInline):
    model = Decision
    fields = ("reviewer", "round", "outcome", "label", "rationale", "ai_shown", "is_adjudication", "decided_at")
    readonly_fields = fields


@admin.register(Case)
class CaseAdmin(ReadOnlyAdminMixin, ConsoleHistoryAdmin):
    """Cases are changed only by the workflow (ingest, claim, decide, SLA); here they are inspected."""

    list_display = (
        "id",
        "external_id",
        "system",
        "intervention_point",
        "status",
        "routed",
        "prediction_label",
        "final_label",
        "resolution",
        "claimed_by",
        "received_at",
    )
    list_filter = ("status", "resolution", "system", "routed", "sla_breached", "is_gold", "blind")
    list_select_related = ("system", "intervention_point__system", "claimed_by")
    search_fields = ("=id", "=external_id")
    search_help_text = "Exact case id or external id."
    show_full_result_count = False
    inlines = (DecisionInline,)
    actions = ("return_to_queue", "assign_or_adjudicate")
    fieldsets = (
        (None, {"fields": ("system", "intervention_point", "external_id", "submitted_by", "status", "received_at")}),
        (
            "AI output",
            {
                "fields": (
                    "prediction_label",
                    "prediction_confidence",
                    "model_version",
                    "input_pretty",
                    "input_hash",
                    "subject_pretty",
                )
            },
        ),
        (
            "Routing",
            {
                "fields": (
                    "routed",
                    "routing_reasons",
                    "rules_version",
                    "reviewers_required",
                    "is_gold",
                    "gold_label",
                    "blind",
                    "review_round",
                )
            },
        ),
        ("Review", {"fields": ("claimed_by", "claimed_at", "lease_expires_at", "sla_deadline", "sla_breached")}),
        (
            "Outcome",
            {
                "fields": (
                    "resolution",
                    "final_label",
                    "decided_at",
                    "true_label",
                    "true_label_at",
                    "payload_purged_at",
                    "callback_url",
                )
            },
        ),
    )

    @admin.display(description="input")
    @admin.action(description="Take selected cases back from their reviewer (return to the queue)")
    def return_to_queue(self, request: HttpRequest, queryset: QuerySet[Case]) -> TemplateResponse | None:
        def apply(case: Case, reason: str) -> bool:
            if case.status != "claimed":
                return False
            case_reassign(actor=request.user, case=case, reviewer=None, reason=reason)
            return True

        return reason_action(
            self,
            request,
            queryset,
            action_name="return_to_queue",
            title="Return cases to the queue",
            explanation=(
                "The current holder's claim ends at once and the case goes back to the queue "
                "(as escalated if it was escalated); the holder can no longer decide it."
            ),
            submit_label="Return to the queue",
            apply=apply,
            done_message="Returned to the queue: {names}.",
        )

    @admin.action(description="Assign the selected case to a named reviewer, or adjudicate it (officers' page)")
    def assign_or_adjudicate(self, request: HttpRequest, queryset: QuerySet[Case]) -> HttpResponseRedirect | None:
        # The officers' case page holds the audited assign and adjudicate forms (with the
        # eligible reviewers listed); one case at a time, as a person decides it.
        ids = list(queryset.values_list("pk", flat=True)[:2])
        if len(ids) != 1:
            self.message_user(request, "Select exactly one case to assign or adjudicate.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("reviews:officer_case", args=[ids[0]]))

    def input_pretty(self, case: Case) -> str:
        return _json_pretty(case.input)

    @admin.display(description="subject attributes")
    def subject_pretty(self, case: Case) -> str:
        return _json_pretty(case.subject)


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdminMixin, ConsoleHistoryAdmin):
    """Reviewers' verdicts, as recorded."""

    list_display = (
        "id",
        "case",
        "reviewer",
        "round",
        "outcome",
        "label",
        "ai_shown",
        "is_adjudication",
        "time_spent_ms",
        "decided_at",
    )
    list_filter = ("outcome", "is_adjudication", "ai_shown", "case__system")
    list_select_related = ("case", "reviewer")
    search_fields = ("=case__id", "=case__external_id", "reviewer__username")
    show_full_result_count = False


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Stored responses for integrations' Idempotency-Key (replayed on a repeat)."""

    list_display = ("integration", "key", "status_code", "created_at")
    list_select_related = ("integration",)
    search_fields = ("=key", "integration__username")
    list_filter = ("status_code",)
    show_full_result_count = False
