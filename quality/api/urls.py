"""API routes of the quality app (mounted under /api/v1/).

Path segments use the ``str`` converter: a segment that cannot be a slug or
username reaches the view and gets the API's JSON 404, not the HTML error page.
"""

from django.urls import path

from quality.api import views

urlpatterns = [
    path("gold-items/", views.GoldItemListView.as_view(), name="api-gold-item-list"),
    path("gold-items/import/", views.GoldItemImportView.as_view(), name="api-gold-item-import"),
    path("reviewers/<str:username>/quality/", views.ReviewerQualityView.as_view(), name="api-reviewer-quality"),
    path("reviewers/<str:username>/training-records/", views.TrainingRecordView.as_view(),
         name="api-reviewer-training-records"),
    path("calibration-sessions/", views.CalibrationListView.as_view(), name="api-calibration-list"),
    path("calibration-sessions/<int:pk>/", views.CalibrationDetailView.as_view(), name="api-calibration-detail"),
    path("agreement/", views.AgreementView.as_view(), name="api-agreement"),
    path(
        "systems/<str:slug>/intervention-points/<str:point>/threshold-recommendation/",
        views.ThresholdRecommendationView.as_view(),
        name="api-threshold-recommendation",
    ),
    path(
        "systems/<str:slug>/intervention-points/<str:point>/threshold-recommendation/apply/",
        views.ThresholdApplyView.as_view(),
        name="api-threshold-apply",
    ),
]
