"""Art. 86 API: the integration issues a case's verification code; officers list and update requests."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from compliance.api.serializers_explanations import (
    ExplanationRequestSerializer,
    ExplanationUpdateSerializer,
    ReferenceSerializer,
)
from compliance.models import ExplanationRequest, ExplanationStatus
from compliance.selectors.explanations import explanation_get, explanation_requests
from compliance.services.explanations import explanation_update, reference_issue
from hitl_portal.api.pagination import IdCursorPagination
from hitl_portal.api.schema import BAD_INPUT, ERROR_BODY, FORBIDDEN, UNAUTHENTICATED
from hitl_portal.api.views import PortalAPIView, PortalViewSet
from hitl_portal.roles import COMPLIANCE_OFFICER, INTEGRATION
from reviews.selectors.cases import case_get

User = get_user_model()
MAX_PK = 2**63 - 1
NOT_FOUND = OpenApiResponse(ERROR_BODY, description="No such object (code not_found).")


class CaseReferenceView(PortalAPIView):
    """``POST /cases/{id}/reference/``: the verification code for the person the case is about."""

    roles = {"POST": {INTEGRATION}}

    @extend_schema(
        operation_id="cases_reference_create", request=None,
        responses={201: ReferenceSerializer, 401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
        summary="Issue the Art. 86 verification code of a case",
        description="Returns the code once (only its hash is kept). Reissuing invalidates the previous code. "
        "Give the person the system's slug, the case's external id and the code.",
    )
    def post(self, request: Request, pk: int) -> Response:
        # 404, not 403, for a case of another integration: its existence is not revealed.
        case = case_get(user=request.user, pk=pk) if 0 < pk <= MAX_PK else None
        if case is None:
            raise Http404("No such case.")
        code = reference_issue(actor=request.user, case=case)
        reference = case.explanation_reference
        body = {"case": case.pk, "system": case.system.slug, "external_id": case.external_id, "code": code,
                "issued_at": reference.issued_at}
        return Response(ReferenceSerializer(body).data, status=status.HTTP_201_CREATED)


class ExplanationRequestViewSet(PortalViewSet):
    """Art. 86 explanation requests, for compliance officers."""

    roles = {"list": {COMPLIANCE_OFFICER}, "partial_update": {COMPLIANCE_OFFICER}}
    pagination_class = IdCursorPagination
    serializer_class = ExplanationRequestSerializer
    queryset = ExplanationRequest.objects.none()  # for the schema generator only; reads go through selectors

    @extend_schema(
        summary="List explanation requests",
        parameters=[OpenApiParameter("status", str, enum=ExplanationStatus.values)],
        responses={200: ExplanationRequestSerializer(many=True), 400: BAD_INPUT, 401: UNAUTHENTICATED,
                   403: FORBIDDEN},
    )
    def list(self, request: Request) -> Response:
        wanted = request.query_params.get("status") or None
        if wanted is not None and wanted not in ExplanationStatus.values:
            raise serializers.ValidationError({"status": [f"Must be one of: {', '.join(ExplanationStatus.values)}."]})
        page = self.paginate_queryset(explanation_requests(status=wanted).order_by("-pk"))
        return self.get_paginated_response(ExplanationRequestSerializer(page, many=True).data)

    @extend_schema(
        summary="Close, reassign or annotate an explanation request",
        parameters=[OpenApiParameter("pk", int, OpenApiParameter.PATH)],
        request=ExplanationUpdateSerializer,
        responses={200: ExplanationRequestSerializer, 400: BAD_INPUT, 401: UNAUTHENTICATED, 403: FORBIDDEN,
                   404: NOT_FOUND},
    )
    def partial_update(self, request: Request, pk: int) -> Response:
        found = explanation_get(int(pk)) if 0 < int(pk) <= MAX_PK else None
        if found is None:
            raise Http404("No such explanation request.")
        serializer = ExplanationUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        if "assignee" in changes and changes["assignee"] is not None:
            assignee = User.objects.filter(username=changes["assignee"]).first()
            if assignee is None:
                raise serializers.ValidationError({"assignee": [f"Unknown user: {changes['assignee']!r}."]})
            changes["assignee"] = assignee
        explanation_update(actor=request.user, request=found, changes=changes)
        return Response(ExplanationRequestSerializer(explanation_get(found.pk)).data)
