"""The in-app inbox of alerts and each user's notification preferences (every signed-in user)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from hitl_portal.notifications import inbox, mark_read, preference_rows, preferences_set
from hitl_portal.permissions import AUTHENTICATED, RoleRequiredMixin

PAGE_SIZE = 50


class InboxPage(RoleRequiredMixin, View):
    roles = {"GET": {AUTHENTICATED}, "POST": {AUTHENTICATED}}

    def get(self, request: HttpRequest) -> HttpResponse:
        page = Paginator(inbox(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
        return render(request, "notifications/inbox.html", {"page": page})

    def post(self, request: HttpRequest) -> HttpResponse:
        # "Mark all read" marks everything; otherwise only the ticked alerts (none ticked: nothing).
        raw = request.POST.getlist("notification")
        ids = None if request.POST.get("all") else [int(value) for value in raw if value.isdigit()]
        changed = mark_read(user=request.user, ids=ids)
        messages.success(request, f"{changed} alert(s) marked read.")
        return redirect("notifications:inbox")


class PreferencesPage(RoleRequiredMixin, View):
    roles = {"GET": {AUTHENTICATED}, "POST": {AUTHENTICATED}}

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "notifications/preferences.html", {"rows": preference_rows(request.user)})

    def post(self, request: HttpRequest) -> HttpResponse:
        choices = {
            row["kind"]: {"inbox": request.POST.get(f"{row['kind']}-inbox") == "on",
                          "email": request.POST.get(f"{row['kind']}-email") == "on"}
            for row in preference_rows(request.user)
        }
        preferences_set(user=request.user, choices=choices)
        messages.success(request, "Your notification preferences are saved.")
        return redirect("notifications:preferences")
