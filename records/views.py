"""The case browser: a filterable list of cases and each case's timeline.

For compliance officers and managers (admins pass every role check). The
timeline of a case merges, in time order, every audit event about it (by
``case_id``: its own events, its decisions', incidents filed about it) and every
historical change of the case and of its decisions (django-simple-history rows,
diffed with ``diff_against``): who, when, what changed, why.

Both pages run a fixed number of queries whatever the data (pinned by tests): the
list pages by keyset on ``(received_at, id)`` (served by the received-at indexes,
no COUNT), the timeline reads the events, the two history tables and the names of
the users the changes mention, once each.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views import View

from audit.models import AuditEvent
from audit.timeline import USER_FIELDS, Change, Entry, event_entry
from audit.timeline import text as _text
from hitl_portal.actors import SYSTEM_USERNAME
from hitl_portal.permissions import RoleRequiredMixin, may_access
from hitl_portal.roles import COMPLIANCE_OFFICER, MANAGER
from reviews.models import OPEN_STATUSES, AISystem, Case, CaseStatus, Decision, Resolution
from reviews.selectors.visibility import cases_visible_to

PAGE_SIZE = 50
MAX_PK = 2**63 - 1
OPEN = "open"  # pseudo-status of the case list filter: every open status at once
# Routing reasons of the contract (api-v1, "Routing reasons"), as the filter offers them.
ROUTING_REASONS: tuple[tuple[str, str], ...] = (
    ("confidence_below", "Confidence below threshold"),
    ("always_review_label", "Always-review label"),
    ("high_stakes", "High-stakes condition"),
    ("high_stakes_field_missing", "High-stakes field missing"),
    ("random_sample", "Random sample"),
    ("system_halted", "System halted"),
    ("labeling", "Labeling stage"),
)
# What the list reads of a case: never the input or subject (personal data, and large).
LIST_FIELDS = (
    "id", "external_id", "status", "resolution", "routed", "routing_reasons", "final_label", "prediction_label",
    "received_at", "decided_at", "system__name", "system__slug",
)
CURSOR_SEPARATOR = "~"


class CaseBrowserMixin(RoleRequiredMixin):
    allowed_roles = (COMPLIANCE_OFFICER, MANAGER)


# --- The list ------------------------------------------------------------------------------------


class CaseFilterForm(forms.Form):
    """Filters of the case list (GET). Django's fields refuse NUL characters, so bad input is a form error."""

    q = forms.CharField(label="External id", required=False, max_length=255)
    system = forms.ModelChoiceField(
        queryset=AISystem.objects.order_by("name").only("id", "name", "slug"), to_field_name="slug",
        required=False, empty_label="All systems",
    )
    # "open" is what the dashboard's queue depth counts: every case still waiting for a person.
    status = forms.ChoiceField(choices=[("", "Any status"), (OPEN, "Open (queued, claimed or escalated)"),
                                        *CaseStatus.choices], required=False)
    resolution = forms.ChoiceField(choices=[("", "Any resolution"), *Resolution.choices], required=False)
    reason = forms.ChoiceField(label="Routed because", choices=[("", "Any reason"), *ROUTING_REASONS],
                               required=False)
    reviewer = forms.CharField(label="Reviewer (user name)", required=False, max_length=150)
    received_from = forms.DateField(label="Received from", required=False,
                                    widget=forms.DateInput(attrs={"type": "date"}))
    received_to = forms.DateField(label="Received to (inclusive)", required=False,
                                  widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what BaseForm.clean returns (its stub says "or None")
        start, end = data.get("received_from"), data.get("received_to")
        if start and end and end < start:
            self.add_error("received_to", "Must not be before the start of the period.")
        return data


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _with_reason(cases: QuerySet[Case], reason: str) -> QuerySet[Case]:
    """Cases whose routing reasons include ``reason``.

    PostgreSQL: jsonb containment. SQLite has no JSON containment lookup; there the
    stored JSON text is matched on the quoted reason (the quotes keep
    ``high_stakes`` from matching ``high_stakes_field_missing``).
    """
    if connection.vendor == "postgresql":
        return cases.filter(routing_reasons__contains=[reason])
    return cases.annotate(reasons_text=Cast("routing_reasons", TextField())).filter(
        reasons_text__contains=f'"{reason}"'
    )


def case_browser_list(*, user: Any, filters: dict[str, Any]) -> QuerySet[Case]:
    """The cases ``user`` may see, filtered, newest first (received time, then id)."""
    cases = cases_visible_to(user, queryset=Case.objects.select_related("system").only(*LIST_FIELDS))
    if filters.get("q"):
        cases = cases.filter(external_id=filters["q"].strip())
    if filters.get("system"):
        cases = cases.filter(system=filters["system"])
    if filters.get("status") == OPEN:
        cases = cases.filter(status__in=OPEN_STATUSES)
    elif filters.get("status"):
        cases = cases.filter(status=filters["status"])
    if filters.get("resolution"):
        cases = cases.filter(resolution=filters["resolution"])
    if filters.get("reason"):
        cases = _with_reason(cases, filters["reason"])
    if filters.get("reviewer"):
        name = filters["reviewer"].strip()
        decided = Decision.objects.filter(reviewer__username=name).values("case_id")
        cases = cases.filter(Q(pk__in=decided) | Q(claimed_by__username=name))
    if filters.get("received_from"):
        cases = cases.filter(received_at__gte=_day_start(filters["received_from"]))
    if filters.get("received_to"):
        cases = cases.filter(received_at__lt=_day_start(filters["received_to"]) + dt.timedelta(days=1))
    return cases.order_by("-received_at", "-id")


def encode_cursor(case: Case) -> str:
    return f"{case.received_at.isoformat()}{CURSOR_SEPARATOR}{case.pk}"


def decode_cursor(value: str) -> tuple[dt.datetime, int] | None:
    """The (received_at, id) a page continues after; None for a missing or malformed cursor (first page)."""
    when_text, _, pk_text = (value or "").rpartition(CURSOR_SEPARATOR)
    if not when_text or not pk_text.isdigit() or int(pk_text) > MAX_PK:
        return None
    try:
        when = parse_datetime(when_text)
    except ValueError:
        return None
    if when is None or timezone.is_naive(when):
        return None
    return when, int(pk_text)


class CaseListPage(CaseBrowserMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        form = CaseFilterForm(request.GET or None)
        rows: list[Case] = []
        next_cursor = None
        after = decode_cursor(request.GET.get("after", ""))
        if not form.is_bound or form.is_valid():
            filters = form.cleaned_data if form.is_bound else {}
            cases = case_browser_list(user=request.user, filters=filters)
            if after is not None:
                when, pk = after
                cases = cases.filter(Q(received_at__lt=when) | Q(received_at=when, pk__lt=pk))
            rows = list(cases[: PAGE_SIZE + 1])
            if len(rows) > PAGE_SIZE:
                rows = rows[:PAGE_SIZE]
                next_cursor = encode_cursor(rows[-1])
        query = request.GET.copy()
        query.pop("after", None)
        return render(request, "records/case_list.html", {
            "form": form,
            "rows": rows,
            "next_cursor": next_cursor,
            "paged": after is not None,
            "query": query.urlencode(),
            "page_size": PAGE_SIZE,
        })


# --- The timeline ------------------------------------------------------------------------------


def _history_user(record: Any) -> tuple[str, str]:
    user = record.history_user
    if user is None:
        return "system", "system"
    name = user.get_username()
    return name, "system" if name == SYSTEM_USERNAME else "user"


# Fields shown when a case or decision is first recorded (the "+" history row).
CASE_CREATED_FIELDS = ("status", "routed", "routing_reasons", "rules_version", "prediction_label",
                       "prediction_confidence", "model_version", "reviewers_required", "sla_deadline")
DECISION_CREATED_FIELDS = ("outcome", "label", "round", "ai_shown", "is_adjudication", "time_spent_ms")


def _history_entries(
    records: list[Any], *, subject: str, created_fields: tuple[str, ...], users: dict[int, str], why_field: str = ""
) -> list[Entry]:
    """Timeline entries of one object's history rows (oldest first), each diffed against the one before."""
    entries: list[Entry] = []
    previous = None
    for record in records:
        who, who_type = _history_user(record)
        entry = Entry(at=record.history_date, kind="change", order=0, title="", who=who, who_type=who_type,
                      subject=subject, why=record.history_change_reason or "")
        if record.history_type == "+" or previous is None:
            entry.title = "Recorded"
            entry.facts = [(name, _text(getattr(record, name), users=users, name=name))
                           for name in created_fields if hasattr(record, name)]
        elif record.history_type == "-":
            entry.title = "Deleted"
        else:
            delta = record.diff_against(previous)
            entry.title = "Changed"
            entry.changes = [
                Change(c.field, _text(c.old, users=users, name=c.field), _text(c.new, users=users, name=c.field))
                for c in delta.changes
            ]
            if not entry.changes:
                entry.note = "Saved with no field change."
        if why_field and not entry.why and (record.history_type == "+" or entry.changes):
            entry.why = getattr(record, why_field, "") or ""
        entries.append(entry)
        previous = record
    return entries


def _user_ids(records: list[Any]) -> set[int]:
    ids: set[int] = set()
    for record in records:
        for name in USER_FIELDS:
            value = getattr(record, f"{name}_id", None)
            if isinstance(value, int):
                ids.add(value)
    return ids


@dataclass
class Timeline:
    case: Case
    entries: list[Entry]
    events: int
    changes: int


def case_timeline(*, user: Any, pk: int) -> Timeline:
    """A case ``user`` may see with its merged, time-ordered timeline; 404 otherwise."""
    if not 0 < pk <= MAX_PK:
        raise Http404("No such case.")
    queryset = Case.objects.select_related("system", "intervention_point", "claimed_by").defer("input", "subject")
    case = cases_visible_to(user, queryset=queryset).filter(pk=pk).first()
    if case is None:
        raise Http404("No such case.")
    events = list(AuditEvent.objects.filter(case_id=case.pk).order_by("at", "id"))
    case_records = list(case.history.select_related("history_user").order_by("history_date", "history_id"))
    decision_records = list(
        Decision.history.filter(case_id=case.pk).select_related("history_user").order_by("history_date", "history_id")
    )
    wanted = _user_ids(case_records) | _user_ids(decision_records)
    users = dict(User.objects.filter(pk__in=wanted).values_list("pk", "username")) if wanted else {}

    entries = [event_entry(event) for event in events]
    entries += _history_entries(case_records, subject=f"case #{case.pk}", created_fields=CASE_CREATED_FIELDS,
                                users=users)
    by_decision: dict[int, list[Any]] = {}
    for record in decision_records:
        by_decision.setdefault(record.id, []).append(record)
    for decision_id, records in by_decision.items():
        reviewer = users.get(records[-1].reviewer_id, f"user #{records[-1].reviewer_id}")
        entries += _history_entries(records, subject=f"decision #{decision_id} by {reviewer}",
                                    created_fields=DECISION_CREATED_FIELDS, users=users, why_field="rationale")
    # A history row is written by the save, the event just after it in the same
    # transaction: at equal times the change comes first.
    entries.sort(key=lambda e: (e.at, e.order))
    return Timeline(case=case, entries=entries, events=len(events),
                    changes=len(case_records) + len(decision_records))


class CaseTimelinePage(CaseBrowserMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        timeline = case_timeline(user=request.user, pk=pk)
        return render(request, "records/case_detail.html", {
            "case": timeline.case,
            "timeline": timeline,
            "can_file_incident": may_access(request.user, "compliance:incident_create"),
        })
