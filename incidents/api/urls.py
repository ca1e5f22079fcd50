"""API routes: the incident register."""

from django.urls import path

from incidents.api.views import IncidentViewSet

urlpatterns = [
    path("incidents/", IncidentViewSet.as_view({"get": "list", "post": "create"}), name="api-incident-list"),
    path(
        "incidents/<int:pk>/",
        IncidentViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="api-incident-detail",
    ),
]
