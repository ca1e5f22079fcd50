"""Evidence the portal produces itself, read live from its own records.

Each producer returns a plain, JSON-safe dict (``title``, ``summary``, ``ok``,
``data``) or ``None`` when the portal cannot produce that kind of evidence (yet):
KPI figures need the KPI module, bias audit results the fairness module. A
captured snapshot is this dict, hashed and stored with the obligation.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from datetime import date
from typing import Any

from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import verify_chain
from compliance.models import FundamentalRightsAssessment
from compliance.selectors import external
from incidents.models import Incident, IncidentStatus
from reviews.models import MIN_RETENTION_DAYS, AISystem, InterventionPoint, ReviewerProfile

EVIDENCE_TITLES: dict[str, str] = {
    "intervention_points": "Intervention points and routing rules (human oversight measures)",
    "audit_chain": "Audit chain verification and log retention",
    "reviewer_competence": "Reviewer qualifications and training records",
    "kpi_snapshot": "Oversight KPI snapshot",
    "bias_audits": "Bias audit results",
    "fria": "Fundamental rights impact assessment",
    "incident_register": "Incident register",
    "dossier": "Generated dossiers",
}


def intervention_points(system: AISystem) -> dict[str, Any]:
    """The Art. 14 measures as configured: where humans step in, and when a case goes to them."""
    points = list(InterventionPoint.objects.filter(system=system).order_by("slug"))
    rows: list[dict[str, Any]] = [
        {
            "slug": p.slug, "name": p.name, "stage": p.stage, "version": p.version,
            "confidence_below": p.confidence_below, "always_review_labels": list(p.always_review_labels or []),
            "high_stakes": list(p.high_stakes or []), "random_sample_rate": p.random_sample_rate,
            "reviewers_required": p.reviewers_required, "sla_seconds": p.sla_seconds,
            "on_sla_breach": p.on_sla_breach, "blind_review_rate": p.blind_review_rate, "gold_rate": p.gold_rate,
            "has_guidelines": bool(p.guidelines.strip()),
        }
        for p in points
    ]
    problems = []
    if not rows:
        problems.append("No intervention point: no case of this system is ever routed to a person.")
    if system.is_remote_biometric and any(r["reviewers_required"] < 2 for r in rows):
        problems.append("Annex III 1(a) needs two separate verifications (Art. 14(5)).")
    blind = any(r["blind_review_rate"] > 0 for r in rows)
    summary = (
        f"{len(rows)} intervention point(s); stop button: system is {system.status}; "
        f"automation-bias measurement (blind review) {'on' if blind else 'off'}."
    )
    return {
        "title": EVIDENCE_TITLES["intervention_points"], "summary": summary, "ok": not problems,
        "problems": problems,
        "data": {"system_status": system.status, "status_reason": system.status_reason, "points": rows},
    }


# The nightly verification (``audit.verify_nightly``) is fresh enough as evidence;
# verifying a million-event chain on a page load is not (it takes seconds).
VERIFICATION_MAX_AGE = dt.timedelta(hours=26)


def latest_chain_verification(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """The most recent recorded chain verification if fresh, else a verification run now.

    Returns ``{ok, events, head_hash, first_bad_seq, problem, checkpoints, ..., verified_at, source}``.
    """
    now = now or timezone.now()
    event = (
        AuditEvent.objects.filter(action="audit.verified", seq__isnull=False, at__gte=now - VERIFICATION_MAX_AGE)
        .exclude(payload=None)
        .order_by("-seq")
        .first()
    )
    if event is not None and event.payload is not None:  # payload=None is excluded above
        report = json.loads(event.payload).get("data") or {}
        if "ok" in report:
            return {**report, "verified_at": event.at.isoformat(), "source": f"recorded verification #{event.seq}"}
    return {**_report(verify_chain()), "verified_at": now.isoformat(), "source": "verified on request"}


def audit_chain(system: AISystem) -> dict[str, Any]:
    """Art. 12 / 19 / 26(6): the tamper-evident log verifies, and logs are kept at least six months."""
    result = latest_chain_verification()
    events = AuditEvent.objects.filter(system_id=system.pk, seq__isnull=False).count()
    retention_ok = system.retention_days >= MIN_RETENTION_DAYS
    problems = []
    if not result["ok"]:
        problems.append(f"Chain verification failed at event {result['first_bad_seq']}: {result['problem']}")
    if not retention_ok:
        problems.append("Retention shorter than six months.")
    summary = (
        f"Chain {'verified' if result['ok'] else 'BROKEN'} ({result['source']}, {result['verified_at'][:19]}Z): "
        f"{result['events']} events, head {(result['head_hash'] or '-')[:16]}; {events} events of this system; "
        f"logs kept {system.retention_days} days."
    )
    return {
        "title": EVIDENCE_TITLES["audit_chain"], "summary": summary, "ok": not problems, "problems": problems,
        "data": {**result, "system_events": events, "retention_days": system.retention_days},
    }


def _report(result: Any) -> dict[str, Any]:
    """The verification with its signed-checkpoint figures."""
    return dict(result.as_report())


def _training_row(record: Any, today: date) -> dict[str, Any]:
    valid = record.expires_at is None or record.expires_at >= today
    return {
        "title": record.title, "kind": record.kind, "completed_at": record.completed_at.isoformat(),
        "expires_at": record.expires_at.isoformat() if record.expires_at else None, "valid": valid,
        "system_specific": record.system_id is not None,
    }


def reviewer_competence(system: AISystem) -> dict[str, Any]:
    """Art. 4 / 26(2): who may review this system, their status and their training records."""
    today = timezone.localdate()
    profiles = (
        ReviewerProfile.objects.filter(qualifications=system)
        .select_related("user")
        .prefetch_related("training_records")
        .order_by("user__username")
    )
    reviewers = []
    for profile in profiles:
        records = [r for r in profile.training_records.all() if r.system_id in (None, system.pk)]
        reviewers.append({
            "username": profile.user.get_username(), "status": profile.status, "adjudicator": profile.adjudicator,
            "active": profile.is_active_reviewer,
            "trainings": [_training_row(r, today) for r in records],
            "valid_training": any(r.expires_at is None or r.expires_at >= today for r in records),
        })
    active = [r for r in reviewers if r["active"]]
    trained = [r for r in active if r["valid_training"]]
    problems = []
    if not active:
        problems.append("No active reviewer is qualified for this system.")
    elif len(trained) < len(active):
        problems.append(f"{len(active) - len(trained)} active reviewer(s) without a valid training record.")
    summary = (
        f"{len(active)} active qualified reviewer(s), {len(trained)} with valid training; "
        f"{sum(1 for r in active if r['adjudicator'])} adjudicator(s)."
    )
    return {
        "title": EVIDENCE_TITLES["reviewer_competence"], "summary": summary, "ok": not problems,
        "problems": problems, "data": {"reviewers": reviewers, "as_of": today.isoformat()},
    }


def fria(system: AISystem) -> dict[str, Any]:
    latest = FundamentalRightsAssessment.objects.filter(system=system).order_by("-version").first()
    if latest is None:
        return {"title": EVIDENCE_TITLES["fria"], "summary": "No FRIA saved yet.", "ok": False,
                "problems": ["No FRIA saved yet."], "data": {}}
    return {
        "title": EVIDENCE_TITLES["fria"],
        "summary": f"Version {latest.version} of {latest.created_at:%Y-%m-%d}"
                   + (f"; authority notified {latest.authority_notified_on}" if latest.authority_notified_on else ""),
        "ok": True, "problems": [],
        "data": {"version": latest.version, "created_at": latest.created_at.isoformat(),
                 "authority_notified_on": latest.authority_notified_on.isoformat()
                 if latest.authority_notified_on else None},
    }


def incident_register(system: AISystem) -> dict[str, Any]:
    now = timezone.now()
    incidents = list(Incident.objects.filter(system=system).order_by("-aware_at"))
    open_ = [i for i in incidents if i.status != IncidentStatus.CLOSED]
    overdue = [i for i in open_ if i.report_due_at and i.report_due_at < now
               and i.status not in (IncidentStatus.FULL_REPORT,)]
    problems = [f"{len(overdue)} incident report(s) overdue (Art. 73)."] if overdue else []
    return {
        "title": EVIDENCE_TITLES["incident_register"],
        "summary": f"{len(incidents)} incident(s), {len(open_)} open, {len(overdue)} overdue.",
        "ok": not problems, "problems": problems,
        "data": {"incidents": [
            {"id": i.pk, "kind": i.kind, "status": i.status, "aware_at": i.aware_at.isoformat(),
             "report_due_at": i.report_due_at.isoformat() if i.report_due_at else None}
            for i in incidents[:50]
        ]},
    }


def dossier(system: AISystem) -> dict[str, Any]:
    events = list(
        AuditEvent.objects.filter(system_id=system.pk, action="dossier.generated").order_by("-id")[:10]
    )
    rows = [{"at": e.at.isoformat(), "by": e.actor_name, "sha256": _payload_value(e, "sha256"),
             "format": _payload_value(e, "format")} for e in events]
    return {
        "title": EVIDENCE_TITLES["dossier"],
        "summary": f"Last generated {events[0].at:%Y-%m-%d %H:%M} UTC." if events else "Never generated.",
        "ok": bool(events), "problems": [] if events else ["No dossier generated yet."],
        "data": {"generated": rows},
    }


def _payload_value(event: AuditEvent, key: str) -> Any:
    try:
        return (json.loads(event.payload or "{}").get("data") or {}).get(key)
    except ValueError:
        return None


def kpi_snapshot(system: AISystem) -> dict[str, Any] | None:
    figures = external.system_kpis(system)
    if figures is None:
        return None
    return {"title": EVIDENCE_TITLES["kpi_snapshot"], "summary": external.kpi_summary_line(figures), "ok": True,
            "problems": [], "data": figures}


def bias_audits(system: AISystem) -> dict[str, Any] | None:
    audits = external.bias_audit_results(system)
    if audits is None:
        return None
    flagged = [a for a in audits if a.get("flagged")]
    return {
        "title": EVIDENCE_TITLES["bias_audits"],
        "summary": f"{len(audits)} bias audit(s), {len(flagged)} flagged." if audits else "No bias audit run yet.",
        "ok": bool(audits) and not flagged,
        "problems": ([] if audits else ["No bias audit run yet."]) + (
            [f"{len(flagged)} audit(s) breached a threshold."] if flagged else []),
        "data": {"audits": audits},
    }


PRODUCERS: dict[str, Callable[[AISystem], dict[str, Any] | None]] = {
    "intervention_points": intervention_points,
    "audit_chain": audit_chain,
    "reviewer_competence": reviewer_competence,
    "kpi_snapshot": kpi_snapshot,
    "bias_audits": bias_audits,
    "fria": fria,
    "incident_register": incident_register,
    "dossier": dossier,
}


def portal_evidence(system: AISystem, kind: str) -> dict[str, Any] | None:
    """The live evidence of ``kind`` for the system, or ``None`` when the portal cannot produce it."""
    producer = PRODUCERS.get(kind)
    return producer(system) if producer else None


class EvidenceCache:
    """Per page: each kind is produced once (chain verification walks the whole chain)."""

    def __init__(self, system: AISystem) -> None:
        self.system = system
        self._cache: dict[str, dict[str, Any] | None] = {}

    def get(self, kind: str) -> dict[str, Any] | None:
        if not kind:
            return None
        if kind not in self._cache:
            self._cache[kind] = portal_evidence(self.system, kind)
        return self._cache[kind]
