"""Pages of the records app: the case browser and case timelines (mounted in the ``audit`` namespace)."""

from django.urls import path

from records import views

urlpatterns = [
    path("cases/", views.CaseListPage.as_view(), name="case_list"),
    path("cases/<int:pk>/", views.CaseTimelinePage.as_view(), name="case_detail"),
]
