"""API of the compliance workspace: classification, obligations, FRIA, dossier, catalog.

Thin views over ``compliance.services`` (writes, audited) and ``compliance.selectors``
(reads). Role requirements are declared per method; admins pass every check;
reviewers and integrations are refused everything here.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from compliance.api.serializers_workspace import (
    ClassificationAnswersSerializer,
    ClassificationSerializer,
    FriaInputSerializer,
    FriaSerializer,
    ObligationSerializer,
    ObligationUpdateSerializer,
    RequirementSerializer,
)
from compliance.dossier import DOSSIER_FORMATS
from compliance.models import Framework, ObligationStatus
from compliance.selectors.catalog import calendar, current_catalog, requirement_list
from compliance.selectors.fria import fria_get, fria_required, fria_versions
from compliance.selectors.obligations import obligation_get, obligation_list, obligations_progress
from compliance.services.classification import system_classify
from compliance.services.dossier import dossier_generate
from compliance.services.fria import fria_save
from compliance.services.obligations import NewEvidence, obligation_update, obligations_sync
from hitl_portal.api.pagination import IdCursorPagination
from hitl_portal.api.views import PortalAPIView
from hitl_portal.roles import COMPLIANCE_OFFICER, MANAGER
from reviews.api.views.systems import NOT_FOUND, READ_ERRORS, SYSTEM_SLUG, WRITE_ERRORS
from reviews.selectors.systems import system_get

OFFICERS = {COMPLIANCE_OFFICER}
OFFICERS_AND_MANAGERS = {COMPLIANCE_OFFICER, MANAGER}
REF = OpenApiParameter("ref", str, OpenApiParameter.PATH, description='Catalog ref, e.g. "AIA-14.4.e".')

SYNC_RESULT = inline_serializer("ObligationSyncResult", {
    "created": serializers.ListField(child=serializers.CharField()),
    "retired": serializers.ListField(child=serializers.CharField()),
    "reopened": serializers.ListField(child=serializers.CharField()),
    "progress": serializers.DictField(),
})


def _progress(system: Any) -> dict[str, Any]:
    return obligations_progress(system=system).as_dict()


class ClassificationView(PortalAPIView):
    """The EU AI Act classification of one system (the classified tier wins over the declared one)."""

    roles = {"GET": OFFICERS_AND_MANAGERS, "POST": OFFICERS}

    @extend_schema(summary="A system's classification", parameters=[SYSTEM_SLUG],
                   responses={200: ClassificationSerializer, **READ_ERRORS, 404: NOT_FOUND})
    def get(self, request: Request, slug: str) -> Response:
        return Response(ClassificationSerializer(system_get(slug=slug)).data)

    @extend_schema(
        summary="Classify a system",
        description="Runs the decision order (scope → Art. 5 → Annex I / Annex III → Art. 6(3) with the profiling "
                    "override → Art. 50), stores tier and rationale (audited `system.classified`), blocks a "
                    "prohibited system (`system.blocked`; its cases are then refused with 409 "
                    "`system_prohibited`) and regenerates the system's obligations.",
        parameters=[SYSTEM_SLUG], request=ClassificationAnswersSerializer,
        responses={200: ClassificationSerializer, **WRITE_ERRORS, 404: NOT_FOUND},
    )
    def post(self, request: Request, slug: str) -> Response:
        system = system_get(slug=slug)
        serializer = ClassificationAnswersSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        system, _, sync = system_classify(actor=request.user, system=system, answers=serializer.answers(),
                                          reason=serializer.validated_data.get("reason", ""))
        body = ClassificationSerializer(system).data
        body["obligations"] = {"created": sync.created, "retired": sync.retired, "reopened": sync.reopened,
                               "progress": _progress(system)}
        body["fria_required"] = fria_required(system)
        return Response(body)


class ObligationPagination(IdCursorPagination):
    """Catalog order (obligations are generated in it), with the system's progress alongside."""

    ordering = "id"
    progress: dict[str, Any] = {}

    def get_paginated_response(self, data: Any) -> Response:
        response = super().get_paginated_response(data)
        response.data["progress"] = self.progress
        return response

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        result = super().get_paginated_response_schema(schema)
        result["properties"]["progress"] = {"type": "object"}
        return result


