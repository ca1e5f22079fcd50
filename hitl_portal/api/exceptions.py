"""API errors: JSON always, a machine-readable ``code`` on 401/403/404/409/413."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from hitl_portal.errors import Conflict, DomainError, Forbidden, Unprocessable

logger = logging.getLogger(__name__)

# The domain's errors, importable from here too: API views raise them like the services do.
__all__ = [
    "DATABASE_UNAVAILABLE", "Conflict", "DomainError", "Forbidden", "Unprocessable", "database_unavailable_response",
    "exception_handler",
]


DATABASE_UNAVAILABLE = {
    "code": "database_unavailable",
    "detail": "The database is unavailable (connection lost); try again shortly.",
}


def database_unavailable_response() -> Response:
    """503 with a ``Retry-After``: a dropped or refused database connection is the server's trouble, and passes."""
    return Response(DATABASE_UNAVAILABLE, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"})


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The one mapping of errors to API responses: domain refusals, Django's errors, DRF's, a lost database."""
    if isinstance(exc, OperationalError | InterfaceError):
        logger.error("database unavailable during %s", context.get("request") and context["request"].path,
                     exc_info=exc)
        return database_unavailable_response()
    if isinstance(exc, DomainError):
        return Response({"code": exc.code_name, "detail": str(exc.detail), **exc.extra}, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        if not isinstance(response.data, dict):
            response.data = {"non_field_errors": response.data}
    elif isinstance(response.data, dict) and "detail" in response.data:
        code = getattr(exc, "code_name", None) or _code_of(exc)
        response.data = {"code": code, "detail": str(response.data["detail"])}
    return response


def _code_of(exc: Exception) -> str:
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return "not_authenticated"
    if isinstance(exc, exceptions.PermissionDenied):
        return "forbidden"
    if isinstance(exc, exceptions.NotFound):
        return "not_found"
    if isinstance(exc, exceptions.Throttled):
        return "throttled"
    if isinstance(exc, exceptions.ParseError):
        return "parse_error"
    if isinstance(exc, exceptions.MethodNotAllowed):
        return "method_not_allowed"
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return "unsupported_media_type"
    return getattr(exc, "default_code", "error")
