"""Post-market monitoring: PSI shifts, new model versions, override spikes, queue age; alerts, audit, incidents."""

from __future__ import annotations

import datetime as dt
import io
import math

import pytest
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEvent
from dashboard.models import MonitoringAlert, MonitoringThreshold
from dashboard.monitoring import REFERENCE_DAYS, monitoring_run, psi
from hitl_portal.models import Notification, NotificationRecipient
from incidents.models import Incident
from reviews.models import Case, CaseStatus, InterventionPoint, Resolution
from tests.dashboard.kpi_data import make_point

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 11, 20)
UTC = dt.UTC


def spread(n: int, low: float, high: float) -> list[float]:
    """``n`` confidences evenly over [low, high]: the same shape every day, so a stable day has PSI ≈ 0."""
    return [low + (high - low) * (i + 0.5) / n for i in range(n)]


def inject(point: InterventionPoint, day: dt.date, confidences: list[float], *, version: str = "v1",
           reviewed_overrides: int | None = None) -> None:
    """Cases received on ``day``; auto-accepted, or reviewed with ``reviewed_overrides`` of them overridden."""
    start = dt.datetime.combine(day, dt.time(8), tzinfo=UTC)
    rows = []
    for i, confidence in enumerate(confidences):
        at = start + dt.timedelta(seconds=30 * i)
        reviewed = reviewed_overrides is not None
        final = "approve"
        if reviewed and i < reviewed_overrides:
            final = "reject"
        rows.append(Case(
            system=point.system, intervention_point=point, external_id=f"{day}-{point.pk}-{i}", input={},
            prediction_label="approve", prediction_confidence=confidence, model_version=version,
            status=CaseStatus.DECIDED if reviewed else CaseStatus.AUTO_ACCEPTED, routed=reviewed,
            resolution=Resolution.REVIEWED if reviewed else Resolution.AUTO_ACCEPTED, final_label=final,
            received_at=at, decided_at=at + dt.timedelta(minutes=5),
        ))
    Case.objects.bulk_create(rows)


def reference_window(point: InterventionPoint, *, per_day: int = 20, **kwargs: object) -> None:
    for back in range(1, REFERENCE_DAYS + 1):
        inject(point, DAY - dt.timedelta(days=back), spread(per_day, 0.6, 0.99), **kwargs)


@pytest.fixture
def officer(make_user):
    return make_user("compliance_officer")


def test_psi_is_zero_for_one_shape_and_large_for_a_shift():
    assert psi(spread(200, 0.6, 0.99), spread(280, 0.6, 0.99)) == pytest.approx(0, abs=1e-3)
    shifted = psi(spread(200, 0.1, 0.5), spread(280, 0.6, 0.99))
    assert shifted > 0.25 and math.isfinite(shifted)


def test_stable_traffic_raises_nothing(officer):
    point = make_point()
    reference_window(point)
    inject(point, DAY, spread(200, 0.6, 0.99))
    assert monitoring_run(day=DAY) == []
    assert not MonitoringAlert.objects.exists()
    assert not AuditEvent.objects.filter(action="monitoring.alert").exists()


def test_a_confidence_shift_alerts_audits_notifies_and_files_an_incident(officer):
    point = make_point()
    reference_window(point)
    inject(point, DAY, spread(200, 0.1, 0.5))

    alerts = monitoring_run(day=DAY)

    assert [(a.metric, a.severity) for a in alerts] == [("confidence_psi", "critical")]
    alert = alerts[0]
    assert alert.value > 0.25 and alert.day == DAY and alert.system_id == point.system_id
    assert "PSI" in alert.message
    event = AuditEvent.objects.get(action="monitoring.alert")
    assert event.system_id == point.system_id
    assert event.object_id == str(alert.pk)
    notification = Notification.objects.get(kind="monitoring")
    assert notification.severity == "critical" and "confidence" in notification.subject.lower()
    assert NotificationRecipient.objects.filter(notification=notification, user=officer).exists()
    incident = Incident.objects.get(source="quality")
    assert alert.incident_id == incident.pk and incident.system_id == point.system_id
    assert incident.source_ref == f"monitoring:{alert.pk}"
    assert AuditEvent.objects.filter(action="incident.created").count() == 1


