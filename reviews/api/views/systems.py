"""API of AI systems and their intervention points: thin views over the systems services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from hitl_portal.actors import request_user
from hitl_portal.api.pagination import IdCursorPagination
from hitl_portal.api.schema import BAD_INPUT, ERROR_BODY, FORBIDDEN, NOT_FOUND, UNAUTHENTICATED
from hitl_portal.api.views import PortalViewSet
from hitl_portal.roles import COMPLIANCE_OFFICER, GROUP_ROLES, INTEGRATION, user_role
from reviews.api.serializers.systems import (
    AISystemSerializer,
    InterventionPointPublicSerializer,
    InterventionPointSerializer,
    SaltRotationResultSerializer,
    SaltRotationSerializer,
    SystemReasonSerializer,
)
from reviews.models import AISystem, InterventionPoint
from reviews.selectors.systems import intervention_point_get, intervention_point_list, system_get, system_list
from reviews.services.systems import (
    intervention_point_create,
    intervention_point_rotate_salt,
    intervention_point_update,
    system_create,
    system_halt,
    system_resume,
    system_update,
)

ANY_ROLE = set(GROUP_ROLES)
OFFICERS = {COMPLIANCE_OFFICER}

READ_ERRORS = {401: UNAUTHENTICATED, 403: FORBIDDEN}
WRITE_ERRORS = {400: BAD_INPUT, 401: UNAUTHENTICATED, 403: FORBIDDEN, 413: OpenApiResponse(
    ERROR_BODY, description="Body over the size limit (code body_too_large).")}

SYSTEM_SLUG = OpenApiParameter("slug", str, OpenApiParameter.PATH, description="The AI system's slug.")
POINT_SLUG = OpenApiParameter("point", str, OpenApiParameter.PATH, description="The intervention point's slug.")


class SlugCursorPagination(IdCursorPagination):
    """Systems and intervention points page in slug order (unique within the listing)."""

    ordering = "slug"
    numeric_position = False


class SystemViewSet(PortalViewSet):
    """The register of AI systems under oversight (EU AI Act tier, label space, status)."""

    roles = {
        "list": ANY_ROLE,
        "retrieve": ANY_ROLE,
        "create": OFFICERS,
        "partial_update": OFFICERS,
        "halt": OFFICERS,
        "resume": OFFICERS,
    }
    pagination_class = SlugCursorPagination
    serializer_class = AISystemSerializer
    queryset = AISystem.objects.none()  # for the schema generator only; reads go through selectors

    @extend_schema(summary="List AI systems", responses={200: AISystemSerializer(many=True), **READ_ERRORS})
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(system_list())
        return self.get_paginated_response(AISystemSerializer(page, many=True).data)

    @extend_schema(
        summary="Register an AI system",
        description="A prohibited tier registers the system as blocked (it refuses cases).",
        request=AISystemSerializer,
        responses={201: AISystemSerializer, **WRITE_ERRORS},
    )
    def create(self, request: Request) -> Response:
        serializer = AISystemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        system = system_create(actor=request_user(request), **serializer.service_fields())
        return Response(AISystemSerializer(system).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="An AI system", parameters=[SYSTEM_SLUG],
                   responses={200: AISystemSerializer, **READ_ERRORS, 404: NOT_FOUND})
    def retrieve(self, request: Request, slug: str) -> Response:
        return Response(AISystemSerializer(system_get(slug=slug)).data)

    @extend_schema(
        summary="Change an AI system's registration",
        description="Any writable field; the change is audited and kept in history. "
        "`risk_tier` sets the declared tier.",
        parameters=[SYSTEM_SLUG],
        request=AISystemSerializer,
        responses={200: AISystemSerializer, **WRITE_ERRORS, 404: NOT_FOUND},
    )
    def partial_update(self, request: Request, slug: str) -> Response:
        system = system_get(slug=slug)
        serializer = AISystemSerializer(system, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        system = system_update(actor=request_user(request), system=system, changes=serializer.service_fields(),
                               reason=serializer.validated_data.get("reason", ""))
        return Response(AISystemSerializer(system).data)

    @extend_schema(
        summary="Halt an AI system (Art. 14(4)(e) stop)",
        description="While halted every case goes to humans and nothing is auto-accepted.",
        parameters=[SYSTEM_SLUG],
        request=SystemReasonSerializer,
        responses={200: AISystemSerializer, **WRITE_ERRORS, 404: NOT_FOUND},
    )
    def halt(self, request: Request, slug: str) -> Response:
        return self._change_status(request, slug, system_halt)

    @extend_schema(
        summary="Resume a halted AI system",
        parameters=[SYSTEM_SLUG],
        request=SystemReasonSerializer,
        responses={200: AISystemSerializer, **WRITE_ERRORS, 404: NOT_FOUND},
    )
    def resume(self, request: Request, slug: str) -> Response:
        return self._change_status(request, slug, system_resume)

    def _change_status(self, request: Request, slug: str, service: Any) -> Response:
        system = system_get(slug=slug)
        serializer = SystemReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        system = service(actor=request.user, system=system, reason=serializer.validated_data["reason"])
        return Response(AISystemSerializer(system).data)


# Integrations get the public view (slug, name, stage, kind); everyone else the rules.
POINT_AS_SEEN = PolymorphicProxySerializer(
    component_name="InterventionPointAsSeen",
    serializers=[InterventionPointSerializer, InterventionPointPublicSerializer],
    resource_type_field_name=None,
)


def _point_serializer_class(request: Request) -> type[InterventionPointSerializer | InterventionPointPublicSerializer]:
    """What the viewer may see of a point: an overseen system never sees its routing rules."""
    if user_role(request.user) == INTEGRATION:
        return InterventionPointPublicSerializer
    return InterventionPointSerializer


class InterventionPointViewSet(PortalViewSet):
    """Where humans step in for one system, and the routing rules that send cases to them."""

    roles = {
        "list": ANY_ROLE,
        "retrieve": ANY_ROLE,
        "create": OFFICERS,
        "partial_update": OFFICERS,
        "rotate_salt": OFFICERS,
    }
    pagination_class = SlugCursorPagination
    serializer_class = InterventionPointSerializer
    queryset = InterventionPoint.objects.none()  # for the schema generator only

    @extend_schema(
        summary="List a system's intervention points",
        description="Integrations see only `slug`, `name`, `stage` (and `kind`): never thresholds, "
        "conditions or rates.",
        parameters=[SYSTEM_SLUG],
        responses={200: PolymorphicProxySerializer(
            component_name="InterventionPointAsSeenList",
            serializers=[InterventionPointSerializer, InterventionPointPublicSerializer],
            resource_type_field_name=None, many=True,
        ), **READ_ERRORS, 404: NOT_FOUND},
    )
    def list(self, request: Request, slug: str) -> Response:
        page = self.paginate_queryset(intervention_point_list(system=system_get(slug=slug)))
        return self.get_paginated_response(_point_serializer_class(request)(page, many=True).data)

    @extend_schema(
        summary="Create an intervention point",
        description="Starts at `version` 1. Annex III 1(a) systems need two reviewers and refuse `accept_ai`.",
        parameters=[SYSTEM_SLUG],
        request=InterventionPointSerializer,
        responses={201: InterventionPointSerializer, **WRITE_ERRORS, 404: NOT_FOUND},
    )
    def create(self, request: Request, slug: str) -> Response:
        system = system_get(slug=slug)
        serializer = InterventionPointSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.service_fields()
        point = intervention_point_create(
            actor=request_user(request), system=system, slug=fields.pop("slug"), name=fields.pop("name"), **fields
        )
        return Response(InterventionPointSerializer(point).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="An intervention point", parameters=[SYSTEM_SLUG, POINT_SLUG],
                   description="Integrations see only `slug`, `name`, `stage` (and `kind`).",
                   responses={200: POINT_AS_SEEN, **READ_ERRORS, 404: NOT_FOUND})
    def retrieve(self, request: Request, slug: str, point: str) -> Response:
        found = intervention_point_get(system=system_get(slug=slug), slug=point)
        return Response(_point_serializer_class(request)(found).data)

    @extend_schema(
        summary="Change an intervention point's rules",
        description="Any rule field; a change bumps `version` by one (cases record the version that routed them).",
        parameters=[SYSTEM_SLUG, POINT_SLUG],
        request=InterventionPointSerializer,
        responses={200: InterventionPointSerializer, **WRITE_ERRORS, 404: NOT_FOUND},
    )
    def partial_update(self, request: Request, slug: str, point: str) -> Response:
        found = intervention_point_get(system=system_get(slug=slug), slug=point)
        serializer = InterventionPointSerializer(found, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        updated = intervention_point_update(
            actor=request_user(request), point=found, changes=serializer.service_fields(),
            reason=serializer.validated_data.get("reason", ""),
        )
        return Response(InterventionPointSerializer(updated).data)

    @extend_schema(
        summary="Rotate an intervention point's secret sampling salt",
        description="A new salt decides the random sample from now on; the salt is never returned. Audited "
        "(`intervention_point.salt_rotated`) with the reason.",
        parameters=[SYSTEM_SLUG, POINT_SLUG],
        request=SaltRotationSerializer,
        responses={200: SaltRotationResultSerializer, **WRITE_ERRORS, 404: NOT_FOUND},
    )
    def rotate_salt(self, request: Request, slug: str, point: str) -> Response:
        found = intervention_point_get(system=system_get(slug=slug), slug=point)
        serializer = SaltRotationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rotated = intervention_point_rotate_salt(actor=request_user(request), point=found,
                                                 reason=serializer.validated_data["reason"])
        return Response(SaltRotationResultSerializer(rotated).data)
