"""Pages of the incident register: the filtered list, an incident with its Art. 73 clock, filing one.

Reads go through ``incidents.selectors``, writes through
``incidents.services`` (which audit them). Compliance officers file and
move incidents; managers read the register; admins pass every role check.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View

from audit.timeline import event_entry
from hitl_portal.permissions import RoleRequiredMixin, may_access
from hitl_portal.roles import COMPLIANCE_OFFICER, MANAGER
from incidents.models import Incident, IncidentKind, IncidentStatus
from incidents.selectors import (
    incident_clock,
    incident_events,
    incident_get,
    incident_list,
    is_overdue,
)
from incidents.services import (
    ART73_REPORT_DAYS,
    DESCRIPTION_MAX,
    NOTE_MAX,
    allowed_next_statuses,
    incident_create,
    incident_update,
)
from reviews.models import AISystem, Case

PAGE_SIZE = 50
WRITERS = (COMPLIANCE_OFFICER,)
READERS = (COMPLIANCE_OFFICER, MANAGER)


def _kind_choices() -> list[tuple[str, str]]:
    """Each kind with its reporting deadline, so the filer sees the clock they start.

    The list starts with an empty choice: a preselected "death" would be filed by anyone
    who skipped the field, starting the shortest Art. 73 clock by accident.
    """
    choices = [("", "Choose the kind of incident")]
    for value, label in IncidentKind.choices:
        days = ART73_REPORT_DAYS.get(value)
        choices.append((value, f"{label} — report within {days} days" if days else f"{label} — no Art. 73 clock"))
    return choices


class IncidentFilterForm(forms.Form):
    """The register's filters (GET); an invalid value is shown as an error, never a 500."""

    system = forms.ModelChoiceField(
        queryset=AISystem.objects.order_by("name"), to_field_name="slug", required=False, empty_label="All systems"
    )
    kind = forms.ChoiceField(choices=[("", "All kinds"), *IncidentKind.choices], required=False)
    status = forms.ChoiceField(choices=[("", "Any status"), *IncidentStatus.choices], required=False)
    overdue = forms.ChoiceField(
        choices=[("", "Overdue or not"), ("yes", "Overdue reports only"), ("no", "Not overdue")], required=False
    )


class IncidentCreateForm(forms.Form):
    """Filing an incident. Awareness is entered in UTC, as every time in the portal."""

    system = forms.ModelChoiceField(queryset=AISystem.objects.order_by("name"), to_field_name="slug",
                                    empty_label="Choose the AI system")
    kind = forms.ChoiceField(choices=_kind_choices)
    aware_at = forms.DateTimeField(
        label="Aware since (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="When the organisation became aware of the incident: the Art. 73 clock starts here.",
    )
    title = forms.CharField(max_length=200, required=False)
    description = forms.CharField(max_length=DESCRIPTION_MAX, widget=forms.Textarea(attrs={"rows": 6}))
    case = forms.IntegerField(label="Case id (optional)", required=False, min_value=1, max_value=2**63 - 1,
                              help_text="The case this incident concerns, if any (it must belong to the system).")


