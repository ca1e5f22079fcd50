"""KPIs of generation and action points (issue 14): per-kind rates in GET /api/v1/kpis/ and on the dashboard."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from reviews.services.sla import apply_sla_breaches
from tests.reviews.queue_helpers import client_for, make_reviewer, make_user
from tests.reviews.test_kinds import (
    action_point,
    claim,
    decide,
    generation_point,
    integration,
    submit_action,
    submit_generation,
)

pytestmark = pytest.mark.django_db


def _decide_next(reviewer: Any, **verdict: Any) -> None:
    case = claim(reviewer)
    response = decide(reviewer, case["id"], **verdict)
    assert response.status_code == 201, response.content


def test_kind_kpis_count_each_outcome() -> None:
    generation_point()
    action_point(sla_seconds=60)
    client = integration()
    reviewer = make_reviewer()
    for n, verdict in enumerate([
        {"outcome": "approve"},
        {"outcome": "edit", "text": "We expect delivery tomorrow."},
        {"outcome": "edit", "text": "Completely different words here."},
        {"outcome": "reject", "rationale": "Wrong.", "category": "factuality"},
    ]):
        submit_generation(client, "We guarantee delivery tomorrow.", external_id=f"g{n}")
        _decide_next(reviewer, **verdict)
    for n, verdict in enumerate([
        {"outcome": "approve"},
        {"outcome": "modify", "arguments": {"amount": 10, "to": "ACME"}},
        {"outcome": "deny", "rationale": "No."},
    ]):
        submit_action(client, external_id=f"a{n}")
        _decide_next(reviewer, **verdict)
    submit_action(client, external_id="auto", tool="lookup_balance", arguments={})
    submit_action(client, external_id="expired")
    apply_sla_breaches(now=timezone.now() + timedelta(minutes=5))

    officer = client_for(make_user("compliance_officer"))
    rows = {row["kind"]: row for row in officer.get("/api/v1/kpis/").json()["by_kind"]}
    text = rows["generation"]
    assert (text["cases"], text["human_decided"]) == (4, 4)
    assert (text["approved"], text["edited"], text["rejected"]) == (1, 2, 1)
    assert text["edit_rate"] == 0.5 and text["approval_rate"] == 0.25 and text["rejection_rate"] == 0.25
    assert 0 < text["mean_edit_distance"] < 1
    assert text["rejection_categories"] == {"factuality": 1}
    action = rows["action"]
    assert (action["cases"], action["auto_accepted"], action["expired"], action["human_decided"]) == (5, 1, 1, 3)
    assert (action["approvals"], action["modifications"], action["denials"]) == (1, 1, 1)
    assert action["time_to_decision_s"]["p50"] is not None

    from django.test import Client

    browser = Client()
    browser.force_login(officer.user)
    page = browser.get("/dashboard/")
    assert page.status_code == 200
    assert "Generated texts and agent actions" in page.content.decode()


def test_kind_kpis_denied_to_reviewers() -> None:
    assert client_for(make_reviewer()).get("/api/v1/kpis/").status_code == 403


def test_bias_audits_skip_kinds_and_the_dossier_shows_their_figures() -> None:
    from compliance.selectors.external import kpi_rows, system_kpis
    from fairness.selectors import audit_cases

    point = action_point()
    client = integration()
    submit_action(client, external_id="a1")
    covered = audit_cases(system_id=point.system_id, period_from=timezone.now() - timedelta(days=1),
                          period_to=timezone.now() + timedelta(days=1))
    assert covered.count() == 0
    rows = dict(kpi_rows(system_kpis(point.system)))
    assert rows["Tool calls at agent-tools: approved / modified / denied"] == "0 / 0 / 0"
