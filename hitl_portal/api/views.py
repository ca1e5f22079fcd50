"""Base API views: authentication, the one permission layer, the acting user."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.views import APIView

from hitl_portal.actors import set_actor
from hitl_portal.permissions import RolePermission
from hitl_portal.plans import prefer_hot_path_plans


class ActorMixin:
    """After DRF authenticates (tokens included), bind the user for history and audit.

    First, NUL bytes in the query string or the path are refused with a 400 naming the
    parameter: PostgreSQL cannot store or compare them in text, so a NUL that reached a
    query would be a 500.

    A view lists in ``hot_path_methods`` the methods that are write hot paths: their
    statements, the token lookup included, get the hot paths' query plans
    (``hitl_portal.plans``).
    """

    hot_path_methods: frozenset[str] = frozenset()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if request.method in self.hot_path_methods:
            prefer_hot_path_plans()
        bad = sorted({name for name, values in request.query_params.lists()
                      if "\x00" in name or any("\x00" in value for value in values)})
        if any(isinstance(value, str) and "\x00" in value for value in kwargs.values()):
            raise NotFound()  # no object is named with a NUL byte
        if bad:
            raise serializers.ValidationError({name.replace("\x00", "\\x00"): ["NUL bytes are not allowed."]
                                               for name in bad})
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        set_actor(request.user)


class PortalAPIView(ActorMixin, APIView):
    permission_classes = [RolePermission]
    roles: dict[str, set[str]] = {}


class PortalViewSet(ActorMixin, viewsets.GenericViewSet):
    permission_classes = [RolePermission]
    roles: dict[str, set[str]] = {}
