"""Cases API for integrations: ingest (single and batch), read, list, ground truth.

Thin views: validation in ``reviews.api.serializers.cases``, writes in
``reviews.services.ingest`` / ``outcomes``, idempotency in
``reviews.services.idempotency``, visibility in ``reviews.selectors.visibility``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from hitl_portal.actors import request_user
from hitl_portal.api.authentication import SCHEMA_AUTH, portal_authentication_classes
from hitl_portal.api.dates import parse_moment
from hitl_portal.api.pagination import IdCursorPagination
from hitl_portal.api.parsers import StrictJSONParser, find_unstorable
from hitl_portal.api.throttling import WindowedUserRateThrottle
from hitl_portal.api.views import PortalAPIView
from hitl_portal.roles import COMPLIANCE_OFFICER, INTEGRATION, MANAGER, REVIEWER
from reviews.api.serializers.cases import (
    EXTERNAL_ID_MAX,
    CaseBatchRequestSerializer,
    CaseBatchResponseSerializer,
    CaseIngestResponseSerializer,
    CaseSerializer,
    CaseSubmissionSerializer,
    CaseSubmissionValidator,
    OutcomeSerializer,
    validate_batch_envelope,
)
from reviews.models import Case, CaseStatus
from reviews.selectors.cases import case_get, case_ingest_response, case_list, case_representation
from reviews.selectors.systems import is_slug
from reviews.services.attachments import attachment_add, attachment_check
from reviews.services.idempotency import (
    Remember,
    StoredResponse,
    key_problem,
    request_fingerprint,
    run_idempotent,
)
from reviews.services.ingest import BatchItem, case_ingest, case_ingest_screened
from reviews.services.outcomes import case_report_outcome

# Token, user and role in one query (the hot paths of ingestion and review).
PORTAL_AUTHENTICATION = portal_authentication_classes()

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Primary keys are 64-bit: a longer number in the path can name no case (and would
# make PostgreSQL raise).
MAX_PK = 2**63 - 1


class IntegrationRateThrottle(WindowedUserRateThrottle):
    """Per-client rate (``DEFAULT_THROTTLE_RATES["integration"]``, env ``HITL_THROTTLE_INTEGRATION``).

    Cache-based, so it shapes traffic but is no security boundary; the default is
    far above what any integration (or the benchmark) sends. Counted in fixed
    windows: its cost per request does not grow with the rate.
    """

    scope = "integration"


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    {"type": "string", "minLength": 1, "maxLength": 255},
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Scoped to the integration: the same key with the same body replays the first response "
        "(same status and body) and creates nothing; with a different body → 422. Kept at least 24 h."
    ),
)
ERROR_RESPONSE = OpenApiResponse(
    inline_serializer("CaseError", {"code": serializers.CharField(), "detail": serializers.CharField()}),
    description="Refused, with a machine-readable code.",
)
DUPLICATE_RESPONSE = OpenApiResponse(
    inline_serializer(
        "CaseConflictError",
        {"code": serializers.CharField(), "detail": serializers.CharField(),
         "id": serializers.IntegerField(required=False, allow_null=True)},
    ),
    description='409 "duplicate" (with the existing case\'s id) or "system_prohibited".',
)
FIELD_ERRORS = OpenApiResponse(OpenApiTypes.OBJECT, description="Field errors, keyed by field name.")


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    problem = key_problem(key)
    if problem:
        raise serializers.ValidationError({IDEMPOTENCY_HEADER: [problem]})
    return key


def _respond(result: StoredResponse) -> Response:
    response = Response(result.body, status=result.status_code)
    if result.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _case_pk(pk: int) -> int:
    if pk > MAX_PK:
        raise Http404("No such case.")
    return pk


def _visible_case(request: Request, pk: int) -> Case:
    case = case_get(user=request.user, pk=_case_pk(pk))
    if case is None:
        # 404, not 403: whether a case exists outside one's view is not to be revealed.
        raise Http404("No such case.")
    return case


def _parse_when(name: str, value: str | None) -> dt.datetime | None:
    """A time filter, read by the portal's one parser of query-string times."""
    if value in (None, ""):
        return None
    return parse_moment(value, name)


