"""The KPI dashboard page and its CSV exports (managers, compliance officers, admins).

Thin: the scope comes from ``ScopeForm``, every figure from the one KPI module
(``dashboard.selectors.dashboard_data``), the charts from ``dashboard.charts``
(server-rendered SVG). The page shows fractions as % and differences as
percentage points; the CSV keeps fractions and seconds, like the API.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.views import View

from dashboard import charts
from dashboard.aggregation import utc_day
from dashboard.forms import ScopeForm
from dashboard.monitoring import REFERENCE_DAYS, recent_alerts
from dashboard.selectors import Card, DashboardData, KpiScope, dashboard_data, kpi_series, reviewer_table
from dashboard.targets import TARGETS
from hitl_portal.csv_export import csv_writer
from hitl_portal.formatting import format_duration, format_number, format_percent, format_pp, format_ratio
from hitl_portal.notifications import undelivered
from hitl_portal.permissions import RoleRequiredMixin
from hitl_portal.roles import COMPLIANCE_OFFICER, MANAGER

KPI_PAGE_ROLES = (MANAGER, COMPLIANCE_OFFICER)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _last_day(scope: KpiScope) -> dt.date:
    return utc_day(scope.end - dt.timedelta(microseconds=1))


def case_link(scope: KpiScope, *, in_period: bool = True, **filters: str) -> str:
    """The case browser (``/audit/cases/``) filtered to the cases behind a figure.

    ``in_period=False`` for live figures (the queue now), which are not limited
    to the cases received in the period.
    """
    params = {"system": scope.system.slug if scope.system else ""}
    if in_period:
        params.update(received_from=utc_day(scope.start).isoformat(), received_to=_last_day(scope).isoformat())
    params.update(filters)
    return reverse("audit:case_list") + "?" + urlencode({k: v for k, v in params.items() if v})


def reviewer_rows(scope: KpiScope, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reviewer table's rows, each with its link to the reviewer's cases of the period.

    The link is ``case_link(scope, reviewer=name)``: the period's link built once and
    the reviewer appended (its last parameter), not a ``reverse()`` per reviewer.
    """
    base = case_link(scope)
    joiner = "" if base.endswith("?") else "&"
    return [{**row, "link": f"{base}{joiner}{urlencode({'reviewer': row['reviewer']})}"} for row in rows]


def api_link(scope: KpiScope) -> str:
    """The same figures from the API (``GET /api/v1/kpis/``)."""
    params = {"system": scope.system.slug if scope.system else "", "from": _iso(scope.start), "to": _iso(scope.end)}
    return reverse("api-kpis") + "?" + urlencode({k: v for k, v in params.items() if v})


def _target_text(card: Card, fmt: Any) -> str:
    if card.target is None:
        return ""
    sign = "≥" if TARGETS[card.key].direction == "min" else "≤"
    return f"target {sign} {fmt(card.target)}"


