"""API routes of the Art. 86 channel (mounted under /api/v1/)."""

from django.urls import path

from compliance.api import views_explanations as views

urlpatterns = [
    path("cases/<int:pk>/reference/", views.CaseReferenceView.as_view(), name="api-case-reference"),
    path("explanation-requests/", views.ExplanationRequestViewSet.as_view({"get": "list"}),
         name="api-explanation-request-list"),
    path("explanation-requests/<int:pk>/", views.ExplanationRequestViewSet.as_view({"patch": "partial_update"}),
         name="api-explanation-request-detail"),
]
