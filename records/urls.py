"""Pages of the records app: the case browser and case timelines (mounted in the ``audit`` namespace)."""

from django.urls import path

from records import views, views_trail

urlpatterns = [
    path("cases/", views.CaseListPage.as_view(), name="case_list"),
    path("cases/<int:pk>/", views.CaseTimelinePage.as_view(), name="case_detail"),
]

# The officers' records desk: verify the chain, export the trail, legal holds.
urlpatterns += [
    path("trail/", views_trail.TrailPage.as_view(), name="trail"),
    path("trail/holds/", views_trail.HoldPlacePage.as_view(), name="legal_hold_place"),
    path("trail/holds/<int:pk>/release/", views_trail.HoldReleasePage.as_view(), name="legal_hold_release"),
]
