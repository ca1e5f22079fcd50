"""The dossier's evidence that oversight works in operation (issue 13 item 7).

Read live, from the floors below: the automation-bias gap and gold accuracy per
reviewer and intervention point (``quality``), the stop-button log and reopen
counts (the audit ledger), the Art. 12(3) record of biometric use and the legal
holds (``records``), and the post-market monitoring alerts (``dashboard``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Q

from audit.models import AuditEvent
from dashboard.monitoring import recent_alerts
from quality.selectors import oversight_by_reviewer_point
from records.selectors import active_legal_holds, biometric_use_summary, biometric_uses
from reviews.models import AISystem, Case

MAX_LOG_ROWS = 100
MAX_ALERTS = 100


def _halt_log(system: AISystem) -> list[dict[str, Any]]:
    events = AuditEvent.objects.filter(system_id=system.pk, action__in=("system.halted", "system.resumed"))
    return [
        {"at": e.at, "action": "halted" if e.action == "system.halted" else "resumed",
         "by": e.actor_name or e.actor_type, "reason": e.reason}
        for e in events.order_by("-at", "-id")[:MAX_LOG_ROWS]
    ]


def _reopens(system: AISystem) -> dict[str, int]:
    events = AuditEvent.objects.filter(system_id=system.pk, action="case.reopened").aggregate(
        reopens=Count("id"), cases=Count("case_id", distinct=True))
    return {"reopens": events["reopens"], "cases": events["cases"]}


def _biometric(system: AISystem, now: dt.datetime) -> list[dict[str, Any]]:
    """Each period of use with how many searches it saw and how many produced a match (Art. 12(3))."""
    rows = []
    non_match = system.non_match_label
    for use in biometric_uses(system=system):
        cases = Case.objects.filter(system=system, is_gold=False, received_at__gte=use.started_at,
                                    received_at__lt=use.ended_at or now)
        counts = cases.aggregate(searches=Count("id"), matches=Count("id", filter=~Q(prediction_label=non_match))
                                 if non_match else Count("id"))
        rows.append({**biometric_use_summary(use), **counts})
    return rows


def oversight_evidence(system: AISystem, *, now: dt.datetime) -> dict[str, Any]:
    """The dossier context keys of this module."""
    return {
        "reviewer_points": oversight_by_reviewer_point(system=system),
        "halt_log": _halt_log(system),
        "reopens": _reopens(system),
        "biometric_record": _biometric(system, now) if system.is_remote_biometric else None,
        "legal_holds": list(active_legal_holds(system=system)),
        "monitoring_alerts": recent_alerts(system=system, limit=MAX_ALERTS),
    }
