"""The monitoring panel in a real browser: an officer sees yesterday's alerts and follows one to its incident."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from dashboard.monitoring import monitoring_run
from tests.dashboard import test_monitoring as data
from tests.dashboard.kpi_data import make_point

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_officer_reads_monitoring_alerts_and_opens_the_incident(page, live_server, login, make_user, monkeypatch):
    yesterday = timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=1)
    monkeypatch.setattr(data, "DAY", yesterday)
    point = make_point()
    data.reference_window(point)
    data.inject(point, yesterday, data.spread(200, 0.1, 0.5), version="v2")
    make_user("compliance_officer", "officer1")
    assert {a.metric for a in monitoring_run()} == {"confidence_psi", "model_version"}

    login("officer1")
    page.goto(f"{live_server.url}/dashboard/")
    panel = page.locator("#monitoring")
    panel.scroll_into_view_if_needed()
    assert panel.get_by_role("heading", name="Monitoring alerts").is_visible()
    rows = panel.locator("tbody tr")
    assert rows.count() == 2
    critical = panel.locator('tr[data-alert="confidence_psi"]')
    assert critical.locator(".badge.bad").inner_text() == "Critical"
    assert "PSI" in critical.inner_text()
    assert "'v2'" in panel.locator('tr[data-alert="model_version"]').inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    panel.screenshot(path=str(ARTIFACTS / "monitoring-panel.png"))

    page.set_viewport_size({"width": 390, "height": 844})
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "monitoring-panel-390.png"))
    page.set_viewport_size({"width": 1366, "height": 900})

    critical.get_by_role("link").click()
    page.wait_for_url(f"{live_server.url}/compliance/incidents/*/")
    assert "Post-market monitoring" in page.content()
