"""Audit API: the sealed chain in ``seq`` order, and its verification."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models import Q, QuerySet
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from audit.api.serializers import (
    AuditEventFilterSerializer,
    AuditEventSerializer,
    BiometricLogQuerySerializer,
    BiometricUseEndSerializer,
    BiometricUseSerializer,
    ExportQuerySerializer,
    VerifyReportSerializer,
)
from audit.catalogue import ACTIONS
from audit.export import blocks, build_manifest, export_recorded, iter_export
from audit.models import AuditEvent, BiometricUse
from audit.selectors import (
    biometric_searches,
    biometric_use_summary,
    biometric_uses,
    export_range,
    positive_label_of,
    sealed_events,
    verify_chain,
)
from audit.services import biometric_use_end, biometric_use_start
from hitl_portal.api.exceptions import Forbidden
from hitl_portal.api.pagination import SeqCursorPagination
from hitl_portal.api.views import PortalAPIView, PortalViewSet
from hitl_portal.roles import COMPLIANCE_OFFICER, INTEGRATION, user_role

AUDIT_READERS = {COMPLIANCE_OFFICER}  # admins always pass

_ERROR_BODY = {
    "type": "object",
    "properties": {"code": {"type": "string"}, "detail": {"type": "string"}},
    "required": ["code", "detail"],
}
READ_ERRORS = {
    401: OpenApiResponse(_ERROR_BODY, description="Not authenticated (code not_authenticated)."),
    403: OpenApiResponse(_ERROR_BODY, description="Only compliance officers and admins (code forbidden)."),
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
        export_recorded(actor=request.user, rng=rng, manifest=manifest, destination="api")
        name = f"audit-export-{rng.first_seq}-{rng.last_seq}.jsonl" if rng.count else "audit-export-empty.jsonl"
        response = StreamingHttpResponse(blocks(iter_export(rng, manifest=manifest)),
                                         content_type="application/x-ndjson; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["X-Audit-Export-Count"] = str(rng.count)
        return response


class CSVPassthroughRenderer(BaseRenderer):
    """Lets ``?format=csv`` through DRF's content negotiation; the view streams the CSV itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> Any:
        return data


BIOMETRIC_CSV_COLUMNS = (
    "case", "external_id", "received_at", "decided_at", "use", "use_started_at", "use_ended_at",
    "reference_database", "ai_label", "final_label", "resolution", "ai_match", "confirmed_match",
    "input_hash", "input", "input_purged", "verifier_1", "verifier_1_outcome", "verifier_1_at",
    "verifier_2", "verifier_2_outcome", "verifier_2_at", "all_verifiers",
)


def _remote_biometric_system(slug: str) -> Any:
    AISystem = apps.get_model("reviews", "AISystem")
    system = get_object_or_404(AISystem, slug=slug)
    if not system.is_remote_biometric:
        raise ValidationError({"system": [
            f"{slug} is not a remote biometric identification system (Annex III 1(a)); it keeps no Art. 12(3) record."
        ]})
    return system