class ObligationListView(PortalAPIView):
    """A system's obligations from the catalog, by tier × role."""

    roles = {"GET": OFFICERS}
    pagination_class = ObligationPagination

    @extend_schema(
        summary="A system's obligations",
        parameters=[
            SYSTEM_SLUG,
            OpenApiParameter("framework", str, enum=Framework.values, description="Only this framework."),
            OpenApiParameter("status", str, enum=ObligationStatus.values, description="Only this status."),
            OpenApiParameter("applicable", bool, description="false includes obligations retired by a "
                                                             "re-classification (default: only applicable)."),
        ],
        responses={200: ObligationSerializer(many=True), **READ_ERRORS, 404: NOT_FOUND},
    )
    def get(self, request: Request, slug: str) -> Response:
        system = system_get(slug=slug)
        errors: dict[str, list[str]] = {}
        framework = request.query_params.get("framework", "")
        state = request.query_params.get("status", "")
        if framework and framework not in Framework.values:
            errors["framework"] = [f"must be one of {', '.join(Framework.values)}"]
        if state and state not in ObligationStatus.values:
            errors["status"] = [f"must be one of {', '.join(ObligationStatus.values)}"]
        include_retired = request.query_params.get("applicable", "true").lower() == "false"
        if errors:
            raise ValidationError(errors)
        rows = obligation_list(system=system, include_retired=include_retired)
        if framework:
            rows = rows.filter(requirement__framework=framework)
        if state:
            rows = rows.filter(status=state)
        paginator = self.pagination_class()
        paginator.progress = _progress(system)
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(ObligationSerializer(page, many=True).data)


class ObligationSyncView(PortalAPIView):
    roles = {"POST": OFFICERS}

    @extend_schema(summary="Regenerate a system's obligations from the current catalog",
                   description="Creates missing obligations and retires those that no longer apply (kept, "
                               "marked not applicable); each change is audited `obligation.updated`.",
                   parameters=[SYSTEM_SLUG], request=None,
                   responses={200: SYNC_RESULT, **READ_ERRORS, 404: NOT_FOUND})
    def post(self, request: Request, slug: str) -> Response:
        system = system_get(slug=slug)
        result = obligations_sync(actor=request.user, system=system)
        return Response({"created": result.created, "retired": result.retired, "reopened": result.reopened,
                         "progress": _progress(system)})


class ObligationDetailView(PortalAPIView):
    """One obligation: read it, or change status / owner / due date / note and attach evidence."""

    roles = {"GET": OFFICERS, "PATCH": OFFICERS}
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(summary="One obligation", parameters=[SYSTEM_SLUG, REF],
                   responses={200: ObligationSerializer, **READ_ERRORS, 404: NOT_FOUND})
    def get(self, request: Request, slug: str, ref: str) -> Response:
        return Response(ObligationSerializer(obligation_get(system=system_get(slug=slug), ref=ref)).data)

    @extend_schema(
        summary="Update an obligation",
        description="Any of status, owner, due, note; evidence by `evidence_url` (+ `evidence_title`), "
                    "`evidence_file` (multipart) or `capture_portal_evidence: true`. Marking `met` needs evidence; "
                    "`not_applicable` needs a note or reason. Audited `obligation.updated`.",
        parameters=[SYSTEM_SLUG, REF], request=ObligationUpdateSerializer,
        responses={200: ObligationSerializer, **WRITE_ERRORS, 404: NOT_FOUND},
    )
    def patch(self, request: Request, slug: str, ref: str) -> Response:
        system = system_get(slug=slug)
        obligation = obligation_get(system=system, ref=ref)
        serializer = ObligationUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        evidence = []
        if "evidence_url" in data:
            evidence.append(NewEvidence(kind="link", url=data["evidence_url"], title=data.get("evidence_title", "")))
        if "evidence_file" in data:
            evidence.append(NewEvidence(kind="file", file=data["evidence_file"],
                                        title=data.get("evidence_title", "") if "evidence_url" not in data else ""))
        if data.get("capture_portal_evidence"):
            evidence.append(NewEvidence(kind="portal"))
        changes = {key: data[key] for key in ("status", "owner", "note") if key in data}
        if "due" in data:
            changes["due_date"] = data["due"]
        if not changes and not evidence:
            raise ValidationError({"non_field_errors": ["Nothing to change."]})
        obligation = obligation_update(actor=request.user, obligation=obligation, add_evidence=evidence,
                                       reason=data.get("reason", ""), **changes)
        return Response(ObligationSerializer(obligation_get(system=system, ref=ref)).data)


