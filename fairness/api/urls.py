"""API routes of the fairness app (mounted under /api/v1/).

The id segment uses the ``str`` converter: a non-numeric id reaches the view and
gets the API's JSON 404, not the HTML error page.
"""

from django.urls import path

from fairness.api import views

urlpatterns = [
    path("bias-audits/", views.BiasAuditListView.as_view(), name="api-bias-audit-list"),
    path("bias-audits/<str:pk>/", views.BiasAuditDetailView.as_view(), name="api-bias-audit-detail"),
]
