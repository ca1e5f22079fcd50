"""Pages of the audit app: the case browser and timelines, the published verification key."""

from django.urls import path

from audit import views, views_keys

app_name = "audit"
urlpatterns = [
    path("cases/", views.CaseListPage.as_view(), name="case_list"),
    path("cases/<int:pk>/", views.CaseTimelinePage.as_view(), name="case_detail"),
]
urlpatterns.append(path("public-key/", views_keys.public_key_page, name="public_key"))
