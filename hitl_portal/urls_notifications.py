"""Pages of the notifications (namespace ``notifications``)."""

from django.urls import path

from hitl_portal import views_notifications as views

app_name = "notifications"
urlpatterns = [
    path("", views.InboxPage.as_view(), name="inbox"),
    path("preferences/", views.PreferencesPage.as_view(), name="preferences"),
]