def kpi_cards(data: DashboardData) -> list[dict[str, Any]]:
    """The cards in reading order: what each shows, its target and where its cases are."""
    k, c, scope = data.kpis, data.cards, data.scope
    agreement = k["agreement"]
    ttr = k["time_to_resolution_s"]
    kappa_name = {"cohen": "Cohen's κ", "fleiss": "Fleiss' κ"}.get(agreement["statistic"] or "", "κ")
    oldest = k["oldest_waiting_age_s"]

    def card(key: str, title: str, value: Any, display: str, sub: str, *, target: Card | None = None,
             fmt: Any = format_percent, link: str | None = None, note: str = "") -> dict[str, Any]:
        return {
            "key": key, "title": title, "value": value, "display": display, "sub": sub, "link": link,
            "target": _target_text(target, fmt) if target else "", "status": target.status if target else None,
            "note": note,
        }

    return [
        card("cases_total", "Cases", k["cases_total"], format_number(k["cases_total"]),
             f"{format_number(k['routed'])} routed · {format_number(k['auto_accepted'])} auto-accepted",
             link=case_link(scope)),
        card("automation_rate", "Automation rate", k["automation_rate"], format_percent(k["automation_rate"]),
             f"review rate {format_percent(k['review_rate'])}", target=c["automation_rate"],
             link=case_link(scope, status="auto_accepted")),
        card("override_rate", "Override rate", k["override_rate"], format_percent(k["override_rate"]),
             f"{format_number(k['overridden'])} of {format_number(k['reviewed'])} reviewed",
             target=c["override_rate"], link=case_link(scope, status="decided")),
        card("accuracy_lift", "Accuracy lift", k["accuracy_lift"], format_pp(k["accuracy_lift"]),
             f"AI {format_percent(k['accuracy_ai'])} → final {format_percent(k['accuracy_final'])} "
             f"on {format_number(k['evaluated'])} with ground truth",
             target=c["accuracy_lift"], fmt=format_pp,
             note="" if k["evaluated"] else "No ground truth reported yet."),
        card("error_reduction_rate", "Error reduction", k["error_reduction_rate"],
             format_percent(k["error_reduction_rate"]), "of the AI's errors corrected by review",
             target=c["error_reduction_rate"]),
        card("agreement.percent", "Reviewer agreement", agreement["percent"], format_percent(agreement["percent"]),
             f"{kappa_name} {format_ratio(agreement['kappa'])} · α {format_ratio(agreement['alpha'])} · "
             f"{format_number(agreement['units'])} multi-review cases" if agreement["units"] else "",
             target=c["agreement_percent"], note="" if agreement["units"] else "No case had two reviewers."),
        card("time_to_resolution_s.p50", "Time to resolution", ttr["p50"], f"p50 {format_duration(ttr['p50'])}",
             f"p90 {format_duration(ttr['p90'])} · {format_number(k['reviewed'])} reviewed",
             target=c["time_to_resolution_p50_s"], fmt=format_duration,
             link=case_link(scope, status="decided")),
        card("sla_breaches", "SLA breaches", k["sla_breaches"], format_number(k["sla_breaches"]),
             f"{format_percent(k['sla_breach_rate'])} of routed cases", target=c["sla_breaches"], fmt=format_number),
        card("queue_depth", "Queue depth (now)", k["queue_depth"], format_number(k["queue_depth"]),
             f"oldest waiting {format_duration(oldest)}" if oldest is not None else "nothing waiting",
             target=c["queue_depth"], fmt=format_number,
             link=case_link(scope, in_period=False, status="open")),
        card("bias_incidents_open", "Open bias incidents (now)", k["bias_incidents_open"],
             format_number(k["bias_incidents_open"]), "bias incidents not closed",
             target=c["bias_incidents_open"], fmt=format_number, link=reverse("compliance:incident_list")),
    ]


def build_charts(data: DashboardData) -> list[SafeString]:
    """The charts over the period's days, in the order the page shows them."""
    rows = data.series
    days = [dt.date.fromisoformat(row["day"]) for row in rows]

    def column(name: str) -> list[Any]:
        return [row[name] for row in rows]

    targets = data.targets
    return [
        charts.bar_chart(key="volume", title="Daily volume", days=days, series=[
            charts.Series("Auto-accepted", "c-auto", column("auto_accepted")),
            charts.Series("Routed to review", "c-routed", column("routed")),
        ]),
        charts.line_chart(key="override", title="Override rate", days=days, series=[
            charts.Series("Override rate", "c-override", column("override_rate")),
        ], target=targets["override_rate"], target_label="target"),
        charts.line_chart(key="accuracy", title="Accuracy: AI vs final decision", days=days, series=[
            charts.Series("AI", "c-ai", column("accuracy_ai")),
            charts.Series("Final decision", "c-final", column("accuracy_final")),
        ]),
        charts.line_chart(key="ttr", title="Time to resolution", days=days, kind="duration", series=[
            charts.Series("p50", "c-p50", column("time_to_resolution_p50_s")),
            charts.Series("p90", "c-p90", column("time_to_resolution_p90_s")),
        ], target=targets["time_to_resolution_p50_s"], target_label="p50 target"),
        charts.line_chart(key="agreement", title="Reviewer agreement", days=days, series=[
            charts.Series("Percent agreement", "c-agreement", column("agreement_percent")),
        ], target=targets["agreement_percent"], target_label="target"),
        charts.line_chart(key="queue", title="Queue depth at the end of the day", days=days, kind="count", series=[
            charts.Series("Open routed cases", "c-queue", column("queue_depth")),
        ]),
        charts.bar_chart(key="sla", title="SLA breaches", days=days, series=[
            charts.Series("SLA breaches", "c-sla", column("sla_breaches")),
        ]),
    ]


