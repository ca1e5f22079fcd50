"""Pages of the incident register (mounted at /compliance/incidents/ inside the ``compliance`` namespace)."""

from django.urls import path

from incidents import views

urlpatterns = [
    path("", views.IncidentListPage.as_view(), name="incident_list"),
    path("new/", views.IncidentCreatePage.as_view(), name="incident_create"),
    path("<int:pk>/", views.IncidentDetailPage.as_view(), name="incident_detail"),
]
