"""The human-oversight / Annex IV dossier of one system, built from live data (HTML and PDF).

``dossier_context`` reads everything the document shows; ``render_html`` and
``render_pdf`` turn it into bytes. Recording the generation (with the document's
SHA-256) is the job of ``compliance.services.dossier.dossier_generate``, which
every download goes through.

Nothing here is made up: KPI figures and bias audit results appear only as the
KPI and fairness modules compute them; without them the section says what is
measured and where to look.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from audit.selectors import latest_checkpoint, verify_chain
from compliance.dossier_oversight import oversight_evidence
from compliance.models import Framework, Requirement
from compliance.selectors import evidence as portal
from compliance.selectors import external
from compliance.selectors.catalog import current_catalog
from compliance.selectors.explanations import explanation_kpis
from compliance.selectors.fria import fria_latest, fria_required
from compliance.selectors.obligations import obligation_list, obligations_progress
from incidents.models import Incident
from incidents.selectors import incident_clock
from records.selectors import two_person_evidence
from reviews.models import AISystem, Case, InterventionPoint

DOSSIER_FORMATS = ("pdf", "html")
MAX_HISTORY_ROWS = 50
MAX_MODEL_VERSIONS = 20

# What the oversight KPIs measure (PRODUCT.md "KPIs"): shown with the figures, or
# instead of them where the KPI module is not available.
KPI_DEFINITIONS: list[tuple[str, str]] = [
    ("Automation rate", "auto-accepted cases / all cases (review rate = routed / all)."),
    ("Override rate", "reviewed cases whose final label differs from the AI label / reviewed cases."),
    ("Accuracy of AI and of final decisions", "on cases with ground truth reported by the integration; accuracy "
                                              "lift = final − AI; error reduction = (AI errors − final errors) / "
                                              "AI errors."),
    ("Reviewer agreement", "percent agreement and a chance-corrected statistic (Cohen's κ, Fleiss' κ, "
                           "Krippendorff's α); target above 85 %."),
    ("Time to resolution", "routed case received → final decision, p50 and p90; SLA breaches."),
    ("Queue and incidents", "queue depth, oldest waiting case, open bias incidents, gold accuracy per reviewer, "
                            "automation-bias gap (agreement with the AI when shown − when hidden)."),
]


@dataclass(frozen=True)
class RenderedDossier:
    content: bytes
    content_type: str
    filename: str
    sha256: str
    context: dict[str, Any]


def _clock(incident: Incident, now: datetime) -> dict[str, Any]:
    """The Art. 73 reporting clock of an incident, as the register computes it."""
    clock = incident_clock(incident, now=now)
    due = f" (due {clock.due_at:%Y-%m-%d %H:%M} UTC)" if clock.due_at else ""
    return {"label": clock.text + due, "overdue": clock.state == "overdue"}


def _history(system: AISystem) -> list[dict[str, Any]]:
    """Lifecycle changes (Annex IV 6): the system's registration and its rules versions."""
    rows: list[dict[str, Any]] = []
    for record in system.history.select_related("history_user").order_by("-history_date")[:MAX_HISTORY_ROWS]:
        changed = []
        previous = record.prev_record
        if previous is not None:
            delta = record.diff_against(previous)
            changed = [c.field for c in delta.changes if c.field not in ("updated_at",)]
        rows.append({
            "at": record.history_date, "by": record.history_user.get_username() if record.history_user else "system",
            "what": "registered" if record.history_type == "+" else ("changed: " + ", ".join(changed) if changed
                                                                     else "saved"),
            "object": "system",
        })
    points = InterventionPoint.history.filter(system_id=system.pk).select_related("history_user")
    for record in points.order_by("-history_date")[:MAX_HISTORY_ROWS]:
        rows.append({
            "at": record.history_date, "by": record.history_user.get_username() if record.history_user else "system",
            "what": f"intervention point {record.slug}: rules version {record.version}", "object": "point",
        })
    rows.sort(key=lambda r: r["at"], reverse=True)
    return rows[:MAX_HISTORY_ROWS]


