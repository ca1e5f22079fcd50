"""Pages of the reviews app: the reviewer workbench under /review/."""

from django.urls import path

from reviews import views, views_setup

app_name = "reviews"
urlpatterns = [
    path("", views.QueueView.as_view(), name="queue"),
    path("claim/", views.ClaimNextView.as_view(), name="claim"),
    path("case/<int:pk>/", views.CaseView.as_view(), name="case"),
    path("case/<int:pk>/renew/", views.RenewView.as_view(), name="renew"),
    path("case/<int:pk>/release/", views.ReleaseView.as_view(), name="release"),
    path("setup/", views_setup.SetupListView.as_view(), name="setup"),
    path("setup/<slug:system>/<slug:point>/", views_setup.SetupPointView.as_view(), name="setup_point"),
]
