"""The KPI dashboard in a real browser: a manager logs in, reads the cards and charts, switches period, downloads CSV.

Screenshots go to ``test-artifacts/`` (git-ignored); with
``HITL_WRITE_DOCS_SCREENSHOTS=1`` the 30-day view is also written to
``docs/img/dashboard.png`` (``scripts/dashboard_screenshot.py`` does that; CI does not).
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import pytest
from django.utils import timezone

from dashboard.services import rollup_refresh
from tests.dashboard.kpi_data import build_demo

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DOCS_IMG = ROOT / "docs" / "img"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_manager_reads_the_dashboard_switches_period_and_downloads_csv(page, live_server, login, make_user):
    build_demo(now=timezone.now(), days=90, per_day=40)
    rollup_refresh()
    make_user("manager", "manager1")

    login("manager1")
    page.goto(f"{live_server.url}/dashboard/")
    assert page.locator("nav.mainnav").get_by_role("link", name="KPI dashboard").is_visible()
    assert page.get_by_role("heading", name="KPI dashboard", exact=True).is_visible()
    assert page.locator(".segmented a.current").inner_text() == "30 days"

    # Ten KPI cards, each with a figure.
    cards = page.locator("article.kpi-card")
    assert cards.count() == 10
    assert re.fullmatch(r"[\d,]+", page.locator('[data-kpi="cases_total"] .kpi-value').inner_text())
    assert page.locator('[data-kpi="override_rate"] .kpi-value').inner_text().endswith("%")
    assert page.locator('[data-kpi="accuracy_lift"] .kpi-value').inner_text().endswith("pp")

    # The charts are drawn: bars and lines inside each SVG, visible on screen.
    volume = page.locator('svg[data-chart="volume"]')
    volume.scroll_into_view_if_needed()
    assert volume.is_visible() and volume.bounding_box()["width"] > 300
    assert page.locator('svg[data-chart="volume"] rect.bar').count() >= 30
    for key in ("override", "accuracy", "ttr", "agreement", "queue"):
        assert page.locator(f'svg[data-chart="{key}"] path.line').count() >= 1, key
        assert page.locator(f'svg[data-chart="{key}"] circle.point').count() >= 10, key
    assert page.locator("table.kpi-table tbody tr").count() == 4

    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, "dashboard-30d.png")
    if os.environ.get("HITL_WRITE_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / "dashboard.png"), full_page=True)

    # Switch to 7 days: seven daily bars' worth of x positions, the scope line says so.
    page.locator('.segmented a[data-period="7"]').click()
    page.wait_for_url(re.compile(r"period=7"))
    assert page.locator(".segmented a.current").inner_text() == "7 days"
    assert page.locator('svg[data-chart="override"] circle.point').count() <= 7
    days_7 = int(page.locator('[data-kpi="cases_total"]').get_attribute("data-value"))

    # One system, 90 days.
    page.select_option("#id_system", "credit")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"system=credit"))
    assert page.get_by_role("heading", name="KPI dashboard · Credit").is_visible()
    page.locator('.segmented a[data-period="90"]').click()
    page.wait_for_url(re.compile(r"period=90"))
    days_90 = int(page.locator('[data-kpi="cases_total"]').get_attribute("data-value"))
    assert days_90 > days_7 > 0
    shoot(page, "dashboard-credit-90d.png")

    # Download the series CSV of what is on screen.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Series CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("kpi-series_credit_")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert len(rows) == 90
    assert sum(int(r["cases_total"]) for r in rows) == days_90
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Reviewers CSV").click()
    reviewers = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert {r["reviewer"] for r in reviewers} == {"alice", "bob", "chen", "dana"}