def test_idempotent_per_point_metric_and_day(officer):
    point = make_point()
    reference_window(point)
    inject(point, DAY, spread(200, 0.1, 0.5))
    assert len(monitoring_run(day=DAY)) == 1
    assert monitoring_run(day=DAY) == []
    out = io.StringIO()
    call_command("run_monitoring", "--day", DAY.isoformat(), stdout=out)
    assert "0 new monitoring alert(s)." in out.getvalue()
    assert MonitoringAlert.objects.count() == 1
    assert AuditEvent.objects.filter(action="monitoring.alert").count() == 1
    assert Notification.objects.filter(kind="monitoring").count() == 1
    assert Incident.objects.filter(source="quality").count() == 1


def test_a_new_model_version_alerts_as_a_warning(officer):
    point = make_point()
    reference_window(point)
    inject(point, DAY, spread(200, 0.6, 0.99), version="v2")
    alerts = monitoring_run(day=DAY)
    assert [(a.metric, a.severity, a.value) for a in alerts] == [("model_version", "warning", 200.0)]
    assert "'v2'" in alerts[0].message
    assert not Incident.objects.exists()  # a warning files no incident


def test_the_first_day_of_a_point_has_no_new_version(officer):
    point = make_point()
    inject(point, DAY, spread(200, 0.6, 0.99), version="v9")
    assert monitoring_run(day=DAY) == []


def test_an_override_spike_alerts(officer):
    point = make_point()
    reference_window(point, reviewed_overrides=2)  # 10 % overridden before
    inject(point, DAY, spread(200, 0.6, 0.99), reviewed_overrides=80)  # 40 % today
    alerts = {a.metric: a for a in monitoring_run(day=DAY)}
    assert set(alerts) == {"override_rate"}
    assert alerts["override_rate"].value == pytest.approx(0.40)
    assert alerts["override_rate"].reference == pytest.approx(0.10)
    assert alerts["override_rate"].severity == "critical"


def test_a_growing_queue_age_alerts(officer):
    point = make_point()
    waiting_since = dt.datetime.combine(DAY, dt.time(1), tzinfo=UTC)
    Case.objects.create(system=point.system, intervention_point=point, external_id="waiting", input={},
                        prediction_label="approve", prediction_confidence=0.4, status=CaseStatus.QUEUED,
                        routed=True, received_at=waiting_since)
    alerts = monitoring_run(day=DAY)
    assert [(a.metric, a.severity) for a in alerts] == [("queue_age", "critical")]
    assert alerts[0].value == pytest.approx(23.0)


def test_a_point_threshold_overrides_the_default(officer):
    point = make_point()
    MonitoringThreshold.objects.create(intervention_point=point, metric="confidence_psi", warning=20.0,
                                       critical=None)
    reference_window(point)
    inject(point, DAY, spread(200, 0.1, 0.5))
    assert monitoring_run(day=DAY) == []


def _page(client: Client, point: InterventionPoint):
    return client.get("/dashboard/", {"system": point.system.slug, "period": "custom",
                                      "start": (DAY - dt.timedelta(days=3)).isoformat(), "end": DAY.isoformat()})


@pytest.mark.parametrize("role", ["compliance_officer", "manager"])
def test_the_dashboard_shows_the_monitoring_panel(make_user, role):
    point = make_point()
    reference_window(point)
    inject(point, DAY, spread(200, 0.1, 0.5))
    monitoring_run(day=DAY)
    client = Client()
    client.force_login(make_user(role))
    html = _page(client, point).content.decode()
    assert 'id="monitoring"' in html
    assert 'data-alert="confidence_psi" data-severity="critical"' in html
    incident = Incident.objects.get()
    if role == "compliance_officer":
        assert f'href="/compliance/incidents/{incident.pk}/"' in html


def test_the_dashboard_is_denied_to_reviewers(make_user):
    point = make_point()
    client = Client()
    client.force_login(make_user("reviewer"))
    assert _page(client, point).status_code == 403
