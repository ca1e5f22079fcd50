"""Records API: the Art. 12(3) record of a remote biometric identification system and its periods of use."""

from __future__ import annotations

from typing import Any

from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from audit.api.views import AUDIT_READERS, READ_ERRORS
from hitl_portal.api.exceptions import Forbidden
from hitl_portal.api.schema import BAD_INPUT, ERROR_BODY, NOT_FOUND, UNAUTHENTICATED
from hitl_portal.api.views import PortalAPIView, PortalViewSet
from hitl_portal.permissions import has_role
from hitl_portal.roles import COMPLIANCE_OFFICER, INTEGRATION, MANAGER, user_role
from records.api.serializers import (
    BiometricLogQuerySerializer,
    BiometricUseEndSerializer,
    BiometricUseSerializer,
    TrainingDataQuerySerializer,
)
from records.models import BiometricUse
from records.selectors import biometric_searches, biometric_use_summary, biometric_uses, positive_label_of
from records.services import biometric_use_end, biometric_use_start
from records.training_data import CONTENT_TYPES, TrainingExport, stream_training_data
from reviews.models import AISystem


class CSVPassthroughRenderer(BaseRenderer):
    """Lets ``?format=csv`` through DRF's content negotiation; the view streams the CSV itself."""

    media_type = "text/csv"
    format = "csv"
    charset: str | None = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> Any:
        return data


BIOMETRIC_CSV_COLUMNS = (
    "case", "external_id", "received_at", "decided_at", "use", "use_started_at", "use_ended_at",
    "reference_database", "ai_label", "final_label", "resolution", "ai_match", "confirmed_match",
    "input_hash", "input", "input_purged", "verifier_1", "verifier_1_outcome", "verifier_1_at",
    "verifier_2", "verifier_2_outcome", "verifier_2_at", "all_verifiers",
)


def _remote_biometric_system(slug: str) -> Any:
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


__all__ = ["BiometricLogView", "BiometricUseViewSet", "TrainingDataExportView"]


class JSONLinesPassthroughRenderer(CSVPassthroughRenderer):
    """Lets ``?format=jsonl`` through DRF's content negotiation (the view streams the file)."""

    media_type = "application/x-ndjson"
    format = "jsonl"


class ParquetPassthroughRenderer(CSVPassthroughRenderer):
    """Lets ``?format=parquet`` through DRF's content negotiation (the view streams the file)."""

    media_type = "application/vnd.apache.parquet"
    format = "parquet"
    charset = None


TRAINING_DATA_READERS = {COMPLIANCE_OFFICER, MANAGER}
# Subject attributes are personal data (and protected characteristics): officers only.
SUBJECT_READERS = {COMPLIANCE_OFFICER}


class TrainingDataExportView(PortalAPIView):
    """``GET /systems/{slug}/training-data/``: human-validated labels for retraining, streamed."""

    roles = {"GET": TRAINING_DATA_READERS}
    # JSON first: errors are JSON whatever format was asked for.
    renderer_classes = [JSONRenderer, JSONLinesPassthroughRenderer, CSVPassthroughRenderer, ParquetPassthroughRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # An unknown ?format= is bad input (a 400 naming ``format``), not DRF's 404.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        summary="Export human-validated labels for retraining (JSON Lines, CSV or Parquet)",
        parameters=[TrainingDataQuerySerializer],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description=(
                "One row per case decided by people (reviewed or adjudicated; no gold items): case_id, "
                "external_id, received_at, decided_at, intervention_point, rules_version, input, ai_label, "
                "ai_confidence, model_version, final_label, resolution, override_rationale, reviewers, "
                "true_label, and subject when include_subject=true. CSV cells are formula-safe; Parquet keeps "
                "input and subject as JSON text.")),
            400: BAD_INPUT,
            401: UNAUTHENTICATED,
            403: OpenApiResponse(ERROR_BODY, description="Role, or subject attributes not permitted "
                                                         "(code subject_not_permitted)."),
            404: NOT_FOUND,
        },
    )
    def get(self, request: Request, slug: str) -> StreamingHttpResponse:
        params = TrainingDataQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        system = get_object_or_404(AISystem, slug=slug)
        if data["include_subject"] and not has_role(request.user, SUBJECT_READERS):
            raise Forbidden("Subject attributes are exported to compliance officers only.",
                            code="subject_not_permitted")
        export = TrainingExport(system=system, start=data.get("from_"), end=data.get("to"), fmt=data["format"],
                                include_subject=data["include_subject"])
        response = StreamingHttpResponse(stream_training_data(export, actor=request.user),
                                         content_type=CONTENT_TYPES[export.fmt])
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        return response
