"""Generating an Art. 73 incident report draft (recorded with its SHA-256, like the dossier)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.services import record_event
from compliance.incident_report import RenderedReport, build_incident_report
from incidents.models import Incident


@transaction.atomic
def incident_report_generate(*, actor: Any, incident: Incident) -> RenderedReport:
    """Build the report draft from live data and record ``incident.report_drafted`` with its hash."""
    generated_by = actor.get_username() if actor is not None else "system"
    report = build_incident_report(incident, generated_by=generated_by)
    record_event(
        "incident.report_drafted", actor=actor, obj=incident, system_id=incident.system_id,
        case_id=incident.case_id,
        data={"sha256": report.sha256, "bytes": len(report.content), "filename": report.filename},
    )
    return report
