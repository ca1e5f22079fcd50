"""``/api/v1/bias-audits/``: request (202), read, list; roles allowed and denied; input errors name the field."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from fairness.models import BiasAudit
from tests.fairness.factories import add_cases, make_audited_system
from tests.fairness.test_audits import DISPARITY

pytestmark = pytest.mark.django_db
URL = "/api/v1/bias-audits/"


@pytest.fixture
def audited(db):
    system, point = make_audited_system()
    add_cases(system, point, DISPARITY)
    return system


@pytest.mark.parametrize("role", ["compliance_officer", "manager", "admin"])
def test_request_runs_the_audit_and_reads_it_back(role, audited, api_client_for, django_capture_on_commit_callbacks):
    client = api_client_for(role)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(URL, {"system": "credit-scoring", "attribute": "gender"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending" and isinstance(body["id"], int)
    assert body["progress"] == {"chunks_done": 0, "chunks_total": 0, "fraction": 0.0}
    assert len(callbacks) >= 1
    event = AuditEvent.objects.get(action="bias_audit.requested", object_id=str(body["id"]))
    assert event.actor_name == client.user.username

    detail = client.get(f"{URL}{body['id']}/")
    assert detail.status_code == 200
    data = detail.json()
    assert data["status"] == "done" and data["flagged"] is True and isinstance(data["incident"], int)
    # 30 days cut at UTC midnights: 31 daily chunks (30 if requested at midnight), all done.
    total = data["progress"]["chunks_total"]
    assert total in (30, 31) and data["progress"] == {"chunks_done": total, "chunks_total": total, "fraction": 1.0}
    assert set(data["metrics"]) == {"ai", "final"}
    for block in data["metrics"].values():
        assert {"disparate_impact_ratio", "demographic_parity_difference", "equalized_odds_difference"} <= set(block)
    f_group = data["groups"][0]
    contract = ["value", "n", "selection_rate_ai", "selection_rate_final", "tpr", "fpr", "override_rate"]
    assert [key for key in f_group if key in contract] == contract
    assert f_group["value"] == "f" and f_group["n"] == 100 and f_group["selection_rate_ai"] == 0.3
    assert f_group["override_rate"] == 0.0
    assert data["metrics"]["ai"]["disparate_impact_ratio"] == 0.5
    assert data["requested_by"] == client.user.username
    assert data["system"] == "credit-scoring" and data["attribute"] == "gender"
    assert data["thresholds"] == {"disparate_impact_min": 0.8, "demographic_parity_max": 0.1,
                                  "equalized_odds_max": 0.1}


@pytest.mark.parametrize("role", ["reviewer", "integration"])
def test_reviewers_and_integrations_are_denied(role, audited, api_client_for):
    client = api_client_for(role)
    response = client.post(URL, {"system": "credit-scoring", "attribute": "gender"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    assert client.get(URL).status_code == 403
    audit = BiasAudit.objects.create(system=audited, attribute="gender", positive_label="approve",
                                     period_from="2026-01-01T00:00Z", period_to="2026-02-01T00:00Z")
    assert client.get(f"{URL}{audit.pk}/").status_code == 403
    assert not BiasAudit.objects.exclude(pk=audit.pk).exists()


def test_unauthenticated_is_401(audited, anon_client):
    assert anon_client.post(URL, {"system": "credit-scoring", "attribute": "gender"}, format="json").status_code == 401
    assert anon_client.get(URL).status_code == 401
    assert anon_client.get(f"{URL}1/").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"system": "credit-scoring", "attribute": "postcode"}, "attribute"),
        ({"system": "credit-scoring"}, "attribute"),
        ({"system": "nope", "attribute": "gender"}, "system"),
        ({"attribute": "gender"}, "system"),
        ({"system": "credit-scoring", "attribute": "gender", "from": "yesterday"}, "from"),
        ({"system": "credit-scoring", "attribute": "gender", "to": 12}, "to"),
        ({"system": "credit-scoring", "attribute": "gender", "from": "2026-03-01", "to": "2026-02-01"}, "to"),
        ({"system": "credit-scoring", "attribute": "gender", "from": "1990-01-01", "to": "2026-02-01"}, "from"),
        ({"system": ["credit-scoring"], "attribute": "gender"}, "system"),
        ({"system": "credit-scoring", "attribute": "g" * 500}, "attribute"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(body, field, audited, api_client_for):
    response = api_client_for("compliance_officer").post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not BiasAudit.objects.exists()
    assert not AuditEvent.objects.filter(action="bias_audit.requested").exists()


def test_nul_bytes_and_malformed_json_are_400(audited, api_client_for):
    client = api_client_for("compliance_officer")
    response = client.post(URL, '{"system": "credit-scoring", "attribute": "gen\\u0000der"}',
                           content_type="application/json")
    assert response.status_code == 400 and "attribute" in response.json()
    assert client.post(URL, "{", content_type="application/json").status_code == 400


def test_explicit_period_accepts_dates_and_date_times(audited, api_client_for, django_capture_on_commit_callbacks):
    client = api_client_for("manager")
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(URL, {"system": "credit-scoring", "attribute": "age_band", "from": "2026-01-01",
                                     "to": "2026-02-01T12:30:00+01:00"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["from"] == "2026-01-01T00:00:00Z" and body["to"] == "2026-02-01T11:30:00Z"


def test_unknown_or_malformed_ids_are_json_404s(audited, api_client_for):
    client = api_client_for("compliance_officer")
    for path in ("999999/", "abc/", "1e3/", "²/"):
        response = client.get(f"{URL}{path}")
        assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_list_filters_by_system_with_a_fixed_number_of_queries(audited, api_client_for, django_assert_num_queries,
                                                                django_capture_on_commit_callbacks):
    make_audited_system("other-system")
    client = api_client_for("compliance_officer")
    with django_capture_on_commit_callbacks(execute=True):
        for system, attribute in (("credit-scoring", "gender"), ("credit-scoring", "age_band"),
                                  ("other-system", "gender")):
            assert client.post(URL, {"system": system, "attribute": attribute}, format="json").status_code == 202
    response = client.get(URL, {"system": "credit-scoring"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["system"], r["attribute"]) for r in results] == [("credit-scoring", "age_band"),
                                                               ("credit-scoring", "gender")]
    assert "next" in response.json() and "previous" in response.json()
    assert len(client.get(URL).json()["results"]) == 3
    # Token with user and role (one query), the page of audits with everything joined: no query per audit.
    with django_assert_num_queries(2):
        client.get(URL)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            client.post(URL, {"system": "other-system", "attribute": "age_band"}, format="json")
    with django_assert_num_queries(2):
        assert len(client.get(URL).json()["results"]) == 6
    assert client.get(URL, {"system": "missing"}).json()["results"] == []


def test_bias_audit_endpoints_are_documented_without_warnings():
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=[path("api/v1/", include("fairness.api.urls"))]).get_schema(
        request=None, public=True)
    assert not GENERATOR_STATS._warn_cache, dict(GENERATOR_STATS._warn_cache)
    assert not GENERATOR_STATS._error_cache, dict(GENERATOR_STATS._error_cache)
    validate_schema(schema)
    operations = {(route, method): op for route, item in schema["paths"].items() for method, op in item.items()}
    assert set(operations) == {("/api/v1/bias-audits/", "get"), ("/api/v1/bias-audits/", "post"),
                               ("/api/v1/bias-audits/{id}/", "get")}
    for operation in operations.values():
        assert {"401", "403"} <= set(operation["responses"])
    assert "202" in operations[("/api/v1/bias-audits/", "post")]["responses"]
    assert "requestBody" in operations[("/api/v1/bias-audits/", "post")]
