"""Figures other apps compute (KPIs, bias audits), read through their own selectors.

The dossier and the obligations' evidence show KPI figures and bias audit results
only as those apps compute them: never recomputed here, never made up. KPI figures
use the contract's shape (api-v1 ``GET /kpis/``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Min
from django.utils import timezone

from hitl_portal.formatting import format_percent, format_pp
from reviews.models import AISystem, Case


def system_kpis(system: AISystem, *, now: dt.datetime | None = None) -> dict[str, Any] | None:
    """The system's KPI figures since its first case, from the one KPI module.

    The period starts at the UTC day of the earliest case (or of the registration)
    and ends now, so the dossier's figures are those of the dashboard for that period.
    """
    from dashboard import selectors  # the KPI module reads compliance's incidents: import on use

    now = now or timezone.now()
    first = Case.objects.filter(system=system).aggregate(first=Min("received_at"))["first"]
    start_at = min(first, system.created_at) if first else system.created_at
    start = start_at.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    figures = selectors.kpis(selectors.KpiScope(start=start, end=now, system=system), now=now)
    figures["period"] = f"{start:%Y-%m-%d} to {now:%Y-%m-%d %H:%M} UTC"
    return figures


def _num(value: Any, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def kpi_rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    """The contract's KPI figures as (label, shown value): rates in %, differences in percentage points."""
    agreement = figures.get("agreement") or {}
    ttr = figures.get("time_to_resolution_s") or {}
    return [
        ("Cases", str(figures.get("cases_total", "—"))),
        ("Auto-accepted", str(figures.get("auto_accepted", "—"))),
        ("Reviewed", str(figures.get("reviewed", "—"))),
        ("Automation rate", format_percent(figures.get("automation_rate"))),
        ("Override rate", format_percent(figures.get("override_rate"))),
        ("Accuracy of the AI", format_percent(figures.get("accuracy_ai"))),
        ("Accuracy of final decisions", format_percent(figures.get("accuracy_final"))),
        ("Accuracy lift", format_pp(figures.get("accuracy_lift"))),
        ("Error reduction rate", format_percent(figures.get("error_reduction_rate"))),
        ("Reviewer agreement (percent)", format_percent(agreement.get("percent"))),
        ("Reviewer agreement (kappa)", _num(agreement.get("kappa"))),
        ("Reviewer agreement (alpha)", _num(agreement.get("alpha"))),
        ("Time to resolution p50", "—" if ttr.get("p50") is None else f"{ttr['p50']:.1f} s"),
        ("Time to resolution p90", "—" if ttr.get("p90") is None else f"{ttr['p90']:.1f} s"),
        ("SLA breaches", str(figures.get("sla_breaches", "—"))),
        ("Queue depth", str(figures.get("queue_depth", "—"))),
        ("Open bias incidents", str(figures.get("bias_incidents_open", "—"))),
        *_kind_rows(figures.get("by_kind") or []),
    ]


def _kind_rows(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Generation and action points (issue 14): what people let through, changed or stopped."""
    shown: list[tuple[str, str]] = []
    for row in rows:
        where = row["intervention_point"]
        if row["kind"] == "generation":
            categories = ", ".join(f"{name} {count}" for name, count in row["rejection_categories"].items())
            shown += [
                (f"Texts at {where}: decided by a person", str(row["human_decided"])),
                (f"Texts at {where}: approved / edited / rejected",
                 f"{format_percent(row['approval_rate'])} / {format_percent(row['edit_rate'])} / "
                 f"{format_percent(row['rejection_rate'])}"),
                (f"Texts at {where}: mean edit distance", _num(row["mean_edit_distance"])),
                (f"Texts at {where}: rejection categories", categories or "—"),
            ]
        else:
            shown += [
                (f"Tool calls at {where}: decided by a person", str(row["human_decided"])),
                (f"Tool calls at {where}: approved / modified / denied",
                 f"{row['approvals']} / {row['modifications']} / {row['denials']}"),
                (f"Tool calls at {where}: expired unanswered", str(row["expired"])),
            ]
    return shown


def kpi_summary_line(figures: dict[str, Any]) -> str:
    return (f"{figures.get('cases_total', 0)} cases; automation {format_percent(figures.get('automation_rate'))}, "
            f"override {format_percent(figures.get('override_rate'))}, "
            f"accuracy lift {format_pp(figures.get('accuracy_lift'))}.")


MAX_AUDITS = 20


def bias_audit_results(system: AISystem) -> list[dict[str, Any]] | None:
    """The system's finished bias audits, newest first, from the fairness module.

    Each as the fairness API shows it, plus the final (human-validated) decisions'
    three headline metrics at the top level for tables.
    """
    from fairness import selectors  # fairness files incidents in compliance: import on use

    audits = selectors.audits_visible(system_slug=system.slug).filter(status="done")[:MAX_AUDITS]
    rows = []
    for audit in audits:
        data = selectors.audit_representation(audit)
        final = (data.get("metrics") or {}).get("final") or {}
        ai = (data.get("metrics") or {}).get("ai") or {}
        rows.append({
            **data,
            "period": f"{data['from']:%Y-%m-%d} to {data['to']:%Y-%m-%d}" if data.get("from") else "",
            "disparate_impact_ratio": final.get("disparate_impact_ratio"),
            "demographic_parity_difference": final.get("demographic_parity_difference"),
            "equalized_odds_difference": final.get("equalized_odds_difference"),
            "ai_disparate_impact_ratio": ai.get("disparate_impact_ratio"),
        })
    return rows
