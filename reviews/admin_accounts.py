"""Accounts in the oversight console: every change of a user goes through an audited service.

Django's stock admin for users, groups and API tokens writes rows directly: an
admin could create a user, make someone a superuser, change a role or a password
with no audit event. Here:

- **Users** are added through ``user_create`` (with their one role) and changed
  through ``user_update`` / ``user_set_password``; nobody is deleted (deactivate
  instead: decisions keep pointing at their reviewer). Actions revoke API tokens
  (``user_tokens_revoke``), lift a login lockout (``login_unlock``) and remove a
  lost second factor (``mfa_reset``), each with a reason.
- **Groups** are the portal's roles, created by a migration: read-only.
- **Tokens** (django-rest-knox, hashed) are listed read-only by their prefix; TOTP
  devices are not edited here (enrolled by their owner, reset by the action above).

Imported by ``reviews.admin`` so that it replaces the stock registrations.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from hitl_portal.actors import current_actor, request_user
from hitl_portal.admin import ReadOnlyAdminMixin, reason_action
from hitl_portal.roles import GROUP_ROLES
from reviews.models import AISystem
from reviews.services.identity import login_unlock, mfa_reset
from reviews.services.people import USER_FIELDS, user_create, user_set_password, user_update
from reviews.services.tokens import user_tokens_revoke

ROLE_CHOICES = [(role, role.replace("_", " ")) for role in GROUP_ROLES]


def _unregister(model: type) -> None:
    if admin.site.is_registered(model):
        admin.site.unregister(model)


class PortalUserCreationForm(AdminUserCreationForm):
    """A new account: user name, its one role, e-mail, linked systems and a password."""

    # Accounts are created with a password; one without would be a service account.
    usable_password = None  # type: ignore[assignment]
    role = forms.ChoiceField(choices=ROLE_CHOICES)
    email = forms.EmailField(required=False)
    systems = forms.ModelMultipleChoiceField(
        queryset=AISystem.objects.order_by("name"), required=False,
        help_text="Reviewers: the systems they are qualified for. Integrations: the systems they may post cases to.",
    )


class PortalUserChangeForm(UserChangeForm):
    """Account fields and the role; groups and per-user permissions are not edited by hand."""

    role = forms.ChoiceField(choices=[("", "(no role: administrators only)"), *ROLE_CHOICES], required=False)
    change_reason = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 70}),
        help_text="Why this change is made; recorded in the audit event.",
    )

    class Meta(UserChangeForm.Meta):
        # The stubs type the base Meta's fields as the string "__all__"; Django takes a sequence of names.
        fields = ("username", "password", "first_name", "last_name", "email", "is_active", "is_staff",
                  "is_superuser")  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            roles = [g.name for g in self.instance.groups.all() if g.name in GROUP_ROLES]
            self.fields["role"].initial = roles[0] if roles else ""

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what ModelForm.clean returns (the stubs allow None)
        if not data.get("role") and not data.get("is_superuser"):
            self.add_error("role", "Every account except an administrator has exactly one role.")
        return data


class PortalPasswordChangeForm(AdminPasswordChangeForm):
    """Sets the password through ``user_set_password`` (audited) instead of saving the row itself."""

    def save(self, commit: bool = True) -> User:
        password = self.cleaned_data["password1"] if self.cleaned_data.get("set_usable_password") else None
        # The admin view binds no actor to the form; the acting user is the one the
        # middleware bound for this request (``hitl_portal.actors``).
        self.user = user_set_password(actor=current_actor(), user=self.user, password=password, validate=False)
        return self.user


_unregister(User)
_unregister(Group)
_unregister(AuthToken)
_unregister(TOTPDevice)


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    """Users with their one role; adds and changes go through the audited account services."""

    form = PortalUserChangeForm
    add_form = PortalUserCreationForm
    change_password_form = PortalPasswordChangeForm
    list_display = ("username", "email", "role", "is_active", "is_superuser", "last_login")
    list_filter = ("is_active", "is_superuser", "groups")
    readonly_fields = ("last_login", "date_joined")
    actions = ("rotate_tokens", "unlock_logins", "reset_mfa")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Role and access", {"fields": ("role", "is_active", "is_staff", "is_superuser")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
        ("Audit", {"fields": ("change_reason",)}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "role", "email", "systems", "password1", "password2")}),
    )
    filter_horizontal = ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="role")
    def role(self, user: User) -> str:
        if user.is_superuser:
            return "admin"
        names = [g.name for g in user.groups.all() if g.name in GROUP_ROLES]
        return names[0] if names else "—"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deactivate instead: decisions and events keep pointing at the account.
        return False

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            user, _ = user_create(
                actor=request_user(request), username=data["username"], password=data["password1"], role=data["role"],
                email=data.get("email") or "", systems=[s.slug for s in data.get("systems") or []], validate=False,
            )
            obj.pk = user.pk
            obj._state.adding = False
            obj.refresh_from_db()
            return
        changes = {name: data[name] for name in form.changed_data if name in USER_FIELDS}
        role = (data.get("role") or None) if "role" in form.changed_data else None
        user_update(
            actor=request_user(request), user=obj, changes=changes, role=role, reason=data.get("change_reason", "")
        )
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """Nothing to save: the services wrote the groups and profiles (and their events)."""

    @admin.action(description="Revoke the API tokens of the selected users")
    def rotate_tokens(self, request: HttpRequest, queryset: QuerySet[User]) -> TemplateResponse | None:
        return reason_action(
            self, request, queryset, action_name="rotate_tokens", title="Revoke API tokens",
            explanation="Every API token of each selected user stops working at once. People get a new one by "
                        "logging in; an integration's new token is issued by a compliance officer "
                        "(API tokens page, or POST /api/v1/users/{username}/rotate-token/).",
            submit_label="Revoke",
            apply=lambda user, reason: user_tokens_revoke(actor=request_user(request), user=user, reason=reason) > 0,
            done_message="API tokens revoked for: {names}.",
        )

    @admin.action(description="Lift the login lockout of the selected users")
    def unlock_logins(self, request: HttpRequest, queryset: QuerySet[User]) -> TemplateResponse | None:
        return reason_action(
            self, request, queryset, action_name="unlock_logins", title="Lift login lockouts",
            explanation="Clears the failed-login count of each selected user name and of the addresses that "
                        "locked it out, so the next login with the right password succeeds.",
            submit_label="Unlock",
            apply=lambda user, reason: bool(login_unlock(actor=request_user(request), user=user, reason=reason)),
            done_message="Login lockout lifted for: {names}.",
        )

    @admin.action(description="Remove the second factor of the selected users")
    def reset_mfa(self, request: HttpRequest, queryset: QuerySet[User]) -> TemplateResponse | None:
        return reason_action(
            self, request, queryset, action_name="reset_mfa", title="Remove second-factor devices",
            explanation="For a lost phone: the user's authenticator is removed; they enrol a new one at their "
                        "next login.",
            submit_label="Remove",
            apply=lambda user, reason: mfa_reset(actor=request_user(request), user=user, reason=reason) > 0,
            done_message="Second factor removed for: {names}.",
        )


@admin.register(Group)
class PortalGroupAdmin(ReadOnlyAdminMixin, GroupAdmin):
    """The portal's roles (created by a migration); a user's role is set on the user."""


@admin.register(AuthToken)
class PortalTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """API tokens, read-only, named by their prefix (only a digest of the key is stored).

    Revoking goes through the users' action (audited); issuing is done by the owner
    or, for integrations, by a compliance officer's rotation.
    """

    list_display = ("user", "prefix", "created", "expiry")
    list_filter = ("created", "expiry")
    search_fields = ("user__username", "token_key")
    fields = ("user", "prefix", "created", "expiry")
    readonly_fields = fields
    ordering = ("user__username", "-created")

    @admin.display(description="token")
    def prefix(self, token: AuthToken) -> str:
        return f"{token.token_key}…"
