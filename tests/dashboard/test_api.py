"""GET /api/v1/kpis/ (+ /series/, /reviewers/): the contract, roles, bad input, query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard.services import rollup_refresh
from tests.dashboard.kpi_data import DAY1, DAY2, DAY3, EXPECTED, at, build_scenario, make_case

pytestmark = pytest.mark.django_db

CONTRACT_KEYS = {
    "cases_total", "auto_accepted", "reviewed", "automation_rate", "override_rate", "accuracy_ai", "accuracy_final",
    "accuracy_lift", "error_reduction_rate", "agreement", "time_to_resolution_s", "sla_breaches", "queue_depth",
    "bias_incidents_open",
}
PERIOD = {"system": "credit", "from": "2026-10-01", "to": "2026-10-03"}


@pytest.fixture
def scenario():
    return build_scenario()


@pytest.mark.parametrize("role", ["manager", "compliance_officer", "admin"])
def test_allowed_roles_get_the_contract(api_client_for, scenario, role):
    response = api_client_for(role).get("/api/v1/kpis/", PERIOD)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) >= CONTRACT_KEYS
    assert {"percent", "kappa", "alpha"} <= set(body["agreement"])
    assert set(body["time_to_resolution_s"]) == {"p50", "p90"}
    assert_same(body, EXPECTED)


def assert_same(body: dict, expected: dict) -> None:
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_same(body[key], value)
        elif isinstance(value, float):
            assert body[key] == pytest.approx(value), key
        else:
            assert body[key] == value, key


@pytest.mark.parametrize("role", ["reviewer", "integration"])
@pytest.mark.parametrize("path", ["/api/v1/kpis/", "/api/v1/kpis/series/", "/api/v1/kpis/reviewers/"])
def test_other_roles_are_refused(api_client_for, role, path):
    response = api_client_for(role).get(path)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


@pytest.mark.parametrize("path", ["/api/v1/kpis/", "/api/v1/kpis/series/", "/api/v1/kpis/reviewers/"])
def test_unauthenticated_is_401(anon_client, path):
    response = anon_client.get(path)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-10-01T25:00:00Z"}, "from"),
        ({"from": "2026-10-01\x00"}, "from"),
        ({"to": "x" * 5000}, "to"),
        ({"from": "2026-10-03", "to": "2026-10-01"}, "to"),
        ({"from": "2026-10-01", "to": "2026-10-01"}, "to"),
        ({"from": "2000-01-01", "to": "2026-10-01"}, "from"),
        ({"system": "no-such-system"}, "system"),
        ({"system": "credit\x00"}, "system"),
        ({"system": "s" * 200}, "system"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(api_client_for, scenario, params, field):
    for path in ("/api/v1/kpis/", "/api/v1/kpis/series/", "/api/v1/kpis/reviewers/"):
        response = api_client_for("manager").get(path, params)
        assert response.status_code == 400, (path, response.content)
        assert field in response.json()


def test_defaults_are_the_last_30_days_until_now(api_client_for, scenario):
    body = api_client_for("manager").get("/api/v1/kpis/").json()
    start = dt.datetime.fromisoformat(body["from"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(body["to"].replace("Z", "+00:00"))
    assert end - start == dt.timedelta(days=30)
    assert body["system"] is None
    # The scenario lies in 2026-10; the live queue does not depend on the period.
    assert body["queue_depth"] == 1


def test_date_times_with_offsets_and_partial_days(api_client_for, scenario):
    body = api_client_for("manager").get(
        "/api/v1/kpis/", {"system": "credit", "from": "2026-10-01T12:07:00+02:00", "to": "2026-10-02T10:07:00"}
    ).json()
    # 12:07+02:00 is 10:07 UTC; a time without offset is UTC.
    assert body["from"] == "2026-10-01T10:07:00Z" and body["to"] == "2026-10-02T10:07:00Z"
    assert body["cases_total"] == 5
    # A "+" typed into a URL without encoding arrives as a space: still understood.
    body = api_client_for("manager").get("/api/v1/kpis/?system=credit&from=2026-10-01T12:07:00+02:00").json()
    assert body["from"] == "2026-10-01T10:07:00Z"


def test_series_and_reviewers(api_client_for, scenario):
    client = api_client_for("compliance_officer")
    series = client.get("/api/v1/kpis/series/", PERIOD).json()
    assert series["system"] == "credit"
    assert [d["day"] for d in series["days"]] == ["2026-10-01", "2026-10-02"]
    assert [d["queue_depth"] for d in series["days"]] == [2, 1]
    reviewers = client.get("/api/v1/kpis/reviewers/", PERIOD).json()["reviewers"]
    assert [r["reviewer"] for r in reviewers] == ["r1", "r2", "r3"]
    assert reviewers[0]["gold_accuracy"] == 1.0


def test_query_count_is_pinned_and_independent_of_the_data(api_client_for, scenario):
    """With the rollup built, the KPI endpoint costs a fixed number of queries whatever the volume."""
    rollup_refresh()
    client = api_client_for("manager")
    client.get("/api/v1/kpis/", PERIOD)  # warm the token user's role cache path

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/kpis/", PERIOD).status_code == 200
        return len(queries)

    first = count()
    # token + user + role (one query), the system, rollup state, day rows, histogram (summed), day
    # percentiles, reviewer pairs (summed: Cohen or Fleiss), queue, incidents, generation/action points (by_kind)
    assert first == 10
    for hour in range(10):
        make_case(scenario.point, received_at=at(DAY1, hour), routed=False)
        make_case(scenario.point, received_at=at(DAY2, hour), ttr_s=30, final="approve")
    rollup_refresh()
    assert count() == first
    assert client.get("/api/v1/kpis/", PERIOD).json()["cases_total"] == 34


def test_schema_documents_the_kpi_endpoints(api_client_for):
    schema = api_client_for("admin").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/kpis/" in text and "/api/v1/kpis/series/" in text and "error_reduction_rate" in text


def test_period_after_the_data_counts_nothing(api_client_for, scenario):
    body = api_client_for("manager").get(
        "/api/v1/kpis/", {"system": "credit", "from": (DAY3 + dt.timedelta(days=1)).isoformat()}
    ).json()
    assert body["cases_total"] == 0 and body["automation_rate"] is None
    assert body["queue_depth"] == 1  # live
