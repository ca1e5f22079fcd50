"""Project-level pages: health, the role-aware home page, error pages."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from hitl_portal import notifications
from hitl_portal.models import Heartbeat
from hitl_portal.permissions import AUTHENTICATED, PUBLIC, RolePermission, declare_roles, may_access
from hitl_portal.roles import MANAGER, REVIEWER, user_role


@never_cache
@require_safe
@declare_roles({"GET": {PUBLIC}, "HEAD": {PUBLIC}})
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers, without authentication.

    200 when the database answers and the broker is reachable (or embedded, which
    lives in a file beside the database); 503 naming the failing part otherwise.
    ``worker_last_seen`` is the last heartbeat a worker ran on beat's schedule: it
    tells whether background work runs, without failing the web check.
    """
    body: dict[str, Any] = {"status": "ok", "database": "ok", "broker": "embedded"}
    status = 200
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        body.update(status="error", database="error")
        status = 503
    if not settings.HITL_EMBEDDED_BROKER:
        body["broker"] = _broker_status(settings.CELERY_BROKER_URL)
        if body["broker"] != "ok":
            body["status"] = "error"
            status = 503
    if body["database"] == "ok":
        beat = Heartbeat.objects.filter(name="worker").values_list("seen_at", flat=True).first()
        body["worker_last_seen"] = beat.isoformat() if beat else None
        body["worker_age_s"] = round((timezone.now() - beat).total_seconds(), 1) if beat else None
    return JsonResponse(body, status=status)


def _broker_status(url: str) -> str:
    """``ok`` when a connection to the broker at ``url`` opens within two seconds."""
    from hitl_portal.celery import app

    try:
        with app.connection_for_write(url) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception:
        return "error"


@declare_roles({"GET": {AUTHENTICATED}})
def home(request: HttpRequest) -> HttpResponse:
    """Send each role to where its work is."""
    role = user_role(request.user)
    if role == REVIEWER:
        return redirect("reviews:queue")
    if role == MANAGER:
        return redirect("dashboard:index")
    oversight = may_access(request.user, "compliance:system_create")
    undelivered = list(notifications.undelivered()[:10]) if oversight else []
    return render(request, "home.html", {"role": role, "oversight": oversight, "undelivered_alerts": undelivered})


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", {"message": str(exception or "")}, status=403)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 page; under /api/ a JSON error body like every other API error."""
    if _is_api(request):
        return JsonResponse({"code": "not_found", "detail": "No such API endpoint."}, status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """500 page; under /api/ JSON, and a 503 when the database connection is what failed.

    Called by Django inside its exception handling, so the exception is still at hand.
    """
    import sys

    from django.db import InterfaceError, OperationalError
    from django.views.defaults import server_error as django_server_error

    from hitl_portal.api.exceptions import DATABASE_UNAVAILABLE

    exc = sys.exc_info()[1]
    if _is_api(request):
        if isinstance(exc, OperationalError | InterfaceError):
            response = JsonResponse(DATABASE_UNAVAILABLE, status=503)
            response["Retry-After"] = "5"
            return response
        return JsonResponse({"code": "server_error", "detail": "Internal server error."}, status=500)
    return django_server_error(request)


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema: public, as the contract is (declared like every other view)."""

    permission_classes = [RolePermission]
    roles = {"GET": {PUBLIC}}


class SchemaDocsView(SpectacularSwaggerSplitView):
    """The API docs page (local assets): public. The split view serves its start-up
    script as a file (``?script``): the CSP allows no inline script."""

    permission_classes = [RolePermission]
    roles = {"GET": {PUBLIC}}
