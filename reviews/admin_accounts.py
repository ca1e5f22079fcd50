"""Accounts in the oversight console: every change of a user goes through an audited service.

Django's stock admin for users, groups and API tokens writes rows directly: an
admin could create a user, make someone a superuser, change a role or a password
with no audit event. Here:

- **Users** are added through ``user_create`` (with their one role) and changed
  through ``user_update`` / ``user_set_password``; nobody is deleted (deactivate
  instead: decisions keep pointing at their reviewer). An action revokes and
  reissues API tokens through ``user_token_rotate``.
- **Groups** are the portal's roles, created by a migration: read-only.
- **Tokens** are listed read-only (keys masked); rotation is the user action above.

Imported by ``reviews.admin`` so that it replaces the stock registrations.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from hitl_portal.actors import current_actor
from hitl_portal.admin import ReadOnlyAdminMixin
from hitl_portal.roles import GROUP_ROLES
from reviews.models import AISystem
from reviews.services.people import USER_FIELDS, user_create, user_set_password, user_token_rotate, user_update

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
        fields = ("username", "password", "first_name", "last_name", "email", "is_active", "is_staff",
                  "is_superuser")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            roles = [g.name for g in self.instance.groups.all() if g.name in GROUP_ROLES]
            self.fields["role"].initial = roles[0] if roles else ""

    def clean(self) -> dict[str, Any]:
        data = super().clean()
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


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason", max_length=2000, widget=forms.Textarea(attrs={"rows": 3, "cols": 70}),
        help_text="Required. Recorded in the audit trail with your name.",
    )


_unregister(User)
_unregister(Group)
_unregister(TokenProxy)


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    """Users with their one role; adds and changes go through the audited account services."""

    form = PortalUserChangeForm
    add_form = PortalUserCreationForm
    change_password_form = PortalPasswordChangeForm
    list_display = ("username", "email", "role", "is_active", "is_superuser", "last_login")
    list_filter = ("is_active", "is_superuser", "groups")
    readonly_fields = ("last_login", "date_joined")
    actions = ("rotate_tokens",)
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
                actor=request.user, username=data["username"], password=data["password1"], role=data["role"],
                email=data.get("email") or "", systems=[s.slug for s in data.get("systems") or []], validate=False,
            )
            obj.pk = user.pk
            obj._state.adding = False
            obj.refresh_from_db()
            return
        changes = {name: data[name] for name in form.changed_data if name in USER_FIELDS}
        role = (data.get("role") or None) if "role" in form.changed_data else None
        user_update(actor=request.user, user=obj, changes=changes, role=role, reason=data.get("change_reason", ""))
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        """Nothing to save: the services wrote the groups and profiles (and their events)."""

    @admin.action(description="Revoke and reissue the API tokens of the selected users")
    def rotate_tokens(self, request: HttpRequest, queryset: QuerySet[User]) -> TemplateResponse | None:
        form = ReasonForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_bound and form.is_valid():
            done = []
            for user in queryset:
                try:
                    user_token_rotate(actor=request.user, user=user, reason=form.cleaned_data["reason"])
                except ValidationError as exc:
                    self.message_user(request, f"{user}: {' '.join(exc.messages)}", messages.ERROR)
                else:
                    done.append(user.username)
            if done:
                self.message_user(request, f"New API tokens issued for: {', '.join(done)}. The old keys no "
                                  "longer work; each user fetches the new one by logging in.", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Revoke and reissue API tokens",
            "action_title": "Revoke and reissue API tokens",
            "explanation": "The current API token of each selected user stops working at once; a new one is "
                           "issued, which the user fetches from /api/v1/auth/token/ with their password.",
            "objects_heading": "Users",
            "submit_label": "Revoke and reissue",
            "queryset": queryset,
            "opts": self.model._meta,
            "form": form,
            "action_name": "rotate_tokens",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/reviews/action_reason_confirmation.html", context)


@admin.register(Group)
class PortalGroupAdmin(ReadOnlyAdminMixin, GroupAdmin):
    """The portal's roles (created by a migration); a user's role is set on the user."""


@admin.register(TokenProxy)
class PortalTokenAdmin(ReadOnlyAdminMixin, TokenAdmin):
    """API tokens, read-only and with keys masked; rotate them from the users list.

    DRF's token admin addresses a token by its user's id (never the key in a URL).
    """

    list_display = ("user", "masked_key", "created")
    list_filter = ("created",)
    search_fields = ("user__username",)
    fields = ("user", "masked_key", "created")
    readonly_fields = fields
    ordering = ("user__username",)

    @admin.display(description="key")
    def masked_key(self, token: TokenProxy) -> str:
        return f"{token.key[:4]}…" if token.key else "—"
