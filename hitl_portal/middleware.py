"""Request-level plumbing: request ids, the body size limit, the acting user."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from hitl_portal.actors import clear_actor, set_actor, set_request_id

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
    """Answer an oversized body with a JSON 413 before anything reads it.

    DRF reads the raw stream and so bypasses Django's DATA_UPLOAD_MAX_MEMORY_SIZE;
    checking Content-Length here covers the API and the pages alike.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            size = int(length)
        except ValueError:
            return JsonResponse({"detail": "Invalid Content-Length header.", "code": "bad_request"}, status=400)
        limit = settings.HITL_MAX_BODY_BYTES
        if size > limit:
            return JsonResponse(
                {"detail": f"Request body too large: {size} bytes, limit {limit}.", "code": "body_too_large"},
                status=413,
            )
        return self.get_response(request)


class ActorMiddleware:
    """Bind the session user as the acting user for history and audit (pages, admin)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            set_actor(user)
        return self.get_response(request)


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
