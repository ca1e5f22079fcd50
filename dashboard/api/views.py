"""KPI API: thin views over the one KPI module (``dashboard.selectors``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from dashboard.api.serializers import (
    KpiResponseSerializer,
    ReviewersResponseSerializer,
    SeriesResponseSerializer,
    scope_from_query,
)
from dashboard.selectors import kpi_series, kpis, reviewer_table
from hitl_portal.api.dates import MOMENT_HELP
from hitl_portal.api.schema import ERROR_BODY, FIELD_ERRORS_BODY, UNAUTHENTICATED
from hitl_portal.api.views import PortalAPIView
from hitl_portal.roles import COMPLIANCE_OFFICER, MANAGER

KPI_READERS = {MANAGER, COMPLIANCE_OFFICER}

ERRORS = {
    400: OpenApiResponse(FIELD_ERRORS_BODY, description="Bad query parameter; the body names it."),
    401: UNAUTHENTICATED,
    403: OpenApiResponse(ERROR_BODY, description="The role may not read KPIs (code forbidden)."),
}
SCOPE_PARAMETERS = [
    OpenApiParameter("system", str, description="An AI system's slug; all systems when absent."),
    OpenApiParameter("from", str, description=f"Start of the period (inclusive): {MOMENT_HELP}. "
                                              "Default: 30 days before `to`."),
    OpenApiParameter("to", str, description=f"End of the period (exclusive): {MOMENT_HELP}. Default: now."),
]


class KpiView(PortalAPIView):
    """Oversight KPIs of the cases received in ``[from, to)`` (gold items excluded)."""

    roles = {"GET": KPI_READERS}

    @extend_schema(
        summary="Oversight KPIs",
        description=(
            "Automation, review and override rates, accuracy of the AI and of the final decisions, "
            "reviewer agreement, time to resolution, SLA breaches, queue depth and open bias incidents. "
            "Every rate is a fraction; `null` where a figure is undefined (e.g. no ground truth yet). "
            "Cases count by received time; queue depth and bias incidents are live."
        ),
        parameters=SCOPE_PARAMETERS,
        responses={200: KpiResponseSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return Response(kpis(scope_from_query(request.query_params)))


class KpiSeriesView(PortalAPIView):
    """The KPIs per received day of the period (the dashboard's charts)."""

    roles = {"GET": KPI_READERS}

    @extend_schema(summary="Daily KPI series", parameters=SCOPE_PARAMETERS,
                   responses={200: SeriesResponseSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        scope = scope_from_query(request.query_params)
        return Response({"system": scope.system.slug if scope.system else None, "days": kpi_series(scope)})


class KpiReviewersView(PortalAPIView):
    """Per-reviewer figures on the cases received in the period (gold items included)."""

    roles = {"GET": KPI_READERS}

    @extend_schema(summary="Reviewer quality table", parameters=SCOPE_PARAMETERS,
                   responses={200: ReviewersResponseSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        scope = scope_from_query(request.query_params)
        return Response({"system": scope.system.slug if scope.system else None, "reviewers": reviewer_table(scope)})
