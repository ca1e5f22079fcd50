"""Request-level plumbing: request ids, the body size limit, the acting user."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.wsgi import LimitedStream
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
    request._stream = LimitedStream(io.BytesIO(data), len(data))  # type: ignore[attr-defined]
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
