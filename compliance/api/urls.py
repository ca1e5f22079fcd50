"""API routes of the compliance app (mounted under /api/v1/)."""

from django.urls import include, path

urlpatterns = [
    path("", include("compliance.api.urls_workspace")),
    path("", include("compliance.api.urls_explanations")),
]
