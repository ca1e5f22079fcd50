"""API routes of the reviews app (mounted under /api/v1/), one module per area."""

from django.urls import include, path

urlpatterns = [
    # Cases and the queue first: the ingest, claim and decision requests find their route sooner.
    path("", include("reviews.api.urls_cases")),
    path("", include("reviews.api.urls_queue")),
    path("", include("reviews.api.urls_accounts")),
    path("", include("reviews.api.urls_systems")),
    path("", include("reviews.api.urls_own_work")),
]
