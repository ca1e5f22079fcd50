"""Request-level plumbing: request ids, the body size limit, the acting user."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, PolicyParts
from csp.middleware import CSPMiddleware as LibraryCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.wsgi import LimitedStream
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from hitl_portal.actors import clear_actor, set_actor, set_request_id
from hitl_portal.roles import MFA_ROLES, user_role

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdMiddleware:
    """Give every request an id (or keep a sane incoming ``X-Request-ID``) for audit events."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        set_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            clear_actor()
        response["X-Request-ID"] = request_id
        return response


class BodySizeLimitMiddleware:
    """Answer an oversized body with a JSON 413 before anything reads it; read chunked bodies or refuse them.

    DRF reads the raw stream and so bypasses Django's DATA_UPLOAD_MAX_MEMORY_SIZE;
    checking Content-Length here covers the API and the pages alike.

    A body sent with ``Transfer-Encoding: chunked`` has no Content-Length, and Django
    then reads it as empty: a request would be handled as if nothing had been sent.
    Where the server promises the input ends at the body's end (gunicorn sets
    ``wsgi.input_terminated``; ASGI servers hand over the whole body) it is read here,
    up to the limit, and handed on with its length; elsewhere (Django's development
    server) it is refused with a JSON 411.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.HITL_MAX_BODY_BYTES
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() and not request.META.get(
            "CONTENT_LENGTH"
        ):
            refused = _read_chunked_body(request, limit)
            if refused is not None:
                return refused
        length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            size = int(length)
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length header.", "code": "bad_request"}, status=400)
        if size > limit:
            return _too_large(size, limit)
        return self.get_response(request)


def _too_large(size: int | str, limit: int) -> JsonResponse:
    return JsonResponse(
        {"detail": f"Request body too large: {size} bytes, limit {limit}.", "code": "body_too_large"},
        status=413,
    )


def _read_chunked_body(request: HttpRequest, limit: int) -> JsonResponse | None:
    """Read a chunked body into the request (with its Content-Length), or answer why not."""
    if isinstance(request, ASGIRequest):
        stream = request._stream  # the ASGI handler already holds the whole body in a file
        stream.seek(0, io.SEEK_END)
        size = stream.tell()
        stream.seek(0)
        if size > limit:
            return _too_large(size, limit)
        request.META["CONTENT_LENGTH"] = str(size)
        return None
    if not request.META.get("wsgi.input_terminated"):
        return JsonResponse(
            {"detail": "This server cannot read a chunked request body: send it with a Content-Length header.",
             "code": "length_required"},
            status=411,
        )
    data = request.META["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        return _too_large(f"more than {limit}", limit)
    # The stubs type _stream as BinaryIO; Django's own WSGIRequest keeps a LimitedStream there too.
    request._stream = LimitedStream(io.BytesIO(data), len(data))  # type: ignore[assignment]
    request.META["CONTENT_LENGTH"] = str(len(data))
    return None


class ActorMiddleware:
    """Bind the session user as the acting user for history and audit (pages, admin)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            set_actor(user)
        return self.get_response(request)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as DRF's throttles see it: ``HITL_NUM_PROXIES`` trusted proxy hops.

    django-axes counts failed logins per address with this, so the login pages and the
    token endpoint's throttle agree on who the client is.
    """
    remote = request.META.get("REMOTE_ADDR")
    hops = int(str(settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0))
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if hops and forwarded:
        addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
        if addresses:
            return addresses[-min(hops, len(addresses))]
    return remote


# Paths a user who still owes the second factor may open: the factor's own pages, logging
# out, static files and the health check.
_MFA_OPEN_PREFIXES = ("/accounts/mfa/", "/accounts/logout/", "/accounts/login/", "/static/", "/healthz")


def mfa_required_for(user: Any) -> bool:
    """True when ``HITL_REQUIRE_MFA`` is on and the user's role must prove a second factor."""
    if not settings.HITL_REQUIRE_MFA or user is None or not user.is_authenticated:
        return False
    return user_role(user) in MFA_ROLES


