"""The officers' records desk (``/audit/trail/``): verify the chain, export the trail, legal holds.

Thin pages over the existing services and selectors: verification is a read
(``audit.selectors.verify_chain``, as ``GET /api/v1/audit/verify/``); the download
is the API's export (``/api/v1/audit/export/``, recorded as ``audit.exported``); holds
are placed and released through ``records.services`` (audited there).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from audit.selectors import verify_chain
from hitl_portal.permissions import RoleRequiredMixin
from hitl_portal.roles import COMPLIANCE_OFFICER
from records.models import LegalHold
from records.services import legal_hold_place, legal_hold_release
from reviews.models import AISystem

OFFICERS = {COMPLIANCE_OFFICER}  # admins always pass


class HoldPlaceForm(forms.Form):
    system = forms.ModelChoiceField(queryset=AISystem.objects.order_by("name"), to_field_name="slug",
                                    required=False, empty_label="Every system")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
                             help_text="Why the records must be kept (litigation, investigation, authority request).")
    reference = forms.CharField(max_length=200, required=False, help_text="Matter, case or request number.")


class HoldReleaseForm(forms.Form):
    reason = forms.CharField(label="Reason for the release", max_length=2000)


def _page(request: HttpRequest, *, place: HoldPlaceForm | None = None, report: dict[str, Any] | None = None,
          status: int = 200) -> HttpResponse:
    holds = LegalHold.objects.select_related("system", "placed_by", "released_by").order_by("-placed_at", "-pk")
    return render(request, "records/trail.html", {
        "report": report,
        "place_form": place or HoldPlaceForm(),
        "active_holds": [h for h in holds if h.released_at is None],
        "released_holds": [h for h in holds if h.released_at is not None][:20],
    }, status=status)


class TrailPage(RoleRequiredMixin, View):
    roles = {"GET": OFFICERS, "POST": OFFICERS}

    def get(self, request: HttpRequest) -> HttpResponse:
        return _page(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        """"Verify the chain": a read, shown on the page (nothing changes, so nothing to audit)."""
        return _page(request, report=verify_chain().as_report())


class HoldPlacePage(RoleRequiredMixin, View):
    roles = {"POST": OFFICERS}

    def post(self, request: HttpRequest) -> HttpResponse:
        form = HoldPlaceForm(request.POST)
        if form.is_valid():
            try:
                hold = legal_hold_place(actor=request.user, reason=form.cleaned_data["reason"],
                                        system=form.cleaned_data["system"],
                                        reference=form.cleaned_data["reference"])
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, f"Legal hold #{hold.pk} placed: no retention purge runs for "
                                          f"{hold.system.name if hold.system else 'any system'} until it is released.")
                return redirect("audit:trail")
        return _page(request, place=form, status=400)


class HoldReleasePage(RoleRequiredMixin, View):
    roles = {"POST": OFFICERS}

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        hold = get_object_or_404(LegalHold, pk=pk)
        form = HoldReleaseForm(request.POST)
        if not form.is_valid():
            messages.error(request, f"Legal hold #{hold.pk} not released: a reason is required.")
            return redirect("audit:trail")
        try:
            legal_hold_release(actor=request.user, hold=hold, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Legal hold #{hold.pk} released.")
        return redirect("audit:trail")
