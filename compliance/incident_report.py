"""An Art. 73 serious-incident report draft for the market-surveillance authority, built from one incident.

A draft, not a filing: the portal fills in what it knows (the system, the
incident's facts and clock, the linked case, the audit trail of the incident,
the system's recent monitoring alerts and oversight configuration) and names
what only people can state (the causal link, the persons affected, the
corrective action), so that the officer completes and sends it. The report is
rendered like the dossier (HTML → WeasyPrint PDF); recording its generation
with the SHA-256 is ``compliance.services.incident_report.incident_report_generate``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from compliance.dossier import render_pdf
from compliance.selectors import evidence as portal
from dashboard.monitoring import recent_alerts
from incidents.models import Incident, IncidentKind
from incidents.selectors import incident_clock, incident_events
from reviews.models import Case

# Which paragraph of Art. 73 sets the deadline, by kind (the register's clocks follow the same table).
ART73_PARAGRAPH: dict[str, str] = {
    IncidentKind.DEATH: "Art. 73(4): death of a person, at the latest 10 days after becoming aware",
    IncidentKind.CRITICAL_INFRASTRUCTURE: "Art. 73(3): serious and irreversible disruption of critical "
                                          "infrastructure, at the latest 2 days after becoming aware",
    IncidentKind.WIDESPREAD_INFRINGEMENT: "Art. 73(3): widespread infringement, at the latest 2 days after "
                                          "becoming aware",
    IncidentKind.SERIOUS_HARM: "Art. 73(2): serious incident, at the latest 15 days after becoming aware",
}
MAX_ALERTS = 20


@dataclass(frozen=True)
class RenderedReport:
    content: bytes
    filename: str
    sha256: str
    context: dict[str, Any]


def incident_report_context(incident: Incident, *, generated_by: str, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    system = incident.system
    clock = incident_clock(incident, now=now)
    model_versions: list[str] = []
    if system is not None:
        model_versions = list(Case.objects.filter(system=system).exclude(model_version="")
                              .values_list("model_version", flat=True).distinct().order_by("model_version")[:20])
    return {
        "incident": incident,
        "system": system,
        "case": incident.case,
        "clock": clock,
        "paragraph": ART73_PARAGRAPH.get(incident.kind),
        "model_versions": model_versions,
        "events": incident_events(incident),
        "alerts": recent_alerts(system=system, limit=MAX_ALERTS) if system is not None else [],
        "oversight": portal.intervention_points(system) if system is not None else None,
        "generated_at": now,
        "generated_by": generated_by,
    }


def build_incident_report(incident: Incident, *, generated_by: str) -> RenderedReport:
    context = incident_report_context(incident, generated_by=generated_by)
    html = render_to_string("compliance/incident_report.html", context).encode("utf-8")
    content = render_pdf(html)
    stamp = context["generated_at"].strftime("%Y%m%dT%H%M%SZ")
    return RenderedReport(content=content, filename=f"art73-report-incident-{incident.pk}-{stamp}.pdf",
                          sha256=hashlib.sha256(content).hexdigest(), context=context)
