"""API routes: the review queue (claim, decide, renew, release) and reopening."""

from django.urls import path

from reviews.api.views import queue

urlpatterns = [
    path("queue/claim/", queue.ClaimView.as_view(), name="queue-claim"),
    path("cases/<int:pk>/decision/", queue.DecisionView.as_view(), name="case-decision"),
    path("cases/<int:pk>/renew/", queue.RenewView.as_view(), name="case-renew"),
    path("cases/<int:pk>/release/", queue.ReleaseView.as_view(), name="case-release"),
    path("cases/<int:pk>/reopen/", queue.ReopenView.as_view(), name="case-reopen"),
    path("cases/<int:pk>/assign/", queue.AssignView.as_view(), name="case-assign"),
]
