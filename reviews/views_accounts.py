"""Pages of one's own account: the TOTP second factor (enrol, verify) and API tokens.

Every write goes through ``reviews.services.identity`` / ``reviews.services.tokens``
(audited). A key is shown once, in the answer to the POST that issued it, and never
put in a URL, a message or the session.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django_otp import login as otp_login

from hitl_portal.middleware import mfa_required_for
from hitl_portal.permissions import AUTHENTICATED, RoleRequiredMixin, has_role
from hitl_portal.roles import ALL_ROLES, COMPLIANCE_OFFICER, INTEGRATION
from reviews.selectors.people import integration_list, own_token_get, token_list, user_get
from reviews.services.identity import mfa_device_for, mfa_enrolment_confirm, mfa_enrolment_start, mfa_verify
from reviews.services.tokens import user_token_issue, user_token_revoke, user_token_rotate


class CodeForm(forms.Form):
    code = forms.RegexField(
        regex=r"^\s*[0-9]{3}\s?[0-9]{3}\s*$", label="Code from your authenticator app",
        error_messages={"invalid": "Enter the 6-digit code."},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "autofocus": True}),
    )


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return "/"


class MFASetupView(RoleRequiredMixin, View):
    """Enrol a TOTP authenticator: the secret (text, otpauth URI and a QR code drawn here), then a code."""

    roles = {"GET": {AUTHENTICATED}, "POST": {AUTHENTICATED}}
    template_name = "registration/mfa_setup.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # A session that has not proven the existing factor must not add another device.
        if _me(request).is_authenticated and mfa_device_for(_me(request)) is not None \
                and not _me(request).is_verified():
            return redirect(f"{reverse('mfa_verify')}?{urlencode({'next': _next_url(request)})}")
        return super().dispatch(request, *args, **kwargs)

    def _render(self, request: HttpRequest, form: CodeForm) -> HttpResponse:
        enrolled = mfa_device_for(_me(request))
        context: dict[str, Any] = {"form": form, "enrolled": enrolled, "next": _next_url(request),
                                   "required": mfa_required_for(_me(request))}
        if enrolled is None:
            device = mfa_enrolment_start(user=_me(request))
            uri = device.config_url
            context.update(secret=_base32(device.bin_key), uri=uri,
                           qr_svg=segno.make(uri, error="m").svg_inline(scale=4, title="TOTP enrolment QR code"))
        return render(request, self.template_name, context)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, CodeForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = CodeForm(request.POST)
        if form.is_valid():
            try:
                device = mfa_enrolment_confirm(user=_me(request), code=form.cleaned_data["code"])
            except ValidationError as exc:
                form.add_error("code", exc.message_dict.get("code", exc.messages))
            else:
                otp_login(request, device)
                messages.success(request, "Second factor enrolled. You will be asked for a code at each login.")
                return redirect(_next_url(request))
        return self._render(request, form)


def _me(request: HttpRequest) -> Any:
    """The signed-in user (the role check ran first), django-otp's ``is_verified`` included."""
    return request.user


def _base32(key: bytes) -> str:
    from base64 import b32encode

    text = b32encode(key).decode().rstrip("=")
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))


class MFAVerifyView(RoleRequiredMixin, View):
    """The second step after the password: a code from the enrolled authenticator."""

    roles = {"GET": {AUTHENTICATED}, "POST": {AUTHENTICATED}}
    template_name = "registration/mfa_verify.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        if mfa_device_for(_me(request)) is None:
            return redirect(f"{reverse('mfa_setup')}?{urlencode({'next': _next_url(request)})}")
        return render(request, self.template_name, {"form": CodeForm(), "next": _next_url(request)})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = CodeForm(request.POST)
        if form.is_valid():
            device = mfa_verify(user=_me(request), code=form.cleaned_data["code"])
            if device is not None:
                otp_login(request, device)
                return redirect(_next_url(request))
            form.add_error("code", "That code is not valid. Wait for the next one and try again.")
        return render(request, self.template_name, {"form": form, "next": _next_url(request)})


class RotateForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.HiddenInput)
    reason = forms.CharField(max_length=2000, label="Reason", widget=forms.TextInput)


class TokensView(RoleRequiredMixin, View):
    """Your API tokens: issue one (shown once), revoke any. Officers also rotate integrations' tokens."""

    roles = {"GET": ALL_ROLES, "POST": ALL_ROLES}
    template_name = "registration/tokens.html"

    def _render(self, request: HttpRequest, **extra: Any) -> HttpResponse:
        officer = has_role(_me(request), {COMPLIANCE_OFFICER})
        integrations = []
        if officer:
            integrations = list(integration_list())
        context = {"tokens": token_list(user=_me(request)), "officer": officer, "integrations": integrations,
                   "ttl_hours": int(settings.HITL_TOKEN_TTL.total_seconds() // 3600), **extra}
        return render(request, self.template_name, context)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        action = request.POST.get("action")
        if action == "issue":
            token, key = user_token_issue(user=_me(request), actor=_me(request))
            return self._render(request, new_key=key, new_token=token, new_for=_me(request).username)
        if action == "revoke":
            try:
                token = own_token_get(user=_me(request), token_id=request.POST.get("token_id") or "")
            except Http404:
                messages.error(request, "No such token of yours.")
            else:
                user_token_revoke(actor=_me(request), token=token)
                messages.success(request, "Token revoked: it no longer works.")
            return redirect("account_tokens")
        if action == "rotate" and has_role(_me(request), {COMPLIANCE_OFFICER}):
            form = RotateForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Give a reason for the rotation.")
                return redirect("account_tokens")
            user = user_get(username=form.cleaned_data["username"])
            if not user.groups.filter(name=INTEGRATION).exists():
                raise Http404("No such integration.")
            token, key = user_token_rotate(actor=_me(request), user=user, reason=form.cleaned_data["reason"])
            return self._render(request, new_key=key, new_token=token, new_for=user.username)
        return HttpResponse("Unknown action.", status=400)
