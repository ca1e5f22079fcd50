"""Post-market monitoring (Art. 14(4)(a), Art. 26(5), Art. 72): per intervention point and day.

Once a day (beat, ``dashboard.run_monitoring``; or ``manage.py run_monitoring``)
each point's finished day is compared with the reference window before it
(``REFERENCE_DAYS``) on six figures:

* ``override_rate``: share of the day's reviewed cases whose final label differs
  from the AI's, minus the reference window's share (a spike, in fraction points);
* ``confidence_psi``: population stability index of the AI's confidences (ten
  equal bins on [0, 1]) of the day against the reference window — the usual
  reading is < 0.1 stable, 0.1–0.25 a shift worth a look, > 0.25 a real change;
* ``model_version``: cases of the day carry a ``model_version`` the point never
  saw before (value: how many cases);
* ``agreement``: percent agreement on multi-review cases, reference minus day (a drop);
* ``gold_accuracy``: share of gold answers matching the gold label, reference minus day;
* ``queue_age``: the age of the oldest routed case still open at the end of the
  day, as a multiple of the reference days' mean (floored at one hour so an
  empty queue before does not make every wait infinite).

A figure past its point's threshold (``MonitoringThreshold``, else
``DEFAULT_THRESHOLDS``) becomes a ``MonitoringAlert`` (one per point, metric and
day: the run is idempotent), a ``monitoring.alert`` audit event and a
notification to the compliance officers and managers; a critical one also files
a ``quality`` incident. Figures on too few cases (``MIN_SAMPLES``) are not judged:
a rate on five cases is noise, and an alert nobody can trust trains people to
ignore alerts.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Min, Q
from django.urls import reverse
from django.utils import timezone

from audit.services import record_event
from dashboard.models import MonitoringAlert, MonitoringMetric, MonitoringSeverity, MonitoringThreshold
from hitl_portal.models import NotificationKind
from hitl_portal.notifications import notify
from hitl_portal.roles import COMPLIANCE_OFFICER, MANAGER
from reviews.models import Case, CaseStatus, Decision, DecisionOutcome, InterventionPoint, Resolution

__all__ = [
    "DEFAULT_THRESHOLDS",
    "REFERENCE_DAYS",
    "Finding",
    "monitoring_run",
    "point_findings",
    "psi",
    "recent_alerts",
]

REFERENCE_DAYS = 14
PSI_BINS = 10
# An empty bin would make the PSI infinite; a small floor is the standard fix.
PSI_FLOOR = 1e-4
# (warning, critical); critical None = never critical.
DEFAULT_THRESHOLDS: dict[str, tuple[float, float | None]] = {
    MonitoringMetric.OVERRIDE_RATE: (0.10, 0.25),
    MonitoringMetric.CONFIDENCE_PSI: (0.10, 0.25),
    MonitoringMetric.MODEL_VERSION: (1.0, None),
    MonitoringMetric.AGREEMENT: (0.10, 0.25),
    MonitoringMetric.GOLD_ACCURACY: (0.10, 0.25),
    MonitoringMetric.QUEUE_AGE: (2.0, 4.0),
}
# Fewest observations on the day (and in the reference window) before a figure is judged.
MIN_SAMPLES: dict[str, int] = {
    MonitoringMetric.OVERRIDE_RATE: 20,
    # The PSI of two samples of one distribution is about χ²(bins − 1) · (1/n + 1/m), i.e.
    # 9 · (1/n + 1/m) on average: 0.19 with 50 cases (a false "shift" every day), 0.05 with 200.
    MonitoringMetric.CONFIDENCE_PSI: 200,
    MonitoringMetric.AGREEMENT: 10,
    MonitoringMetric.GOLD_ACCURACY: 10,
}
QUEUE_AGE_FLOOR_HOURS = 1.0


@dataclass(frozen=True)
class Finding:
    """A figure past its warning threshold (before it is stored)."""

    metric: str
    value: float
    reference: float | None
    severity: str
    message: str


def psi(current: Sequence[float], reference: Sequence[float], *, bins: int = PSI_BINS) -> float:
    """Population stability index of two samples of values in [0, 1]: Σ (c − r) · ln(c / r) over equal bins."""
    def shares(values: Sequence[float]) -> list[float]:
        counts = [0] * bins
        for value in values:
            counts[min(int(value * bins), bins - 1)] += 1
        total = len(values)
        return [max(count / total, PSI_FLOOR) for count in counts]

    return sum((c - r) * math.log(c / r) for c, r in zip(shares(current), shares(reference), strict=True))


def _bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def _thresholds(point: InterventionPoint) -> dict[str, tuple[float, float | None]]:
    chosen = dict(DEFAULT_THRESHOLDS)
    for row in MonitoringThreshold.objects.filter(intervention_point=point):
        chosen[row.metric] = (row.warning, row.critical)
    return chosen


def _severity(excess: float, limits: tuple[float, float | None]) -> str | None:
    warning, critical = limits
    if critical is not None and excess >= critical:
        return MonitoringSeverity.CRITICAL
    if excess >= warning:
        return MonitoringSeverity.WARNING
    return None


def _live_cases(point: InterventionPoint, since: dt.datetime, until: dt.datetime) -> Any:
    return Case.objects.filter(intervention_point=point, is_gold=False, received_at__gte=since,
                               received_at__lt=until)


def _override_rate(point: InterventionPoint, since: dt.datetime, until: dt.datetime) -> tuple[float | None, int]:
    reviewed = _live_cases(point, since, until).filter(
        resolution__in=(Resolution.REVIEWED, Resolution.ADJUDICATED), prediction_label__isnull=False,
    ).aggregate(n=Count("id"), changed=Count("id", filter=~Q(final_label=F("prediction_label"))))
    n = reviewed["n"]
    return (reviewed["changed"] / n if n else None), n


def _confidences(point: InterventionPoint, since: dt.datetime, until: dt.datetime) -> list[float]:
    return list(_live_cases(point, since, until).filter(prediction_confidence__isnull=False)
                .values_list("prediction_confidence", flat=True))


def _agreement(point: InterventionPoint, since: dt.datetime, until: dt.datetime) -> tuple[float | None, int]:
    from quality.selectors import live_agreement

    overall = live_agreement(since=since, until=until, point=point)["overall"]
    return overall["percent"], overall["units"] or 0


def _gold_accuracy(point: InterventionPoint, since: dt.datetime, until: dt.datetime) -> tuple[float | None, int]:
    """First-round gold answers given in the window on this point's gold copies (escalations are no answer)."""
    rows = Decision.objects.filter(
        case__intervention_point=point, case__is_gold=True, round=1, is_adjudication=False,
        decided_at__gte=since, decided_at__lt=until,
    ).exclude(outcome=DecisionOutcome.ESCALATE).values_list("label", "case__gold_label")
    answers = list(rows)
    if not answers:
        return None, 0
    return sum(1 for label, gold in answers if label == gold) / len(answers), len(answers)


