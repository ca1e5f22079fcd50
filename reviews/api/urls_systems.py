"""API routes: AI systems and intervention points.

Path segments use the ``str`` converter, not ``slug``: a segment that cannot be a
slug then reaches the view and gets the API's JSON 404, not the HTML error page.
"""

from django.urls import path

from reviews.api.views.systems import InterventionPointViewSet, SystemViewSet

urlpatterns = [
    path("systems/", SystemViewSet.as_view({"get": "list", "post": "create"}), name="api-system-list"),
    path(
        "systems/<str:slug>/",
        SystemViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="api-system-detail",
    ),
    path("systems/<str:slug>/halt/", SystemViewSet.as_view({"post": "halt"}), name="api-system-halt"),
    path("systems/<str:slug>/resume/", SystemViewSet.as_view({"post": "resume"}), name="api-system-resume"),
    path(
        "systems/<str:slug>/intervention-points/",
        InterventionPointViewSet.as_view({"get": "list", "post": "create"}),
        name="api-intervention-point-list",
    ),
    path(
        "systems/<str:slug>/intervention-points/<str:point>/",
        InterventionPointViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="api-intervention-point-detail",
    ),
    path(
        "systems/<str:slug>/intervention-points/<str:point>/rotate-salt/",
        InterventionPointViewSet.as_view({"post": "rotate_salt"}),
        name="api-intervention-point-rotate-salt",
    ),
]
