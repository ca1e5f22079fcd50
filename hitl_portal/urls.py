"""URL map: API under /api/v1/, pages per app, the admin oversight console."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from hitl_portal import views

admin.site.site_header = "HITL oversight console"
admin.site.site_title = "HITL oversight console"
admin.site.index_title = "Oversight console"

api_v1 = [
    path("", include("reviews.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("records.api.urls")),
    path("", include("incidents.api.urls")),
    path("", include("compliance.api.urls")),
    path("", include("quality.api.urls")),
    path("", include("fairness.api.urls")),
    path("", include("dashboard.api.urls")),
]

urlpatterns = [
    # First: the integrations' hot paths resolve without trying the page routes before them
    # (no other route starts with "api/v1/", so the order changes no match).
    path("api/v1/", include(api_v1)),
    path("healthz", views.healthz, name="healthz"),
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("reviews.urls_accounts")),
    path("admin/", admin.site.urls),
    path("api/schema/", views.SchemaView.as_view(), name="schema"),
    path("api/docs/", views.SchemaDocsView.as_view(url_name="schema"), name="api-docs"),
    path("notifications/", include("hitl_portal.urls_notifications")),
    path("review/", include("reviews.urls")),
    # One page namespace ``audit`` for the ledger's pages and the case browser of ``records``
    # (its URL names predate the split of the two apps and stay as they were).
    path("audit/", include(([path("", include("audit.urls")), path("", include("records.urls"))], "audit"))),
    path("compliance/", include("compliance.urls")),
    # Art. 86: the affected person's public page (no login).
    path("explain/", include("compliance.urls_public")),
    path("quality/", include("quality.urls")),
    path("fairness/", include("fairness.urls")),
    path("dashboard/", include("dashboard.urls")),
]

handler403 = "hitl_portal.views.forbidden"
handler404 = "hitl_portal.views.not_found"
handler500 = "hitl_portal.views.server_error"
