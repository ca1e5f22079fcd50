"""Audit API: the sealed chain in ``seq`` order, and its verification."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models import Q, QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from audit.api.serializers import (
    AuditEventFilterSerializer,
    AuditEventSerializer,
    ExportQuerySerializer,
    VerifyReportSerializer,
)
from audit.catalogue import ACTIONS
from audit.export import blocks, build_manifest, export_recorded, iter_export
from audit.models import AuditEvent
from audit.selectors import (
    export_range,
    sealed_events,
    verify_chain,
)
from hitl_portal.actors import request_user
from hitl_portal.api.pagination import SeqCursorPagination
from hitl_portal.api.schema import ERROR_BODY, UNAUTHENTICATED
from hitl_portal.api.views import PortalAPIView, PortalViewSet
from hitl_portal.roles import COMPLIANCE_OFFICER

AUDIT_READERS = {COMPLIANCE_OFFICER}  # admins always pass

READ_ERRORS = {
    401: UNAUTHENTICATED,
    403: OpenApiResponse(ERROR_BODY, description="Only compliance officers and admins (code forbidden)."),
}


def _system_id(value: str) -> int:
    """A system filter given as slug (or id) → its id; unknown → 400 naming ``system``."""
    AISystem = apps.get_model("reviews", "AISystem")
    lookup = Q(slug=value) | Q(pk=int(value)) if value.isdigit() else Q(slug=value)
    system_id = AISystem.objects.filter(lookup).values_list("pk", flat=True).first()
    if system_id is None:
        raise ValidationError({"system": [f"unknown system: {value}"]})
    return system_id


def _action_filter(value: str) -> Q:
    """``case.decided,system.*`` → exact names or whole families, each checked against the catalogue."""
    query = Q()
    for name in (part.strip() for part in value.split(",")):
        if not name:
            continue
        if name.endswith(".*"):
            prefix = name[:-1]
            if not any(action.startswith(prefix) for action in ACTIONS):
                raise ValidationError({"action": [f"unknown action family: {name}"]})
            query |= Q(action__startswith=prefix)
        elif name in ACTIONS:
            query |= Q(action=name)
        else:
            raise ValidationError({"action": [f"unknown action: {name}"]})
    return query


class AuditEventViewSet(PortalViewSet):
    """Sealed audit events; unsealed ones are not part of the chain yet and stay invisible."""

    serializer_class = AuditEventSerializer
    pagination_class = SeqCursorPagination
    roles = {"list": AUDIT_READERS}

    def get_queryset(self) -> QuerySet[AuditEvent]:
        params = AuditEventFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        filters: dict[str, Any] = params.validated_data
        queryset = sealed_events()
        if "after_seq" in filters:
            queryset = queryset.filter(seq__gt=filters["after_seq"])
        if "case" in filters:
            queryset = queryset.filter(case_id=filters["case"])
        if filters.get("system"):
            queryset = queryset.filter(system_id=_system_id(filters["system"]))
        if filters.get("action"):
            queryset = queryset.filter(_action_filter(filters["action"]))
        return queryset

    @extend_schema(
        summary="List sealed audit events in seq order",
        parameters=[AuditEventFilterSerializer],
        responses={
            200: AuditEventSerializer(many=True),
            400: OpenApiResponse(
                {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
                description='A filter is invalid; the body names it, e.g. {"system": ["unknown system: x"]}.',
            ),
            **READ_ERRORS,
        },
    )
    def list(self, request: Request) -> Response:
        queryset = self.get_queryset()
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class AuditVerifyView(PortalAPIView):
    """Walk the whole sealed chain and its signed checkpoints; name the first event that does not verify."""

    roles = {"GET": AUDIT_READERS}

    @extend_schema(summary="Verify the audit hash chain", responses={200: VerifyReportSerializer, **READ_ERRORS})
    def get(self, request: Request) -> Response:
        return Response(VerifyReportSerializer(verify_chain().as_report()).data)


class AuditExportView(PortalAPIView):
    """The chain (or a stretch of it) as JSON Lines, streamed; verifiable offline.

    First line: the signed manifest; then one line per event. Check it with
    ``python tools/verify_audit_export.py FILE --key PUBLIC_KEY`` (standard library
    only). Each export is recorded as ``audit.exported``.
    """

    roles = {"GET": AUDIT_READERS}

    @extend_schema(
        summary="Export audit events as JSON Lines (first line a signed manifest)",
        parameters=[ExportQuerySerializer],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR, description="JSON Lines: manifest, then events in seq order."
            ),
            400: OpenApiResponse(
                {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
                description='A bound is invalid; the body names it, e.g. {"from": ["must be a seq ..."]}.',
            ),
            **READ_ERRORS,
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        params = ExportQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        rng = export_range(**params.validated_data)
        manifest = build_manifest(rng)
        export_recorded(actor=request_user(request), rng=rng, manifest=manifest, destination="api")
        name = f"audit-export-{rng.first_seq}-{rng.last_seq}.jsonl" if rng.count else "audit-export-empty.jsonl"
        response = StreamingHttpResponse(blocks(iter_export(rng, manifest=manifest)),
                                         content_type="application/x-ndjson; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["X-Audit-Export-Count"] = str(rng.count)
        return response




__all__ = ["AuditEventViewSet", "AuditExportView", "AuditVerifyView"]
