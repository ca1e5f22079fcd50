"""Pages of the dashboard app (mounted at /dashboard/)."""

from django.urls import path

from dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.DashboardPage.as_view(), name="index"),
    path("export/series.csv", views.SeriesCsv.as_view(), name="series_csv"),
    path("export/reviewers.csv", views.ReviewersCsv.as_view(), name="reviewers_csv"),
]
