"""API of the incident register: thin views over ``incidents.services``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from hitl_portal.api.pagination import IdCursorPagination
from hitl_portal.api.schema import BAD_INPUT, ERROR_BODY, FORBIDDEN, UNAUTHENTICATED
from hitl_portal.api.views import PortalViewSet
from hitl_portal.roles import COMPLIANCE_OFFICER, MANAGER
from incidents.api.serializers import (
    IncidentCreateSerializer,
    IncidentSerializer,
    IncidentUpdateSerializer,
)
from incidents.models import Incident, IncidentKind, IncidentStatus
from incidents.selectors import incident_get, incident_list
from incidents.services import incident_create, incident_update
from reviews.models import AISystem, Case
from reviews.selectors.systems import is_slug

NOT_FOUND = OpenApiResponse(ERROR_BODY, description="No such incident (code not_found).")
INCIDENT_ID = OpenApiParameter("pk", int, OpenApiParameter.PATH, description="The incident's id.")

TRUE_WORDS = frozenset(("true", "1", "yes"))
FALSE_WORDS = frozenset(("false", "0", "no"))


def _overdue_param(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    lowered = value.lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise serializers.ValidationError({"overdue": ["Must be true or false."]})


class IncidentViewSet(PortalViewSet):
    """The incident register: serious incidents (Art. 73, with the reporting clock), bias and other incidents."""

    roles = {
        "list": {COMPLIANCE_OFFICER, MANAGER},
        "retrieve": {COMPLIANCE_OFFICER, MANAGER},
        "create": {COMPLIANCE_OFFICER},
        "partial_update": {COMPLIANCE_OFFICER},
    }
    pagination_class = IdCursorPagination
    serializer_class = IncidentSerializer
    queryset = Incident.objects.none()  # for the schema generator only; reads go through selectors

    @extend_schema(
        summary="List incidents",
        parameters=[
            OpenApiParameter("system", str, description="An AI system's slug."),
            OpenApiParameter("kind", str, enum=IncidentKind.values),
            OpenApiParameter("status", str, enum=IncidentStatus.values),
            OpenApiParameter("overdue", OpenApiTypes.BOOL,
                             description="true: only Art. 73 reports past due with none filed; false: the others."),
        ],
        responses={200: IncidentSerializer(many=True), 400: BAD_INPUT, 401: UNAUTHENTICATED, 403: FORBIDDEN},
    )
    def list(self, request: Request) -> Response:
        params = request.query_params
        system = params.get("system") or None
        if system is not None and not is_slug(system):
            raise serializers.ValidationError({"system": ["Must be a system's slug."]})
        kind = params.get("kind") or None
        if kind is not None and kind not in IncidentKind.values:
            raise serializers.ValidationError({"kind": [f"Must be one of: {', '.join(IncidentKind.values)}."]})
        wanted_status = params.get("status") or None
        if wanted_status is not None and wanted_status not in IncidentStatus.values:
            raise serializers.ValidationError({"status": [f"Must be one of: {', '.join(IncidentStatus.values)}."]})
        incidents = incident_list(
            user=request.user, system=system, kind=kind, status=wanted_status,
            overdue=_overdue_param(params.get("overdue")),
        )
        page = self.paginate_queryset(incidents)
        return self.get_paginated_response(IncidentSerializer(page, many=True).data)

    @extend_schema(
        summary="File an incident",
        description="The Art. 73 clock runs from `aware_at` by kind: death 10 days, critical infrastructure and "
        "widespread infringement 2 days, other serious harm 15 days; none for bias and other.",
        request=IncidentCreateSerializer,
        responses={201: IncidentSerializer, 400: BAD_INPUT, 401: UNAUTHENTICATED, 403: FORBIDDEN},
    )
    def create(self, request: Request) -> Response:
        serializer = IncidentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        system = AISystem.objects.filter(slug=data["system"]).first() if is_slug(data["system"]) else None
        if system is None:
            raise serializers.ValidationError({"system": [f"Unknown AI system: {data['system']!r}."]})
        case = None
        if data.get("case") is not None:
            case = Case.objects.filter(pk=data["case"]).select_related("system").first()
            if case is None:
                raise serializers.ValidationError({"case": [f"No case with id {data['case']}."]})
        incident = incident_create(
            actor=request.user, system=system, kind=data["kind"], aware_at=data["aware_at"],
            description=data["description"], case=case, title=data.get("title", ""),
        )
        incident = incident_get(user=request.user, pk=incident.pk)
        return Response(IncidentSerializer(incident).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="An incident", parameters=[INCIDENT_ID],
                   responses={200: IncidentSerializer, 401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND})
    def retrieve(self, request: Request, pk: int) -> Response:
        return Response(IncidentSerializer(incident_get(user=request.user, pk=pk)).data)

    @extend_schema(
        summary="Move an incident along its status flow, or add a note",
        description="aware → initial_report → full_report → closed; never backwards; the initial report may be "
        "skipped; bias and other incidents may close at any time. Audited.",
        parameters=[INCIDENT_ID],
        request=IncidentUpdateSerializer,
        responses={200: IncidentSerializer, 400: BAD_INPUT, 401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def partial_update(self, request: Request, pk: int) -> Response:
        incident = incident_get(user=request.user, pk=pk)
        serializer = IncidentUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        incident_update(actor=request.user, incident=incident, status=serializer.validated_data.get("status"),
                        note=serializer.validated_data.get("note", ""))
        return Response(IncidentSerializer(incident_get(user=request.user, pk=pk)).data)
