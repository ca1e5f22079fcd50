"""Pages of the fairness app (mounted at /fairness/)."""

from django.urls import path

from fairness import views

app_name = "fairness"
urlpatterns = [
    path("", views.BiasAuditListPage.as_view(), name="list"),
    path("new/", views.BiasAuditRequestPage.as_view(), name="request"),
    path("<int:pk>/", views.BiasAuditDetailPage.as_view(), name="detail"),
]
