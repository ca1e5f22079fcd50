"""Pages of the compliance app (namespace ``compliance``).

The incident register (app ``incidents``, a lower floor) is mounted inside this
namespace at /compliance/incidents/ so its page names stay ``compliance:incident_*``.
"""

from django.urls import include, path

app_name = "compliance"
urlpatterns = [
    path("incidents/", include("incidents.urls")),
    path("", include("compliance.urls_workspace")),
]
