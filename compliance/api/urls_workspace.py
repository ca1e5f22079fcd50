"""API routes of the compliance workspace (mounted under /api/v1/).

Path segments use the ``str`` converter so that anything that is not a slug or a
ref reaches the view and gets the API's JSON 404.
"""

from django.urls import path

from compliance.api import views_workspace as views

urlpatterns = [
    path("systems/<str:slug>/classification/", views.ClassificationView.as_view(), name="api-system-classification"),
    path("systems/<str:slug>/obligations/", views.ObligationListView.as_view(), name="api-obligation-list"),
    path("systems/<str:slug>/obligations/sync/", views.ObligationSyncView.as_view(), name="api-obligation-sync"),
    path("systems/<str:slug>/obligations/<str:ref>/", views.ObligationDetailView.as_view(),
         name="api-obligation-detail"),
    path("systems/<str:slug>/fria/", views.FriaView.as_view(), name="api-fria"),
    path("systems/<str:slug>/fria/<int:version>/", views.FriaVersionView.as_view(), name="api-fria-version"),
    path("systems/<str:slug>/dossier/", views.DossierView.as_view(), name="api-dossier"),
    path("requirements/", views.RequirementListView.as_view(), name="api-requirement-list"),
    path("regulatory-calendar/", views.CalendarView.as_view(), name="api-regulatory-calendar"),
]
