"""Review setup pages (compliance officers): how the workbench shows a point's cases, and its review form.

Edits go through ``reviews.services.systems.intervention_point_update``: each change
bumps the point's version (cases record the version they were routed under) and is
audited, exactly as a change through the API.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from hitl_portal.actors import request_user
from hitl_portal.permissions import RoleRequiredMixin
from hitl_portal.roles import COMPLIANCE_OFFICER
from reviews.content import FIELD_TYPES, RENDERERS
from reviews.forms_setup import (
    DecisionFieldFormSet,
    DisplayFormSet,
    SetupReasonForm,
    display_initial,
    fields_initial,
)
from reviews.models import InterventionPoint
from reviews.selectors.systems import intervention_point_get, system_get
from reviews.services.systems import intervention_point_update


class SetupPageMixin(RoleRequiredMixin):
    """Compliance officers (admins pass every role check)."""

    allowed_roles = (COMPLIANCE_OFFICER,)


class SetupListView(SetupPageMixin, View):
    """Every intervention point, with what its workbench shows and asks."""

    def get(self, request: HttpRequest) -> HttpResponse:
        points = InterventionPoint.objects.select_related("system").order_by("system__slug", "slug")
        return render(request, "reviews/setup_list.html", {"points": points})


class SetupPointView(SetupPageMixin, View):
    """Edit one point's display configuration and decision fields."""

    def get(self, request: HttpRequest, system: str, point: str) -> HttpResponse:
        found = intervention_point_get(system=system_get(slug=system), slug=point)
        return self._render(request, found, DisplayFormSet(prefix="display", initial=display_initial(found.display)),
                            DecisionFieldFormSet(prefix="fields", initial=fields_initial(found.decision_fields)),
                            SetupReasonForm())

    def post(self, request: HttpRequest, system: str, point: str) -> HttpResponse:
        found = intervention_point_get(system=system_get(slug=system), slug=point)
        display_set = DisplayFormSet(request.POST, prefix="display")
        fields_set = DecisionFieldFormSet(request.POST, prefix="fields")
        reason_form = SetupReasonForm(request.POST)
        if not (display_set.is_valid() and fields_set.is_valid() and reason_form.is_valid()):
            return self._render(request, found, display_set, fields_set, reason_form, status=400)
        display = [e for e in (f.entry() for f in display_set.forms) if e is not None]
        fields = [e for e in (f.entry() for f in fields_set.forms) if e is not None]
        try:
            updated = intervention_point_update(
                actor=request_user(request), point=found, changes={"display": display, "decision_fields": fields},
                reason=reason_form.cleaned_data.get("reason") or "",
            )
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
            return self._render(request, found, display_set, fields_set, reason_form, status=400, errors=errors)
        if updated.version != found.version:
            messages.success(request, f"Saved: {found} is now at rules version {updated.version}.")
        else:
            messages.info(request, "Nothing changed.")
        return redirect("reviews:setup_point", system=system, point=point)

    def _render(self, request: HttpRequest, point: InterventionPoint, display_set: Any, fields_set: Any,
                reason_form: SetupReasonForm, *, status: int = 200,
                errors: dict[str, list[str]] | None = None) -> HttpResponse:
        context = {
            "point": point, "display_set": display_set, "fields_set": fields_set, "reason_form": reason_form,
            "errors": errors or {}, "renderers": RENDERERS, "field_types": FIELD_TYPES,
        }
        return render(request, "reviews/setup_point.html", context, status=status)