def _sha256(upload: Any) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def _submission_of(request: Request) -> tuple[Any, list[tuple[str, Any]]]:
    """The case body and its files: a JSON body, or multipart with ``case`` (JSON text) and ``files``.

    Files are checked (name, size, sniffed type) before anything is written; each
    becomes an attachment named after its file name.
    """
    if not (request.content_type or "").startswith("multipart/form-data"):
        return request.data, []
    form: Any = request.data  # a QueryDict for multipart bodies
    raw = form.get("case")
    if raw is None:
        raise serializers.ValidationError({"case": ["Required: the case as JSON text, beside the files."]})
    if not isinstance(raw, str):
        raw = raw.read().decode("utf-8", errors="strict") if hasattr(raw, "read") else str(raw)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise serializers.ValidationError({"case": [f"Malformed JSON: {exc}"]}) from exc
    found = find_unstorable(body)
    if found:
        raise serializers.ValidationError({found[0]: [found[1]]})
    files: list[tuple[str, Any]] = []
    names: set[str] = set()
    for upload in request.FILES.getlist("files"):
        name = upload.name or ""
        try:
            attachment_check(name=name, upload=upload)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(
                {f"files.{name}"[:120]: [m for msgs in exc.message_dict.values() for m in msgs]}
            ) from exc
        if name in names:
            raise serializers.ValidationError({f"files.{name}"[:120]: ["Two files with the same name."]})
        names.add(name)
        files.append((name, upload))
    if len(files) > settings.HITL_ATTACHMENT_MAX_PER_CASE:
        raise serializers.ValidationError({"files": [
            f"At most {settings.HITL_ATTACHMENT_MAX_PER_CASE} files per case."
        ]})
    return body, files


class CaseListCreateView(PortalAPIView):
    """``POST /cases/`` (submit one case, optionally with files) and ``GET /cases/`` (list visible cases)."""

    authentication_classes = PORTAL_AUTHENTICATION
    # JSON, or multipart when the case comes with its files (``case`` = JSON text, ``files`` = the files).
    parser_classes = [StrictJSONParser, MultiPartParser]
    hot_path_methods = frozenset({"POST"})
    roles = {"GET": {INTEGRATION, COMPLIANCE_OFFICER, MANAGER}, "POST": {INTEGRATION}}
    throttle_classes = [IntegrationRateThrottle]

    @extend_schema(
        auth=SCHEMA_AUTH,
        operation_id="cases_create",
        request={
            "application/json": CaseSubmissionSerializer,
            "multipart/form-data": inline_serializer("CaseSubmissionWithFiles", {
                "case": serializers.CharField(help_text="The case submission as JSON text."),
                "files": serializers.ListField(child=serializers.FileField(), required=False,
                                               help_text="Attachments, each named after its file name."),
            }),
        },
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: CaseIngestResponseSerializer,
            400: FIELD_ERRORS,
            403: ERROR_RESPONSE,
            409: DUPLICATE_RESPONSE,
            422: ERROR_RESPONSE,
        },
        summary="Submit one AI output for oversight",
        description=(
            "Routes the case (confidence, always-review labels, high-stakes conditions, deterministic sampling, "
            "halted system, labeling stage) and stores it. 409 `duplicate` (with the existing `id`) for a "
            "repeated `(system, external_id)`; 409 `system_prohibited` for a blocked system; 403 "
            "`system_not_linked` for a system the integration is not linked to. With files: send "
            "`multipart/form-data` with `case` (the case as JSON text) and one `files` part per file; each file "
            "becomes an attachment named after its file name (the input refers to it as \"attachment:<name>\"), "
            "checked like `POST /cases/{id}/attachments/` and stored in the case's own transaction."
        ),
    )
    def post(self, request: Request) -> Response:
        key = _idempotency_key(request)
        body, files = _submission_of(request)
        fingerprint = ""
        if key:
            fingerprint = request_fingerprint(
                path=request.path,
                body=body if not files else {"case": body, "files": [[n, _sha256(f)] for n, f in files]},
            )

        def execute(remember: Remember | None) -> StoredResponse:
            # The validator directly: building a Serializer's fields costs more than validating.
            data, errors = CaseSubmissionValidator(actor=request_user(request)).validate(body)
            if errors or data is None:
                raise serializers.ValidationError(errors)

            def on_created(case: Case) -> None:
                # In the case's own transaction: the case and its files exist together or not at all.
                for name, upload in files:
                    attachment_add(
                        actor=request_user(request), case=case, name=name, upload=upload, with_submission=True
                    )
                if remember is not None:
                    remember(201, case_ingest_response(case))

            case = case_ingest(actor=request_user(request), data=data, on_created=on_created)
            return StoredResponse(status_code=201, body=case_ingest_response(case))

        return _respond(run_idempotent(user=request.user, key=key, fingerprint=fingerprint, execute=execute))

    @extend_schema(
        auth=SCHEMA_AUTH,
        operation_id="cases_list",
        parameters=[
            OpenApiParameter("system", OpenApiTypes.STR, description="A system's slug."),
            OpenApiParameter("status", OpenApiTypes.STR, enum=CaseStatus.values),
            OpenApiParameter("received_after", OpenApiTypes.DATETIME, description="Inclusive."),
            OpenApiParameter("received_before", OpenApiTypes.DATETIME, description="Exclusive."),
            OpenApiParameter("cursor", OpenApiTypes.STR),
            OpenApiParameter("page_size", OpenApiTypes.INT),
        ],
        responses={
            200: inline_serializer(
                "PaginatedCaseList",
                {"next": serializers.URLField(allow_null=True), "previous": serializers.URLField(allow_null=True),
                 "results": CaseSerializer(many=True)},
            ),
            400: FIELD_ERRORS,
        },
        summary="List the cases you may see",
        description="Integrations see their linked systems' cases; officers, managers and admins see all.",
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        system = params.get("system") or None
        if system is not None and not is_slug(system):
            raise serializers.ValidationError({"system": ["Must be a system's slug."]})
        status = params.get("status") or None
        if status is not None and status not in CaseStatus.values:
            raise serializers.ValidationError({"status": [f"Must be one of: {', '.join(CaseStatus.values)}."]})
        cases = case_list(
            user=request.user,
            system=system,
            status=status,
            received_after=_parse_when("received_after", params.get("received_after")),
            received_before=_parse_when("received_before", params.get("received_before")),
        )
        paginator = IdCursorPagination()
        page = paginator.paginate_queryset(cases, request, view=self) or []
        return paginator.get_paginated_response([case_representation(case, viewer=request.user) for case in page])


class CaseBatchView(PortalAPIView):
    """``POST /cases/batch/``: up to 1000 cases, each accepted or rejected on its own."""

    authentication_classes = PORTAL_AUTHENTICATION
    hot_path_methods = frozenset({"POST"})
    roles = {"POST": {INTEGRATION}}
    throttle_classes = [IntegrationRateThrottle]

    @extend_schema(
        auth=SCHEMA_AUTH,
        operation_id="cases_batch_create",
        request=CaseBatchRequestSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: OpenApiResponse(CaseBatchResponseSerializer, description="Every case was accepted."),
            207: OpenApiResponse(CaseBatchResponseSerializer, description="Some (or all) cases were rejected."),
            400: FIELD_ERRORS,
            422: ERROR_RESPONSE,
        },
        summary="Submit up to 1000 AI outputs",
    )
    def post(self, request: Request) -> Response:
        key = _idempotency_key(request)
        fingerprint = request_fingerprint(path=request.path, body=request.data) if key else ""

        def execute(remember: Remember | None) -> StoredResponse:
            raw_cases = validate_batch_envelope(request.data)
            validator = CaseSubmissionValidator(actor=request_user(request))
            validator.prime(raw_cases)
            items = []
            for raw in raw_cases:
                data, errors = validator.validate(raw)
                items.append(BatchItem(external_id=_echo_external_id(raw), data=data, error=errors))

            def on_created(done: list[BatchItem]) -> None:
                if remember is not None:
                    remember(*_batch_response(done))

            case_ingest_screened(actor=request_user(request), items=items, on_created=on_created)
            return StoredResponse(*_batch_response(items))

        return _respond(run_idempotent(user=request.user, key=key, fingerprint=fingerprint, execute=execute))


