"""Bias audits in a real browser: an officer requests an audit and reads the flagged result.

Celery runs inline (eager) in tests, so the audit is done by the time the
request's redirect lands on the audit page. A screenshot goes to
``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audit.models import AuditEvent
from fairness.models import BiasAudit
from tests.fairness.factories import add_cases, make_audited_system
from tests.fairness.test_audits import DISPARITY

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_officer_requests_an_audit_and_sees_it_flagged(page, live_server, login, make_user):
    system, point = make_audited_system()
    add_cases(system, point, DISPARITY)
    add_cases(system, point, [(12, "x", "approve", "approve", None)])
    make_user("compliance_officer", "officer1")

    login("officer1")
    page.goto(f"{live_server.url}/fairness/")
    assert page.get_by_role("heading", name="Bias audits").is_visible()
    assert page.locator("nav.mainnav a", has_text="Bias audits").is_visible()
    page.get_by_role("link", name="Request an audit").click()
    page.wait_for_url(re.compile(r"/fairness/new/"))
    page.select_option("#id_system", "credit-scoring")
    page.select_option("#id_attribute", "gender")
    page.get_by_role("button", name="Request the audit").click()

    audit = BiasAudit.objects.get()
    page.wait_for_url(re.compile(rf"/fairness/{audit.pk}/$"))
    assert page.locator("#audit-status").inner_text() == "done"
    assert "Flagged" in page.locator("#audit-flagged").inner_text()
    metrics = page.locator("#metrics").inner_text()
    assert "Disparate impact ratio" in metrics and "0.50" in metrics and "30.0 pp" in metrics
    assert page.locator(".fa-verdict", has_text="AI labels").inner_text().startswith("AI labels: adverse impact")
    groups = page.locator("#groups tbody tr")
    assert groups.count() == 3
    assert "insufficient n" in groups.nth(2).inner_text()
    assert "30.0 %" in groups.nth(0).inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "bias-audit.png"), full_page=True)

    audit.refresh_from_db()
    page.get_by_role("link", name=f"#{audit.incident_id}").first.click()
    page.wait_for_url(re.compile(rf"/compliance/incidents/{audit.incident_id}/$"))
    assert "Bias audit" in page.content()
    assert AuditEvent.objects.filter(action="bias_audit.requested", actor_name="officer1").count() == 1
    assert AuditEvent.objects.filter(action="bias_audit.flagged").count() == 1
