"""Pages of the compliance workspace (mounted at /compliance/, namespace ``compliance``)."""

from django.urls import path

from compliance import views, views_explanations

urlpatterns = [
    path("", views.SystemListView.as_view(), name="system_list"),
    path("explanations/", views_explanations.ExplanationListView.as_view(), name="explanation_list"),
    path("explanations/<int:pk>/", views_explanations.ExplanationDetailView.as_view(), name="explanation_detail"),
    path("explanations/<int:pk>/answer/", views_explanations.ExplanationAnswerView.as_view(),
         name="explanation_answer"),
    path("explanations/<int:pk>/contest/", views_explanations.ExplanationContestView.as_view(),
         name="explanation_contest"),
    path("explanations/<int:pk>/assign/", views_explanations.ExplanationAssignView.as_view(),
         name="explanation_assign"),
    path("explanations/<int:pk>/letter.pdf", views_explanations.ExplanationLetterView.as_view(fmt="pdf"),
         name="explanation_letter_pdf"),
    path("explanations/<int:pk>/letter.html", views_explanations.ExplanationLetterView.as_view(fmt="html"),
         name="explanation_letter_html"),
    path("calendar/", views.CalendarView.as_view(), name="calendar"),
    path("catalog/", views.CatalogView.as_view(), name="catalog"),
    path("systems/new/", views.SystemCreateView.as_view(), name="system_create"),
    path("systems/<slug:slug>/", views.SystemDetailView.as_view(), name="system_detail"),
    path("systems/<slug:slug>/edit/", views.SystemEditView.as_view(), name="system_edit"),
    path("systems/<slug:slug>/suspend/", views.SuspendView.as_view(), name="system_suspend"),
    path("systems/<slug:slug>/classify/", views.ClassifyStartView.as_view(), name="classify"),
    path("systems/<slug:slug>/classify/<slug:step>/", views.ClassifyStepView.as_view(), name="classify_step"),
    path("systems/<slug:slug>/obligations/", views.ObligationBoardView.as_view(), name="obligations"),
    path("systems/<slug:slug>/obligations/sync/", views.ObligationSyncView.as_view(), name="obligations_sync"),
    path("systems/<slug:slug>/obligations/<int:pk>/", views.ObligationEditView.as_view(), name="obligation_edit"),
    path("systems/<slug:slug>/evidence/<int:pk>/", views.EvidenceDownloadView.as_view(), name="evidence_download"),
    path("systems/<slug:slug>/fria/", views.FriaView.as_view(), name="fria"),
    path("systems/<slug:slug>/fria/<int:version>/", views.FriaVersionView.as_view(), name="fria_version"),
    path("systems/<slug:slug>/dossier/", views.DossierPageView.as_view(), name="dossier"),
    path("systems/<slug:slug>/dossier.pdf", views.DossierDownloadView.as_view(fmt="pdf"), name="dossier_pdf"),
    path("systems/<slug:slug>/dossier.html", views.DossierDownloadView.as_view(fmt="html"), name="dossier_html"),
    path("incident-reports/<int:pk>.pdf", views.IncidentReportDownloadView.as_view(), name="incident_report_pdf"),
]
