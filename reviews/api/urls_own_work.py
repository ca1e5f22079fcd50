"""API routes: a reviewer's own work (comments, skip, undo), the workbench's forms over the API."""

from django.urls import path

from reviews.api.views.own_work import CaseCommentsView, CaseSkipView, DecisionUndoView

urlpatterns = [
    path("cases/<int:pk>/comments/", CaseCommentsView.as_view(), name="case-comments"),
    path("cases/<int:pk>/skip/", CaseSkipView.as_view(), name="case-skip"),
    path("decisions/<int:pk>/undo/", DecisionUndoView.as_view(), name="decision-undo"),
]