def _scope_of(request: HttpRequest) -> tuple[ScopeForm, KpiScope]:
    form = ScopeForm(request.GET)
    return form, form.scope()


class DashboardPage(RoleRequiredMixin, View):
    """All systems or one, over 7 / 30 / 90 days or custom dates: KPI cards, charts, reviewer table."""

    allowed_roles = KPI_PAGE_ROLES

    def get(self, request: HttpRequest) -> HttpResponse:
        form, scope = _scope_of(request)
        data = dashboard_data(scope)
        query = request.GET.copy()
        period_links = []
        for value, label in (("7", "7 days"), ("30", "30 days"), ("90", "90 days")):
            query["period"] = value
            for name in ("start", "end"):
                query.pop(name, None)
            period_links.append({"value": value, "label": label, "url": "?" + query.urlencode(),
                                 "current": form.is_valid() and form.cleaned_data["period"] == value})
        export_query = request.GET.urlencode()
        state = data.figures
        first_day, last_day = utc_day(scope.start), _last_day(scope)
        context: dict[str, Any] = {
            "form": form,
            "scope": scope,
            "first_day": first_day,
            "last_day": last_day,
            "data": data,
            "cards": kpi_cards(data),
            "charts": build_charts(data),
            "reviewers": reviewer_rows(scope, data.reviewers),
            "period_links": period_links,
            "current_period": form.cleaned_data["period"] if form.is_valid() else "30",
            "api_link": api_link(scope),
            "series_csv": reverse("dashboard:series_csv") + (f"?{export_query}" if export_query else ""),
            "reviewers_csv": reverse("dashboard:reviewers_csv") + (f"?{export_query}" if export_query else ""),
            "rollup_run_at": state.rollup_run_at,
            "now": timezone.now(),
        }
        context["undelivered_alerts"] = list(undelivered()[:10])
        context["monitoring_alerts"] = [
            alert for alert in recent_alerts(system=scope.system, since=first_day)
            if alert.day <= last_day
        ]
        context["monitoring_reference_days"] = REFERENCE_DAYS
        return render(request, "dashboard/dashboard.html", context)


def _csv_response(rows: list[dict[str, Any]], columns: list[str], filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    # The portal's one CSV writer: numbers stay numbers, formula-like text is defused.
    writer = csv_writer(response)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column) for column in columns])
    return response


def _filename(kind: str, scope: KpiScope) -> str:
    system = scope.system.slug if scope.system else "all-systems"
    return f"kpi-{kind}_{system}_{utc_day(scope.start).isoformat()}_{_last_day(scope).isoformat()}.csv"


SERIES_COLUMNS = [
    "day", "cases_total", "auto_accepted", "routed", "reviewed", "automation_rate", "override_rate", "evaluated",
    "accuracy_ai", "accuracy_final", "time_to_resolution_p50_s", "time_to_resolution_p90_s", "agreement_percent",
    "agreement_pairs", "sla_breaches", "queue_depth",
]
REVIEWER_COLUMNS = [
    "reviewer", "decisions", "approvals", "overrides", "escalations", "adjudications", "override_rate",
    "median_time_s", "gold_answered", "gold_accuracy", "agreement_pairs", "agreement", "agreement_kappa",
    "ai_agreement_shown", "ai_agreement_hidden", "automation_bias_gap",
]


class SeriesCsv(RoleRequiredMixin, View):
    """The daily KPI series of the dashboard's scope as CSV (fractions and seconds, as in the API)."""

    allowed_roles = KPI_PAGE_ROLES

    def get(self, request: HttpRequest) -> HttpResponse:
        _form, scope = _scope_of(request)
        return _csv_response(kpi_series(scope), SERIES_COLUMNS, _filename("series", scope))


class ReviewersCsv(RoleRequiredMixin, View):
    """The reviewer table of the dashboard's scope as CSV."""

    allowed_roles = KPI_PAGE_ROLES

    def get(self, request: HttpRequest) -> HttpResponse:
        _form, scope = _scope_of(request)
        return _csv_response(reviewer_table(scope), REVIEWER_COLUMNS, _filename("reviewers", scope))
