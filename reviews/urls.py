"""Pages of the reviews app: the reviewer workbench under /review/."""

from django.urls import path

from reviews import views, views_officers, views_own, views_setup

app_name = "reviews"
urlpatterns = [
    path("", views.QueueView.as_view(), name="queue"),
    path("claim/", views.ClaimNextView.as_view(), name="claim"),
    path("case/<int:pk>/", views.CaseView.as_view(), name="case"),
    path("case/<int:pk>/renew/", views.RenewView.as_view(), name="renew"),
    path("case/<int:pk>/release/", views.ReleaseView.as_view(), name="release"),
    path("case/<int:pk>/skip/", views_own.SkipView.as_view(), name="skip"),
    path("case/<int:pk>/comment/", views_own.CommentView.as_view(), name="comment"),
    path("mine/", views_own.MyDecisionsView.as_view(), name="my_decisions"),
    path("mine/<int:pk>/", views_own.MyCaseView.as_view(), name="my_case"),
    path("decision/<int:pk>/undo/", views_own.UndoView.as_view(), name="undo"),
    path("escalations/", views_officers.EscalationsView.as_view(), name="escalations"),
    path("escalations/<int:pk>/", views_officers.OfficerCaseView.as_view(), name="officer_case"),
    path("escalations/<int:pk>/assign/", views_officers.AssignView.as_view(), name="assign"),
    path("setup/", views_setup.SetupListView.as_view(), name="setup"),
    path("setup/<slug:system>/<slug:point>/", views_setup.SetupPointView.as_view(), name="setup_point"),
]