class BiometricLogView(PortalAPIView):
    """The Art. 12(3) record of a remote biometric identification system (Annex III 1(a)).

    For each period of use: start and end, the reference database; for each search
    (case) in ``[from, to)``: its use, whether it matched, the input by case id and
    hash (and the input itself while it is not purged), and the people who verified
    the result (Art. 14(5): at least two).
    """

    roles = {"GET": AUDIT_READERS}
    renderer_classes = [JSONRenderer, CSVPassthroughRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        # An unknown ``?format=`` would be DRF's 404; answer in JSON and let the
        # query serializer name the parameter (400) instead.
        try:
            return super().perform_content_negotiation(request, force)
        except (Http404, NotFound):
            return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        summary="Art. 12(3) record of a remote biometric identification system",
        parameters=[BiometricLogQuerySerializer],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT, description="Uses and searches (JSON), or one row per search (CSV)."
            ),
            400: OpenApiResponse(
                OpenApiTypes.OBJECT, description="Bad query parameter, or not an Annex III 1(a) system."
            ),
            **READ_ERRORS,
            404: OpenApiResponse(OpenApiTypes.OBJECT, description="Unknown system (code not_found)."),
        },
    )
    def get(self, request: Request, slug: str) -> Any:
        params = BiometricLogQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        system = _remote_biometric_system(slug)
        uses = list(biometric_uses(system=system, start=query["from"], end=query["to"]))
        searches = biometric_searches(
            system=system, start=query["from"], end=query["to"], matches_only=query["matches_only"],
            include_input=query["include_input"], uses=uses,
        )
        if query["format"] == "csv":
            response = StreamingHttpResponse(_biometric_csv(searches, uses), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="biometric-log-{system.slug}.csv"'
            return response
        rows = [search.as_dict() for search in searches]
        return Response({
            "system": system.slug,
            "annex_iii_area": system.annex_iii_area,
            "from": query["from"],
            "to": query["to"],
            "match_label": positive_label_of(system),
            "uses": [
                {**biometric_use_summary(use), "searches": sum(1 for row in rows if row["use"] == use.pk)}
                for use in uses
            ],
            "searches": rows,
            "searches_outside_any_use": sum(1 for row in rows if row["use"] is None),
        })


def _biometric_csv(searches: Any, uses: list[Any]) -> Any:
    """One CSV row per search, streamed (the two verifiers in their own columns, everyone in the last).

    Written by the portal's one CSV writer, which defuses formula-like text
    (``external_id`` and the reference database come from integrations).
    """
    import json

    from hitl_portal.csv_export import csv_lines

    by_id = {use.pk: use for use in uses}

    def iso(value: Any) -> str:
        return value.isoformat().replace("+00:00", "Z") if value else ""

    def rows() -> Any:
        for search in searches:
            use = by_id.get(search.use_id)
            verifiers = search.verifiers
            first = verifiers[0] if verifiers else {}
            second = verifiers[1] if len(verifiers) > 1 else {}
            yield [
                search.case_id, search.external_id, iso(search.received_at), iso(search.decided_at),
                search.use_id or "", iso(use.started_at) if use else "", iso(use.ended_at) if use else "",
                search.reference_database or "", search.ai_label or "", search.final_label or "",
                search.resolution or "",
                "" if search.ai_match is None else str(search.ai_match).lower(),
                "" if search.confirmed_match is None else str(search.confirmed_match).lower(),
                search.input_hash,
                "" if search.input is None else json.dumps(search.input, ensure_ascii=False, sort_keys=True),
                str(search.input_purged).lower(),
                first.get("reviewer", ""), first.get("outcome", ""), iso(first.get("decided_at")),
                second.get("reviewer", ""), second.get("outcome", ""), iso(second.get("decided_at")),
                "; ".join(f"{v['reviewer']} ({v['outcome']}, round {v['round']})" for v in verifiers),
            ]

    return csv_lines(BIOMETRIC_CSV_COLUMNS, rows())


BIOMETRIC_USE_WRITERS = {COMPLIANCE_OFFICER, INTEGRATION}


class BiometricUseViewSet(PortalViewSet):
    """Periods of use of a remote biometric identification system: listed, opened, closed (all audited).

    Integrations may open and close uses of the systems they are linked to (their
    backend knows when an operator starts a search session).
    """

    serializer_class = BiometricUseSerializer
    queryset = BiometricUse.objects.none()  # for the schema; the actions scope uses by system
    roles = {"list": AUDIT_READERS | BIOMETRIC_USE_WRITERS, "create": BIOMETRIC_USE_WRITERS,
             "end": BIOMETRIC_USE_WRITERS}

    def _system(self, slug: str) -> Any:
        system = _remote_biometric_system(slug)
        user = self.request.user
        if user_role(user) == INTEGRATION and not system.integrations.filter(user=user).exists():
            raise Forbidden("This integration is not linked to the system.", code="not_linked")
        return system

    @extend_schema(summary="List periods of use (newest first)", responses={200: BiometricUseSerializer(many=True)})
    def list(self, request: Request, slug: str) -> Response:
        system = self._system(slug)
        uses = biometric_uses(system=system).order_by("-started_at", "-id")[:500]
        return Response(BiometricUseSerializer(uses, many=True).data)

    @extend_schema(summary="Open a period of use", request=BiometricUseSerializer,
                   responses={201: BiometricUseSerializer})
    def create(self, request: Request, slug: str) -> Response:
        system = self._system(slug)
        data = BiometricUseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        use = biometric_use_start(actor=request.user, system=system, **data.validated_data)
        return Response(BiometricUseSerializer(use).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Close a period of use", request=BiometricUseEndSerializer,
                   responses={200: BiometricUseSerializer})
    def end(self, request: Request, slug: str, pk: str) -> Response:
        system = self._system(slug)
        use = get_object_or_404(BiometricUse, pk=pk, system=system)
        data = BiometricUseEndSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        use = biometric_use_end(actor=request.user, use=use, **data.validated_data)
        return Response(BiometricUseSerializer(use).data)


__all__ = ["AuditEventViewSet", "AuditExportView", "AuditVerifyView", "BiometricLogView", "BiometricUseViewSet"]
