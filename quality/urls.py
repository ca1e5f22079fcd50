"""Pages of the quality app (under /quality/)."""

from django.urls import path

from quality import views

app_name = "quality"
urlpatterns = [
    path("", views.QualityIndexView.as_view(), name="index"),
    path("reviewers/<str:username>/", views.ReviewerQualityPage.as_view(), name="reviewer"),
    path("agreement/", views.AgreementPage.as_view(), name="agreement"),
    path("calibration/", views.CalibrationListPage.as_view(), name="calibration"),
    path("calibration/<int:pk>/", views.CalibrationDetailPage.as_view(), name="calibration_detail"),
    path("gold/", views.GoldItemsPage.as_view(), name="gold"),
    path("thresholds/", views.ThresholdListPage.as_view(), name="thresholds"),
    path("thresholds/<str:slug>/<str:point>/", views.ThresholdDetailPage.as_view(), name="threshold"),
]