def _echo_external_id(raw: Any) -> str | None:
    value = raw.get("external_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and len(value) <= EXTERNAL_ID_MAX else None


def _batch_response(items: list[BatchItem]) -> tuple[int, dict[str, Any]]:
    results: list[dict[str, Any]] = []
    all_accepted = True
    for item in items:
        if item.case is not None:
            results.append(case_ingest_response(item.case))
        else:
            all_accepted = False
            results.append({"external_id": item.external_id, "error": item.error or {}})
    return (201 if all_accepted else 207), {"results": results}


class CaseDetailView(PortalAPIView):
    """``GET /cases/{id}/``: integrations (own systems), officers, managers; reviewers: cases held or decided."""

    authentication_classes = PORTAL_AUTHENTICATION
    roles = {"GET": {INTEGRATION, COMPLIANCE_OFFICER, MANAGER, REVIEWER}}
    throttle_classes = [IntegrationRateThrottle]

    @extend_schema(auth=SCHEMA_AUTH, operation_id="cases_retrieve",
                   responses={200: CaseSerializer, 404: ERROR_RESPONSE}, summary="One case")
    def get(self, request: Request, pk: int) -> Response:
        case = _visible_case(request, pk)
        return Response(case_representation(case, viewer=request.user))


class CaseOutcomeView(PortalAPIView):
    """``POST /cases/{id}/outcome/``: ground truth from the integration, for accuracy KPIs."""

    authentication_classes = PORTAL_AUTHENTICATION
    roles = {"POST": {INTEGRATION}}
    throttle_classes = [IntegrationRateThrottle]

    @extend_schema(
        auth=SCHEMA_AUTH,
        operation_id="cases_outcome_create",
        request=OutcomeSerializer,
        responses={200: CaseSerializer, 400: FIELD_ERRORS, 404: ERROR_RESPONSE},
        summary="Report the true label of a case",
    )
    def post(self, request: Request, pk: int) -> Response:
        case = _visible_case(request, pk)
        serializer = OutcomeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        case_report_outcome(actor=request_user(request), case=case, true_label=serializer.validated_data["true_label"],
                            reason=serializer.validated_data["reason"])
        return Response(case_representation(_visible_case(request, pk), viewer=request.user))
