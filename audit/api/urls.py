"""API routes of the audit app (mounted under /api/v1/)."""

from django.urls import path

from audit.api.views import AuditEventViewSet, AuditExportView, AuditVerifyView, BiometricLogView, BiometricUseViewSet

urlpatterns = [
    path("audit/events/", AuditEventViewSet.as_view({"get": "list"}), name="audit-events"),
    path("audit/verify/", AuditVerifyView.as_view(), name="audit-verify"),
    path("audit/export/", AuditExportView.as_view(), name="audit-export"),
    path("systems/<slug:slug>/biometric-log/", BiometricLogView.as_view(), name="biometric-log"),
    path(
        "systems/<slug:slug>/biometric-uses/",
        BiometricUseViewSet.as_view({"get": "list", "post": "create"}),
        name="biometric-uses",
    ),
    path(
        "systems/<slug:slug>/biometric-uses/<int:pk>/end/",
        BiometricUseViewSet.as_view({"post": "end"}),
        name="biometric-use-end",
    ),
]
