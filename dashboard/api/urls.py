"""API routes of the dashboard app (mounted under /api/v1/)."""

from django.urls import path

from dashboard.api.views import KpiReviewersView, KpiSeriesView, KpiView

urlpatterns = [
    path("kpis/", KpiView.as_view(), name="api-kpis"),
    path("kpis/series/", KpiSeriesView.as_view(), name="api-kpis-series"),
    path("kpis/reviewers/", KpiReviewersView.as_view(), name="api-kpis-reviewers"),
]