def dossier_context(system: AISystem, *, generated_by: str, now: datetime | None = None) -> dict[str, Any]:
    """Everything the dossier shows, read live."""
    now = now or timezone.now()
    catalog = current_catalog()
    sections = {
        r.ref.rsplit(".", 1)[-1]: r.title.split(": ", 1)[-1]
        for r in Requirement.objects.filter(catalog=catalog, group="Annex IV", level="section")
    }
    obligations = list(obligation_list(system=system, include_retired=False))
    by_framework = {fw: obligations_progress(system=system, framework=fw) for fw in Framework.values}
    incidents = list(Incident.objects.filter(system=system).select_related("case").order_by("-aware_at"))
    chain = verify_chain()
    kpis = external.system_kpis(system, now=now)
    bias = external.bias_audit_results(system)
    model_versions = list(
        Case.objects.filter(system=system).exclude(model_version="").values_list("model_version", flat=True)
        .distinct().order_by("model_version")[:MAX_MODEL_VERSIONS]
    )
    rationale = system.classification_rationale or {}
    return {
        "system": system,
        "generated_at": now,
        "generated_by": generated_by,
        "catalog": catalog,
        "sections": sections,
        "rationale": rationale,
        "steps": rationale.get("steps") or [],
        "model_versions": model_versions,
        "oversight": portal.intervention_points(system),
        "two_person": two_person_evidence(system=system) if system.is_remote_biometric else None,
        "competence": portal.reviewer_competence(system),
        "kpis": kpis,
        "kpi_rows": external.kpi_rows(kpis) if kpis is not None else [],
        "kpi_definitions": KPI_DEFINITIONS,
        "bias_audits": bias,
        "incidents": [{"incident": i, "clock": _clock(i, now)} for i in incidents],
        "explanations": explanation_kpis(system=system),
        "obligations": obligations,
        "progress": obligations_progress(system=system),
        "progress_by_framework": [(Framework(fw).label, p) for fw, p in by_framework.items() if p.total],
        "risk_obligations": [o for o in obligations if o.requirement.group == "Art. 9"],
        "conformity_obligations": [o for o in obligations if o.requirement.group in ("Art. 43", "Art. 49")],
        "monitoring_obligations": [o for o in obligations if o.requirement.group in ("Art. 72", "Art. 73")],
        "standards_obligations": [o for o in obligations if o.requirement.framework != Framework.EU_AI_ACT],
        "fria": fria_latest(system=system),
        "fria_required": fria_required(system),
        "history": _history(system),
        "chain": chain,
        "checkpoint": latest_checkpoint(),
        **oversight_evidence(system, now=now),
    }


def render_html(context: dict[str, Any]) -> bytes:
    return render_to_string("compliance/dossier/document.html", context).encode("utf-8")


def render_pdf(html: bytes) -> bytes:
    # Imported here: WeasyPrint loads Pango at import, which pages that never print need not pay for.
    from weasyprint import HTML

    return HTML(string=html.decode("utf-8")).write_pdf()


def build_dossier(system: AISystem, *, fmt: str, generated_by: str) -> RenderedDossier:
    """Render the dossier in ``fmt`` (``pdf`` or ``html``) with its SHA-256."""
    if fmt not in DOSSIER_FORMATS:
        raise ValueError(f"unknown dossier format {fmt!r}")
    context = dossier_context(system, generated_by=generated_by)
    html = render_html(context)
    stamp = context["generated_at"].strftime("%Y%m%dT%H%M%SZ")
    if fmt == "pdf":
        content, content_type = render_pdf(html), "application/pdf"
    else:
        content, content_type = html, "text/html; charset=utf-8"
    return RenderedDossier(
        content=content, content_type=content_type, filename=f"dossier-{system.slug}-{stamp}.{fmt}",
        sha256=hashlib.sha256(content).hexdigest(), context=context,
    )
