"""API routes of the audit app (mounted under /api/v1/)."""

from django.urls import path

from audit.api.views import AuditEventViewSet, AuditExportView, AuditVerifyView

urlpatterns = [
    path("audit/events/", AuditEventViewSet.as_view({"get": "list"}), name="audit-events"),
    path("audit/verify/", AuditVerifyView.as_view(), name="audit-verify"),
    path("audit/export/", AuditExportView.as_view(), name="audit-export"),
]