class FriaView(PortalAPIView):
    """The system's fundamental rights impact assessment (Art. 27): versions, and a new one."""

    roles = {"GET": OFFICERS_AND_MANAGERS, "POST": OFFICERS}

    @extend_schema(
        summary="A system's FRIA versions", operation_id="system_fria_list",
        parameters=[SYSTEM_SLUG],
        responses={200: inline_serializer("FriaOverview", {
            "required": serializers.BooleanField(), "latest": FriaSerializer(allow_null=True),
            "versions": FriaSerializer(many=True)}), **READ_ERRORS, 404: NOT_FOUND},
    )
    def get(self, request: Request, slug: str) -> Response:
        system = system_get(slug=slug)
        versions = list(fria_versions(system=system))
        return Response({
            "required": fria_required(system),
            "latest": FriaSerializer(versions[0]).data if versions else None,
            "versions": FriaSerializer(versions, many=True).data,
        })

    @extend_schema(summary="Save a new FRIA version", description="Every save is a new version; audited "
                   "`fria.saved`.", parameters=[SYSTEM_SLUG], request=FriaInputSerializer,
                   responses={201: FriaSerializer, **WRITE_ERRORS, 404: NOT_FOUND})
    def post(self, request: Request, slug: str) -> Response:
        system = system_get(slug=slug)
        serializer = FriaInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        fria = fria_save(actor=request.user, system=system, contents=serializer.contents(),
                         first_use_on=data.get("first_use_on"),
                         authority_notified_on=data.get("authority_notified_on"),
                         change_summary=data.get("change_summary", ""))
        return Response(FriaSerializer(fria).data, status=status.HTTP_201_CREATED)


class FriaVersionView(PortalAPIView):
    roles = {"GET": OFFICERS_AND_MANAGERS}

    @extend_schema(summary="One FRIA version", operation_id="system_fria_version", parameters=[
        SYSTEM_SLUG, OpenApiParameter("version", int, OpenApiParameter.PATH)],
        responses={200: FriaSerializer, **READ_ERRORS, 404: NOT_FOUND})
    def get(self, request: Request, slug: str, version: int) -> Response:
        return Response(FriaSerializer(fria_get(system=system_get(slug=slug), version=version)).data)


class DossierView(PortalAPIView):
    """The human-oversight / Annex IV dossier, generated from live data; each generation is audited."""

    roles = {"GET": OFFICERS}

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        # ``?format=`` names the document format here, not a DRF renderer; errors stay JSON.
        return JSONRenderer(), "application/json"

    @extend_schema(
        summary="A system's dossier (PDF or HTML)",
        description="Built from live data along Annex IV and Art. 14; records `dossier.generated` with the "
                    "document's SHA-256 (also sent as the `X-Content-SHA256` header).",
        parameters=[SYSTEM_SLUG, OpenApiParameter("format", str, enum=list(DOSSIER_FORMATS),
                                                  description="pdf (default) or html")],
        responses={
            (200, "application/pdf"): OpenApiTypes.BINARY,
            (200, "text/html"): OpenApiTypes.STR,
            400: OpenApiResponse(description="Unknown format (the body names the field)."),
            **READ_ERRORS, 404: NOT_FOUND,
        },
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        system = system_get(slug=slug)
        fmt = request.query_params.get("format", "pdf")
        if fmt not in DOSSIER_FORMATS:
            raise ValidationError({"format": [f"must be one of {', '.join(DOSSIER_FORMATS)}"]})
        dossier = dossier_generate(actor=request.user, system=system, fmt=fmt)
        response = HttpResponse(dossier.content, content_type=dossier.content_type)
        disposition = "attachment" if fmt == "pdf" else "inline"
        response["Content-Disposition"] = f'{disposition}; filename="{dossier.filename}"'
        response["X-Content-SHA256"] = dossier.sha256
        return response


class RequirementListView(PortalAPIView):
    """The current requirements catalog with its crosswalk and both date sets."""

    roles = {"GET": OFFICERS_AND_MANAGERS}

    @extend_schema(
        summary="The requirements catalog",
        parameters=[OpenApiParameter("framework", str, enum=Framework.values, description="Only this framework.")],
        responses={200: inline_serializer("RequirementCatalog", {
            "catalog": serializers.CharField(), "date_basis": serializers.CharField(),
            "results": RequirementSerializer(many=True)}), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        framework = request.query_params.get("framework", "")
        if framework and framework not in Framework.values:
            raise ValidationError({"framework": [f"must be one of {', '.join(Framework.values)}"]})
        catalog = current_catalog()
        rows = requirement_list(catalog=catalog, framework=framework)
        return Response({"catalog": catalog.version, "date_basis": catalog.date_basis,
                         "results": RequirementSerializer(rows, many=True).data})


class CalendarView(PortalAPIView):
    """Which obligations apply from when: both date sets side by side."""

    roles = {"GET": OFFICERS_AND_MANAGERS}

    @extend_schema(summary="The regulatory calendar", responses={200: OpenApiTypes.OBJECT, **READ_ERRORS})
    def get(self, request: Request) -> Response:
        catalog = current_catalog()
        return Response({
            "catalog": catalog.version, "date_basis": catalog.date_basis,
            "milestones": [
                {"key": e.milestone.key, "title": e.milestone.title, "applies": e.milestone.applies,
                 "original": e.original, "amended": e.amended, "amendment_note": e.milestone.amendment_note,
                 "requirements": [r.ref for r in e.requirements],
                 "annex_i_route": [r.ref for r in e.product_route]}
                for e in calendar(catalog=catalog)
            ],
        })
