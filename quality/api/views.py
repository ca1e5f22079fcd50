"""Quality API: gold items, reviewer quality, training records, calibration, agreement, thresholds.

Thin views: validate, call a selector or a service, shape the answer. Roles are
declared per method (the one permission layer); a reviewer may read only their
own quality figures (403 otherwise).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from hitl_portal.api.exceptions import Forbidden
from hitl_portal.api.pagination import IdCursorPagination
from hitl_portal.api.schema import paginated
from hitl_portal.api.views import PortalAPIView
from hitl_portal.roles import COMPLIANCE_OFFICER, MANAGER, REVIEWER, user_role
from quality.api.serializers import (
    AgreementQuerySerializer,
    CalibrationCreateSerializer,
    CalibrationListSerializer,
    CalibrationResultSerializer,
    GoldImportSerializer,
    GoldItemCreateSerializer,
    GoldItemSerializer,
    LiveAgreementSerializer,
    PeriodQuerySerializer,
    ReviewerQualitySerializer,
    ThresholdApplySerializer,
    ThresholdCurveSerializer,
    ThresholdQuerySerializer,
    TrainingRecordCreateSerializer,
    TrainingRecordSerializer,
)
from quality.models import CalibrationSession, GoldItem
from quality.selectors import (
    calibration_results,
    calibration_sessions,
    default_period,
    gold_item_representation,
    gold_items,
    live_agreement,
    reviewer_quality,
    threshold_curve,
    training_status,
)
from quality.services.calibration import calibration_session_create
from quality.services.gold import gold_item_create, gold_items_import_csv
from quality.services.thresholds import threshold_apply
from reviews.api.views.systems import NOT_FOUND, POINT_SLUG, READ_ERRORS, SYSTEM_SLUG, WRITE_ERRORS
from reviews.selectors.people import reviewer_profile_get
from reviews.selectors.systems import intervention_point_get, system_get
from reviews.services.people import training_record_add

OFFICERS = {COMPLIANCE_OFFICER}
OVERSIGHT = {COMPLIANCE_OFFICER, MANAGER}
USERNAME = OpenApiParameter("username", str, OpenApiParameter.PATH, description="The reviewer's username.")


GOLD_ITEM_PAGE = paginated("PaginatedGoldItemList", GoldItemSerializer(many=True))
TRAINING_RECORDS = inline_serializer("TrainingRecordRegister", {
    "results": TrainingRecordSerializer(many=True),
    "required_kinds": serializers.ListField(child=serializers.CharField()),
    "expired_kinds": serializers.ListField(child=serializers.CharField()),
    "missing_kinds": serializers.ListField(child=serializers.CharField()),
})
CALIBRATION_PAGE = paginated("PaginatedCalibrationList", CalibrationListSerializer(many=True))

def _paginate(view: PortalAPIView, request: Request, queryset: Any, render: Any) -> Response:
    paginator = IdCursorPagination()
    page: list[Any] = paginator.paginate_queryset(queryset, request, view=view) or []  # never None: page_size is set
    return paginator.get_paginated_response([render(obj) for obj in page])


class GoldItemListView(PortalAPIView):
    """``/api/v1/gold-items/``: create a gold item (a case with a known answer), list them."""

    roles = {"GET": OFFICERS, "POST": OFFICERS}

    @extend_schema(summary="List gold items", responses={200: GOLD_ITEM_PAGE, **READ_ERRORS},
                   parameters=[OpenApiParameter("system", str, description="Only this system's items.")])
    def get(self, request: Request) -> Response:
        system = request.query_params.get("system") or None
        return _paginate(self, request, gold_items(system=system), gold_item_representation)

    @extend_schema(
        summary="Create a gold item",
        description="A case with `is_gold` and its `gold_label`, routed like a real case (refused when the point's "
        "rules would auto-accept it), mixed unannounced into reviewers' queues at the point's `gold_rate`. "
        "Never counted in case KPIs, never sent to an integration. Audited (gold.created).",
        request=GoldItemCreateSerializer,
        responses={201: GoldItemSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = GoldItemCreateSerializer(data=request.data, context={"actor": request.user})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        item = gold_item_create(
            actor=request.user, point=data["point"], input=data["input"], prediction=data["prediction"],
            gold_label=data["gold_label"], external_id=data["external_id"], note=data["note"],
        )
        item = gold_items().get(pk=item.pk)
        return Response(gold_item_representation(item), status=status.HTTP_201_CREATED)


class GoldItemImportView(PortalAPIView):
    """``POST /api/v1/gold-items/import/``: gold items from CSV text, all or nothing."""

    roles = {"POST": OFFICERS}

    @extend_schema(
        summary="Import gold items from CSV",
        request=GoldImportSerializer,
        responses={201: OpenApiResponse(description="`{created: [ids]}`"),
                   **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = GoldImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = gold_items_import_csv(actor=request.user, text=serializer.validated_data["csv"])
        if result.errors:
            return Response({"csv": [f"line {line}: {field}: {' '.join(messages)}"
                                     for line, errors in sorted(result.errors.items())
                                     for field, messages in errors.items()]},
                            status=status.HTTP_400_BAD_REQUEST)
        return Response({"created": [item.pk for item in result.created]}, status=status.HTTP_201_CREATED)


def _reviewer_profile_for(request: Request, username: str) -> tuple[Any, bool]:
    """The reviewer's profile and whether the reader is that reviewer (a reviewer may read only themself)."""
    is_self = request.user.get_username() == username
    if user_role(request.user) == REVIEWER and not is_self:
        raise Forbidden("Reviewers may read only their own quality figures.")
    return reviewer_profile_get(username=username), is_self and user_role(request.user) == REVIEWER