def _oldest_open_hours(point: InterventionPoint, end: dt.datetime) -> float:
    """Age at ``end`` of the oldest routed case received before it and not decided by then (0: none waiting)."""
    oldest = Case.objects.filter(intervention_point=point, is_gold=False, routed=True, received_at__lt=end).filter(
        Q(decided_at__isnull=True, status__in=(CaseStatus.QUEUED, CaseStatus.CLAIMED, CaseStatus.ESCALATED))
        | Q(decided_at__gte=end)
    ).aggregate(oldest=Min("received_at"))["oldest"]
    return 0.0 if oldest is None else (end - oldest).total_seconds() / 3600


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def point_findings(point: InterventionPoint, day: dt.date) -> list[Finding]:
    """The figures of ``point`` on ``day`` that pass their warning threshold (pure reads)."""
    limits = _thresholds(point)
    start, end = _bounds(day)
    ref_start = start - dt.timedelta(days=REFERENCE_DAYS)
    findings: list[Finding] = []

    def judge(metric: str, excess: float, value: float, reference: float | None, message: str) -> None:
        severity = _severity(excess, limits[metric])
        if severity:
            findings.append(Finding(metric, value, reference, severity, message))

    value, n = _override_rate(point, start, end)
    reference, n_ref = _override_rate(point, ref_start, start)
    minimum = MIN_SAMPLES[MonitoringMetric.OVERRIDE_RATE]
    if value is not None and reference is not None and n >= minimum and n_ref >= minimum:
        judge(MonitoringMetric.OVERRIDE_RATE, value - reference, value, reference,
              f"Override rate {_pct(value)} on {n} reviewed cases against {_pct(reference)} "
              f"in the {REFERENCE_DAYS} days before.")

    current, ref = _confidences(point, start, end), _confidences(point, ref_start, start)
    minimum = MIN_SAMPLES[MonitoringMetric.CONFIDENCE_PSI]
    if len(current) >= minimum and len(ref) >= minimum:
        index = psi(current, ref)
        judge(MonitoringMetric.CONFIDENCE_PSI, index, index, None,
              f"The AI's confidence distribution shifted: PSI {index:.3f} over {len(current)} cases against "
              f"{len(ref)} in the {REFERENCE_DAYS} days before (0.1 is a shift worth a look, 0.25 a real change).")

    seen_before = set(Case.objects.filter(intervention_point=point, received_at__lt=start)
                      .values_list("model_version", flat=True).distinct())
    if seen_before:  # the first day of a point has nothing to be new against
        new = dict(_live_cases(point, start, end).exclude(model_version__in=seen_before)
                   .values_list("model_version").annotate(n=Count("id")).order_by("model_version"))
        if new:
            names = ", ".join(repr(name) for name in new)
            count = float(sum(new.values()))
            judge(MonitoringMetric.MODEL_VERSION, count, count, None,
                  f"New model version {names} on {int(count)} cases: a changed model needs its oversight "
                  f"settings (thresholds, sampling) checked.")

    for metric, figure, noun in ((MonitoringMetric.AGREEMENT, _agreement, "multi-review cases"),
                                 (MonitoringMetric.GOLD_ACCURACY, _gold_accuracy, "gold answers")):
        value, n = figure(point, start, end)
        reference, n_ref = figure(point, ref_start, start)
        minimum = MIN_SAMPLES[metric]
        if value is not None and reference is not None and n >= minimum and n_ref >= minimum:
            label = MonitoringMetric(metric).label.split(" drop")[0]
            judge(metric, reference - value, value, reference,
                  f"{label} fell to {_pct(value)} on {n} {noun} from {_pct(reference)} "
                  f"in the {REFERENCE_DAYS} days before.")

    age = _oldest_open_hours(point, end)
    if age > 0:
        ref_ages = [_oldest_open_hours(point, end - dt.timedelta(days=back)) for back in range(1, REFERENCE_DAYS + 1)]
        reference = sum(ref_ages) / len(ref_ages)
        ratio = age / max(reference, QUEUE_AGE_FLOOR_HOURS)
        judge(MonitoringMetric.QUEUE_AGE, ratio, age, reference,
              f"The oldest waiting case was {age:.1f} h old at the end of the day, {ratio:.1f}× the "
              f"{REFERENCE_DAYS}-day mean of {reference:.1f} h.")
    return findings


