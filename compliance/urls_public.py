"""The affected person's public pages (Art. 86), mounted at /explain/ (namespace ``explain``)."""

from django.urls import path

from compliance import views_explanations as views

app_name = "explain"
urlpatterns = [
    path("", views.PublicRequestView.as_view(), name="request"),
    path("contest/", views.PublicContestView.as_view(), name="contest"),
    path("letter/", views.PublicLetterView.as_view(), name="letter"),
]
