"""Bias-audit API: request an audit (202, the work runs on Celery), read one, list them.

Thin views: validate, call the service or a selector, shape the answer.
Compliance officers and managers (and admins) may do all three; reviewers and
integrations are refused (403).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from fairness.api.serializers import (
    BiasAuditAcceptedSerializer,
    BiasAuditListQuerySerializer,
    BiasAuditRequestSerializer,
    BiasAuditSerializer,
)
from fairness.selectors import audit_get, audit_representation, audits_visible
from fairness.services import bias_audit_request
from hitl_portal.api.pagination import IdCursorPagination
from hitl_portal.api.schema import paginated
from hitl_portal.api.views import PortalAPIView
from hitl_portal.roles import COMPLIANCE_OFFICER, MANAGER
from reviews.api.views.systems import NOT_FOUND, READ_ERRORS, WRITE_ERRORS

OVERSIGHT = {COMPLIANCE_OFFICER, MANAGER}
AUDIT_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The bias audit's id.")


class BiasAuditListView(PortalAPIView):
    """``/api/v1/bias-audits/``: request an audit, list audits (``?system=`` one system's)."""

    roles = {"GET": OVERSIGHT, "POST": OVERSIGHT}

    @extend_schema(
        operation_id="v1_bias_audits_list",
        summary="List bias audits",
        parameters=[OpenApiParameter("system", str, description="Only this system's audits (slug).")],
        responses={200: paginated("PaginatedBiasAuditList", BiasAuditSerializer(many=True)), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = BiasAuditListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        paginator = IdCursorPagination()
        page = paginator.paginate_queryset(audits_visible(system_slug=query.validated_data.get("system") or None),
                                           request, view=self) or []
        return paginator.get_paginated_response([audit_representation(audit) for audit in page])

    @extend_schema(
        summary="Request a bias audit",
        description="Per-group selection rates (AI and final labels), TPR/FPR where ground truth exists and "
        "override rates; disparate impact ratio, demographic parity difference and equalized odds difference "
        "for both kinds of labels. Runs on Celery in chunks after this request commits: poll the audit. "
        "A breach of the system's thresholds files a bias incident.",
        request=BiasAuditRequestSerializer,
        responses={202: BiasAuditAcceptedSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = BiasAuditRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        audit = bias_audit_request(
            actor=request.user,
            system=data["system"],
            attribute=data["attribute"],
            period_from=data.get("from"),
            period_to=data.get("to"),
        )
        audit = audit_get(audit.pk) or audit
        return Response(audit_representation(audit), status=status.HTTP_202_ACCEPTED)


class BiasAuditDetailView(PortalAPIView):
    """``/api/v1/bias-audits/{id}/``: status, progress, groups, both metric blocks, flag and incident."""

    roles = {"GET": OVERSIGHT}

    @extend_schema(summary="Read a bias audit", parameters=[AUDIT_ID],
                   responses={200: BiasAuditSerializer, **READ_ERRORS, 404: NOT_FOUND})
    def get(self, request: Request, pk: str) -> Response:
        audit = audit_get(int(pk)) if pk.isascii() and pk.isdigit() and len(pk) < 19 else None
        if audit is None:
            raise NotFound("No such bias audit.")
        return Response(audit_representation(audit))
