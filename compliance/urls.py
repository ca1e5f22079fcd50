"""Pages of the compliance app."""

from django.urls import include, path

app_name = "compliance"
urlpatterns = [
    path("incidents/", include("compliance.urls_incidents")),
    path("", include("compliance.urls_workspace")),
]