class ReviewerQualityView(PortalAPIView):
    """``GET /api/v1/reviewers/{username}/quality/``."""

    roles = {"GET": {COMPLIANCE_OFFICER, MANAGER, REVIEWER}}

    @extend_schema(
        summary="A reviewer's quality figures",
        description="Gold accuracy over the last N gold answers (`HITL_GOLD_WINDOW`), agreement with co-reviewers "
        "on multi-review cases, automation bias (agreement with the AI shown − hidden) and rubber-stamp flags per "
        "system, training records. The reviewer themself sees gold figures only from the daily snapshot "
        "(`gold_as_of`). `from`/`to` scope agreement and automation bias (default: the last 90 days).",
        parameters=[USERNAME, OpenApiParameter("from", str), OpenApiParameter("to", str)],
        responses={200: ReviewerQualitySerializer, **READ_ERRORS, 404: NOT_FOUND},
    )
    def get(self, request: Request, username: str) -> Response:
        profile, as_self = _reviewer_profile_for(request, username)
        query = PeriodQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        figures = reviewer_quality(profile, as_self=as_self, since=query.validated_data.get("from"),
                                   until=query.validated_data.get("to"))
        body = ReviewerQualitySerializer(figures).data
        body["from"], body["to"] = figures["from"], figures["to"]
        return Response(body)


class TrainingRecordView(PortalAPIView):
    """``/api/v1/reviewers/{username}/training-records/``: the competence register (Art. 4, Art. 26(2))."""

    roles = {"GET": {COMPLIANCE_OFFICER, MANAGER, REVIEWER}, "POST": OFFICERS}

    @extend_schema(summary="A reviewer's training records", parameters=[USERNAME],
                   responses={200: TRAINING_RECORDS, **READ_ERRORS, 404: NOT_FOUND})
    def get(self, request: Request, username: str) -> Response:
        profile, _ = _reviewer_profile_for(request, username)
        training = training_status(profile)
        return Response({"results": training["records"], "required_kinds": training["required_kinds"],
                         "expired_kinds": training["expired_kinds"], "missing_kinds": training["missing_kinds"]})

    @extend_schema(summary="Record a training", parameters=[USERNAME], request=TrainingRecordCreateSerializer,
                   responses={201: TrainingRecordSerializer, **WRITE_ERRORS, 404: NOT_FOUND})
    def post(self, request: Request, username: str) -> Response:
        profile = reviewer_profile_get(username=username)
        serializer = TrainingRecordCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        system = None
        if data.get("system"):
            try:
                system = system_get(slug=data["system"])
            except Http404 as exc:
                raise ValidationError({"system": ["Unknown system."]}) from exc
        record = training_record_add(
            actor=request.user, profile=profile, title=data["title"], kind=data.get("kind") or "ai_literacy",
            completed_at=data["completed_at"], expires_at=data.get("expires_at"), system=system,
            evidence_url=data.get("evidence_url", ""),
        )
        row = next(r for r in training_status(profile)["records"] if r["id"] == record.pk)
        return Response(TrainingRecordSerializer(row).data, status=status.HTTP_201_CREATED)