@transaction.atomic
def _raise(point: InterventionPoint, day: dt.date, finding: Finding) -> MonitoringAlert | None:
    alert, created = MonitoringAlert.objects.get_or_create(
        intervention_point=point, metric=finding.metric, day=day,
        defaults={"system_id": point.system_id, "value": finding.value, "reference": finding.reference,
                  "severity": finding.severity, "message": finding.message},
    )
    if not created:
        return None
    system = point.system
    subject = f"{finding.severity.title()}: {MonitoringMetric(finding.metric).label} on {system.slug}/{point.slug}"
    record_event("monitoring.alert", actor=None, obj=alert, system_id=point.system_id, data={
        "point": point.slug, "metric": finding.metric, "day": day.isoformat(), "value": finding.value,
        "reference": finding.reference, "severity": finding.severity,
    })
    link = reverse("dashboard:index") + f"?system={system.slug}#monitoring"
    notify(kind=NotificationKind.MONITORING, subject=f"{subject} ({day.isoformat()})", body=finding.message,
           link=link, roles=(COMPLIANCE_OFFICER, MANAGER), severity=finding.severity,
           dedupe_key=f"monitoring:{point.pk}:{finding.metric}:{day.isoformat()}")
    if finding.severity == MonitoringSeverity.CRITICAL:
        from incidents.services import incident_create

        alert.incident = incident_create(
            actor=None, system=system, kind="other", aware_at=timezone.now(), source="quality",
            source_ref=f"monitoring:{alert.pk}", title=subject[:200],
            description=f"Post-market monitoring of {system.name}, point {point.name}, on {day.isoformat()}: "
                        f"{finding.message}",
        )
        alert.save(update_fields=["incident"])
    return alert


def monitoring_run(*, day: dt.date | None = None,
                   points: Iterable[InterventionPoint] | None = None) -> list[MonitoringAlert]:
    """Judge every point (or ``points``) on ``day`` (yesterday, UTC, by default); returns the new alerts.

    Idempotent: a finding already stored for its point, metric and day is not raised again.
    """
    day = day or (timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=1))
    chosen = points if points is not None else InterventionPoint.objects.select_related("system").order_by("pk")
    raised = []
    for point in chosen:
        for finding in point_findings(point, day):
            alert = _raise(point, day, finding)
            if alert is not None:
                raised.append(alert)
    return raised


def recent_alerts(*, system: Any = None, since: dt.date | None = None, limit: int = 50) -> list[MonitoringAlert]:
    """The newest alerts (of one system, from ``since``) for the dashboard panel and the dossier."""
    alerts = MonitoringAlert.objects.select_related("intervention_point", "system", "incident")
    if system is not None:
        alerts = alerts.filter(system=system)
    if since is not None:
        alerts = alerts.filter(day__gte=since)
    return list(alerts.order_by("-day", "-id")[:limit])
