"""API routes: cases (ingest, read, list, ground truth)."""

from django.urls import path

from reviews.api.views.cases import CaseBatchView, CaseDetailView, CaseListCreateView, CaseOutcomeView

urlpatterns = [
    path("cases/", CaseListCreateView.as_view(), name="cases-list"),
    path("cases/batch/", CaseBatchView.as_view(), name="cases-batch"),
    path("cases/<int:pk>/", CaseDetailView.as_view(), name="cases-detail"),
    path("cases/<int:pk>/outcome/", CaseOutcomeView.as_view(), name="cases-outcome"),
]