class CalibrationListView(PortalAPIView):
    """``/api/v1/calibration-sessions/``: start a session, list sessions."""

    roles = {"GET": OVERSIGHT, "POST": OFFICERS}

    @extend_schema(operation_id="v1_calibration_sessions_list", summary="List calibration sessions",
                   responses={200: CALIBRATION_PAGE, **READ_ERRORS})
    def get(self, request: Request) -> Response:
        return _paginate(self, request, calibration_sessions(), lambda s: CalibrationListSerializer(s).data)

    @extend_schema(
        summary="Start a calibration session",
        description="Every reviewer gets a copy of every gold item once, through their own queue (the copies look "
        "like any case). Reviewers must be active and qualified for every item's system. Audited "
        "(calibration.created).",
        request=CalibrationCreateSerializer,
        responses={201: CalibrationResultSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = CalibrationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        items = list(GoldItem.objects.filter(pk__in=data["items"]))
        missing = sorted(set(data["items"]) - {item.pk for item in items})
        if missing:
            raise ValidationError({"items": [f"Unknown gold item(s): {', '.join(map(str, missing))}."]})
        reviewers = list(User.objects.filter(username__in=data["reviewers"]))
        unknown = sorted(set(data["reviewers"]) - {user.username for user in reviewers})
        if unknown:
            raise ValidationError({"reviewers": [f"Unknown user(s): {', '.join(unknown)}."]})
        session = calibration_session_create(
            actor=request.user, name=data["name"], description=data.get("description", ""), items=items,
            reviewers=reviewers,
        )
        return Response(CalibrationResultSerializer(calibration_results(session)).data,
                        status=status.HTTP_201_CREATED)


class CalibrationDetailView(PortalAPIView):
    """``GET /api/v1/calibration-sessions/{id}/``: the session's results."""

    roles = {"GET": OVERSIGHT}

    @extend_schema(summary="Calibration session results",
                   responses={200: CalibrationResultSerializer, **READ_ERRORS, 404: NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        session = CalibrationSession.objects.filter(pk=pk).first()
        if session is None:
            raise Http404("No such calibration session.")
        return Response(CalibrationResultSerializer(calibration_results(session)).data)


class AgreementView(PortalAPIView):
    """``GET /api/v1/agreement/``: agreement on live multi-review cases, per intervention point and period."""

    roles = {"GET": OVERSIGHT}

    @extend_schema(
        summary="Reviewer agreement on live multi-review cases",
        description="Percent agreement, Cohen's κ per reviewer pair, Fleiss' κ, Krippendorff's α (nominal), "
        "overall, per intervention point and per period (`day`, `week`, `month`) of the cases' received time.",
        parameters=[OpenApiParameter("system", str), OpenApiParameter("intervention_point", str),
                    OpenApiParameter("from", str), OpenApiParameter("to", str),
                    OpenApiParameter("period", str, enum=["day", "week", "month"])],
        responses={200: LiveAgreementSerializer, **READ_ERRORS, 400: WRITE_ERRORS[400]},
    )
    def get(self, request: Request) -> Response:
        query = AgreementQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        point = None
        if data.get("intervention_point"):
            if not data.get("system"):
                raise ValidationError({"intervention_point": ["Give system too."]})
            try:
                point = intervention_point_get(system=system_get(slug=data["system"]), slug=data["intervention_point"])
            except Http404 as exc:
                raise ValidationError({"intervention_point": ["Unknown intervention point."]}) from exc
        elif data.get("system"):
            try:
                system_get(slug=data["system"])
            except Http404 as exc:
                raise ValidationError({"system": ["Unknown system."]}) from exc
        since, until = default_period(data.get("from"), data.get("to"))
        result = live_agreement(since=since, until=until, system=data.get("system"), point=point,
                                period=data["period"])
        return Response(LiveAgreementSerializer(result).data)


class ThresholdRecommendationView(PortalAPIView):
    """``GET …/intervention-points/{point}/threshold-recommendation/``: the curve and the recommendation."""

    roles = {"GET": OVERSIGHT}

    @extend_schema(
        summary="Confidence threshold recommendation",
        description="Over thresholds 0.00..1.00: the share of cases the confidence rule would route (review volume) "
        "and the error rate of the cases it would auto-accept, from cases with reported ground truth (at least "
        "`HITL_THRESHOLD_MIN_GROUND_TRUTH`); the recommendation is the lowest threshold whose error is at most "
        "`target` (default `HITL_THRESHOLD_TARGET_ERROR`).",
        parameters=[SYSTEM_SLUG, POINT_SLUG, OpenApiParameter("target", float)],
        responses={200: ThresholdCurveSerializer, **READ_ERRORS, 404: NOT_FOUND},
    )
    def get(self, request: Request, slug: str, point: str) -> Response:
        intervention_point = intervention_point_get(system=system_get(slug=slug), slug=point)
        query = ThresholdQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        curve = threshold_curve(point=intervention_point, target_error=query.validated_data.get("target"))
        return Response(ThresholdCurveSerializer(curve).data)


class ThresholdApplyView(PortalAPIView):
    """``POST …/threshold-recommendation/apply/``: set ``confidence_below`` (confirmed, audited)."""

    roles = {"POST": OFFICERS}

    @extend_schema(
        summary="Apply a confidence threshold",
        description="Needs `confirm: true` and a `reason`. Changes the point's `confidence_below` (new rules "
        "version, intervention_point.updated) and records threshold.applied with the curve's figures.",
        parameters=[SYSTEM_SLUG, POINT_SLUG],
        request=ThresholdApplySerializer,
        responses={200: OpenApiResponse(description="`{confidence_below, version}`"), **WRITE_ERRORS,
                   404: NOT_FOUND},
    )
    def post(self, request: Request, slug: str, point: str) -> Response:
        intervention_point = intervention_point_get(system=system_get(slug=slug), slug=point)
        serializer = ThresholdApplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        updated = threshold_apply(actor=request.user, point=intervention_point, threshold=data["threshold"],
                                  reason=data["reason"], target_error=data.get("target"))
        return Response({"confidence_below": updated.confidence_below, "version": updated.version})
