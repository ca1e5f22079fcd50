"""Base API views: authentication, the one permission layer, the acting user."""

from __future__ import annotations

from typing import Any

from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.views import APIView

from hitl_portal.actors import set_actor
from hitl_portal.permissions import RolePermission


class ActorMixin:
    """After DRF authenticates (tokens included), bind the user for history and audit."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        set_actor(request.user)


class PortalAPIView(ActorMixin, APIView):
    permission_classes = [RolePermission]
    roles: dict[str, set[str]] = {}


class PortalViewSet(ActorMixin, viewsets.GenericViewSet):
    permission_classes = [RolePermission]
    roles: dict[str, set[str]] = {}