class IncidentUpdateForm(forms.Form):
    """The next status (only the moves the flow allows are offered) and a note."""

    status = forms.ChoiceField(label="Move to", required=False)
    note = forms.CharField(max_length=NOTE_MAX, required=False, widget=forms.Textarea(attrs={"rows": 3}),
                           help_text="Recorded on the incident and in the audit trail with your name.")

    def __init__(self, *args: Any, incident: Incident, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labels = dict(IncidentStatus.choices)
        cast(forms.ChoiceField, self.fields["status"]).choices = [("", "(no change: add the note only)")] + [
            (value, labels[value]) for value in allowed_next_statuses(incident)
        ]


def _apply_errors(form: forms.Form, exc: ValidationError) -> None:
    """A service refusal shown on the form field it names (or at the top)."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, field_messages in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, field_messages)


class IncidentListPage(RoleRequiredMixin, View):
    allowed_roles = READERS

    def get(self, request: HttpRequest) -> HttpResponse:
        form = IncidentFilterForm(request.GET or None)
        filters: dict[str, Any] = {}
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            filters = {
                "system": data["system"].slug if data["system"] else None,
                "kind": data["kind"] or None,
                "status": data["status"] or None,
                "overdue": {"yes": True, "no": False}.get(data["overdue"]),
            }
        now = timezone.now()
        incidents = incident_list(user=request.user, now=now, **filters) if not form.errors else Incident.objects.none()
        page = Paginator(incidents, PAGE_SIZE).get_page(request.GET.get("page"))
        rows = [{"incident": i, "clock": incident_clock(i, now=now)} for i in page.object_list]
        query = request.GET.copy()
        query.pop("page", None)
        return render(request, "incidents/list.html", {
            "form": form, "page": page, "rows": rows, "query": query.urlencode(),
            "can_file": may_access(request.user, "compliance:incident_create"),
        })


class IncidentCreatePage(RoleRequiredMixin, View):
    allowed_roles = WRITERS

    def get(self, request: HttpRequest) -> HttpResponse:
        initial: dict[str, Any] = {"aware_at": timezone.now().replace(second=0, microsecond=0)}
        system = AISystem.objects.filter(slug=request.GET.get("system", "")).first()
        if system is not None:
            initial["system"] = system
        if request.GET.get("case", "").isdigit():
            initial["case"] = int(request.GET["case"])
        return self._render(request, IncidentCreateForm(initial=initial))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = IncidentCreateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            case = None
            if data["case"] is not None:
                case = Case.objects.filter(pk=data["case"]).select_related("system").first()
                if case is None:
                    form.add_error("case", f"No case with id {data['case']}.")
            if not form.errors:
                try:
                    incident = incident_create(
                        actor=request.user, system=data["system"], kind=data["kind"], aware_at=data["aware_at"],
                        description=data["description"], case=case, title=data["title"],
                    )
                except ValidationError as exc:
                    _apply_errors(form, exc)
                else:
                    messages.success(request, f"Incident #{incident.pk} filed.")
                    return redirect("compliance:incident_detail", pk=incident.pk)
        return self._render(request, form, status=400)

    def _render(self, request: HttpRequest, form: IncidentCreateForm, status: int = 200) -> HttpResponse:
        return render(request, "incidents/form.html", {"form": form}, status=status)


class IncidentDetailPage(RoleRequiredMixin, View):
    roles = {"GET": READERS, "POST": WRITERS}

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        incident = incident_get(user=request.user, pk=pk)
        return self._render(request, incident, IncidentUpdateForm(incident=incident))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        incident = incident_get(user=request.user, pk=pk)
        form = IncidentUpdateForm(request.POST, incident=incident)
        if form.is_valid():
            try:
                incident_update(actor=request.user, incident=incident, status=form.cleaned_data["status"] or None,
                                note=form.cleaned_data["note"])
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f"Incident #{incident.pk} updated.")
                return redirect("compliance:incident_detail", pk=incident.pk)
        return self._render(request, incident, form, status=400)

    def _render(self, request: HttpRequest, incident: Incident, form: IncidentUpdateForm,
                status: int = 200) -> HttpResponse:
        now = timezone.now()
        return render(request, "incidents/detail.html", {
            "incident": incident,
            "clock": incident_clock(incident, now=now),
            "overdue": is_overdue(incident, now=now),
            "art73_days": ART73_REPORT_DAYS.get(incident.kind),
            "form": form,
            "can_change": may_access(request.user, "compliance:incident_detail", incident.pk, method="POST"),
            "events": [event_entry(event) for event in incident_events(incident)],
            "notes": [line for line in incident.notes.splitlines() if line.strip()],
        }, status=status)
