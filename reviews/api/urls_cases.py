"""API routes: cases (ingest, read, list, ground truth)."""

from django.urls import path

from reviews.api.views.attachments import CaseAttachmentFileView, CaseAttachmentsView
from reviews.api.views.cases import CaseBatchView, CaseDetailView, CaseListCreateView, CaseOutcomeView
from reviews.api.views.wait import CaseWaitView

urlpatterns = [
    path("cases/", CaseListCreateView.as_view(), name="cases-list"),
    path("cases/batch/", CaseBatchView.as_view(), name="cases-batch"),
    path("cases/<int:pk>/", CaseDetailView.as_view(), name="cases-detail"),
    path("cases/<int:pk>/outcome/", CaseOutcomeView.as_view(), name="cases-outcome"),
    path("cases/<int:pk>/attachments/", CaseAttachmentsView.as_view(), name="cases-attachments"),
    path("cases/<int:pk>/attachments/<str:name>/", CaseAttachmentFileView.as_view(), name="cases-attachment"),
    path("cases/<int:pk>/wait/", CaseWaitView.as_view(), name="cases-wait"),
]