class MFARequiredMiddleware:
    """Session users whose role needs a second factor see nothing until they have given it.

    Runs after django-otp's ``OTPMiddleware`` (which knows whether this session was
    verified with a device) and covers every page, the admin and session use of the
    API. Token requests authenticate inside DRF, after this: the token endpoint asks
    for the code itself.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and mfa_required_for(user)
            and not user.is_verified()
            and not request.path.startswith(_MFA_OPEN_PREFIXES)
        ):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"detail": "Verify your second factor at /accounts/mfa/verify/ first.", "code": "mfa_required"},
                    status=403,
                )
            target = reverse("mfa_verify") if user_has_mfa_device(user) else reverse("mfa_setup")
            return redirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)


def user_has_mfa_device(user: Any) -> bool:
    from django_otp import user_has_device

    return bool(user_has_device(user, confirmed=True))


class PermissionsPolicyMiddleware:
    """Send a Permissions-Policy header on every response.

    The portal uses no camera, microphone, location, payment or sensor API; denying them
    means injected or third-party code cannot reach them either. The value comes from the
    ``HITL_PERMISSIONS_POLICY`` setting (a dict of feature → allow-list, empty = nobody).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header = ", ".join(
            f"{feature}=({' '.join(allow)})" for feature, allow in settings.HITL_PERMISSIONS_POLICY.items()
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.header:
            response.setdefault("Permissions-Policy", self.header)
        return response


# Response attributes by which django-csp's decorators change one view's policy.
_CSP_OVERRIDES = ("_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro",
                  "_csp_replace_ro")
_csp_headers: list[tuple[str, str, tuple[str, ...], str]] | None = None


def _policy_headers() -> list[tuple[str, str, tuple[str, ...], str]]:
    """The settings' policy headers, built once: (header, value, excluded path prefixes, exemption flag)."""
    global _csp_headers
    if _csp_headers is None:
        headers = []
        for header, setting, report_only, flag in ((HEADER, "CONTENT_SECURITY_POLICY", False, "_csp_exempt"),
                                                   (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY",
                                                    True, "_csp_exempt_ro")):
            value = build_policy(**asdict(PolicyParts()), report_only=report_only)
            policy = getattr(settings, setting, None) or {}
            headers.append((header, value, tuple(policy.get("EXCLUDE_URL_PREFIXES", None) or ()), flag))
        _csp_headers = headers
    return _csp_headers


@receiver(setting_changed)
def _forget_policy_headers(setting: str, **kwargs: Any) -> None:
    global _csp_headers
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _csp_headers = None


class CSPMiddleware(LibraryCSPMiddleware):
    """django-csp's middleware, with the policy built once instead of on every response.

    django-csp rebuilds both header values from the settings for every response:
    about a tenth of the CPU of an API request that does no work, in a profile of
    ``bench/pipeline.py``'s floor phase (docs/PERFORMANCE.md). Without a nonce or a per-view decorator the
    values depend on the settings alone, so they are built once (again when a test
    changes the settings). A request that used a nonce, or a response a decorator
    marked, goes through django-csp unchanged.
    """

    def process_response(self, request: HttpRequest, response: Any) -> Any:
        if getattr(request, "_csp_nonce", None) is not None or any(
            getattr(response, name, None) is not None for name in _CSP_OVERRIDES
        ):
            return super().process_response(request, response)
        if response.status_code in (500, 404) and settings.DEBUG:
            return response  # django-csp leaves the debug pages alone
        for header, value, prefixes, flag in _policy_headers():
            if (value and header not in response and not getattr(response, flag, False)
                    and not request.path_info.startswith(prefixes)):
                response[header] = value
        # As django-csp does: a nonce asked for after the header was written is an error, not a silent gap.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response
