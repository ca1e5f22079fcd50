"""``/api/v1/incidents/``: the contract's fields, roles, filters and errors."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from incidents.models import Incident
from tests.incidents.incident_helpers import file_incident, make_case

pytestmark = pytest.mark.django_db

URL = "/api/v1/incidents/"
AWARE = "2026-03-02T09:30:00Z"


def body(**overrides):
    data = {"system": "credit-scoring", "kind": "death", "aware_at": AWARE, "description": "A person died."}
    data.update(overrides)
    return data


@pytest.fixture
def case():
    return make_case("app-10023")


@pytest.mark.parametrize("role", ["compliance_officer", "admin"])
def test_officer_or_admin_files_an_incident(api_client_for, case, role):
    client = api_client_for(role)
    response = client.post(URL, body(case=case.pk, title="Fatal outcome"), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["report_due_at"] == "2026-03-12T09:30:00Z"
    assert data["status"] == "aware"
    assert data["id"] == Incident.objects.get().pk
    assert (data["system"], data["case"], data["kind"], data["created_by"]) == (
        "credit-scoring", case.pk, "death", client.user.username
    )
    assert data["overdue"] is True and data["clock"] == "overdue"
    event = AuditEvent.objects.get(action="incident.created")
    assert event.actor_name == client.user.username
    assert Incident.objects.get().history.get().history_user == client.user


def test_bias_incident_has_no_clock(api_client_for, case):
    response = api_client_for("compliance_officer").post(URL, body(kind="bias"), format="json")
    assert response.status_code == 201
    assert response.json()["report_due_at"] is None


@pytest.mark.parametrize("role", ["manager", "reviewer", "integration"])
def test_other_roles_may_not_file(api_client_for, case, role):
    response = api_client_for(role).post(URL, body(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not Incident.objects.exists()


def test_unauthenticated_is_401(anon_client):
    assert anon_client.get(URL).status_code == 401
    assert anon_client.post(URL, body(), format="json").status_code == 401
    assert anon_client.patch(f"{URL}1/", {"status": "closed"}, format="json").status_code == 401


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"system": "no-such-system"}, "system"),
        ({"system": "bad slug!"}, "system"),
        ({"system": 7}, "system"),
        ({"kind": "flood"}, "kind"),
        ({"aware_at": "last tuesday"}, "aware_at"),
        ({"aware_at": "2999-01-01T00:00:00Z"}, "aware_at"),
        ({"description": ""}, "description"),
        ({"description": "x" * 20001}, "description"),
        ({"case": 999999}, "case"),
        ({"case": "12"}, "case"),
        ({"case": 2**70}, "case"),
        ({"title": "t" * 201}, "title"),
    ],
)
def test_bad_input_names_the_field(api_client_for, case, overrides, field):
    response = api_client_for("compliance_officer").post(URL, body(**overrides), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_missing_fields_and_nul_bytes(api_client_for, case):
    client = api_client_for("compliance_officer")
    response = client.post(URL, {}, format="json")
    assert response.status_code == 400
    assert {"system", "kind", "aware_at", "description"} <= set(response.json())
    response = client.post(URL, body(description="bad\x00text"), format="json")
    assert response.status_code == 400
    assert "description" in response.json()
    response = client.post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400


def test_case_of_another_system_is_400(api_client_for, case):
    other = make_case("tx-1", system="fraud-check", point="tx-review")
    response = api_client_for("compliance_officer").post(URL, body(case=other.pk), format="json")
    assert response.status_code == 400
    assert "case" in response.json()


@pytest.mark.parametrize("role", ["compliance_officer", "manager", "admin"])
def test_list_and_retrieve_for_readers(api_client_for, make_user, case, role):
    officer = make_user("compliance_officer")
    incident = file_incident(actor=officer, aware_at=timezone.now() - dt.timedelta(days=1))
    client = api_client_for(role)
    response = client.get(URL)
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"next", "previous", "results"}
    assert [r["id"] for r in data["results"]] == [incident.pk]
    detail = client.get(f"{URL}{incident.pk}/")
    assert detail.status_code == 200
    assert detail.json()["report_due_at"] is not None


@pytest.mark.parametrize("role", ["reviewer", "integration"])
def test_list_and_retrieve_denied(api_client_for, make_user, case, role):
    incident = file_incident(actor=make_user("compliance_officer"), aware_at=timezone.now())
    client = api_client_for(role)
    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}{incident.pk}/").status_code == 403


def test_list_filters(api_client_for, make_user, case):
    officer = make_user("compliance_officer")
    now = timezone.now()
    overdue = file_incident(actor=officer, kind="critical_infrastructure", aware_at=now - dt.timedelta(days=5))
    running = file_incident(actor=officer, kind="serious_harm", aware_at=now - dt.timedelta(days=1))
    other_system = make_case("tx-9", system="fraud-check", point="tx-review").system
    bias = file_incident(actor=officer, kind="bias", aware_at=now, system=other_system)
    client = api_client_for("manager")

    def ids(query):
        response = client.get(URL, query)
        assert response.status_code == 200, response.content
        return sorted(r["id"] for r in response.json()["results"])

    assert ids({"overdue": "true"}) == [overdue.pk]
    assert ids({"overdue": "false"}) == sorted([running.pk, bias.pk])
    assert ids({"system": "fraud-check"}) == [bias.pk]
    assert ids({"kind": "serious_harm"}) == [running.pk]
    assert ids({"status": "aware"}) == sorted([overdue.pk, running.pk, bias.pk])
    assert ids({"status": "closed"}) == []
    for param, value in [("overdue", "maybe"), ("kind", "flood"), ("status", "done"), ("system", "a b")]:
        response = client.get(URL, {param: value})
        assert response.status_code == 400
        assert param in response.json()


def test_list_query_count_does_not_grow(api_client_for, make_user, case, django_assert_max_num_queries):
    officer = make_user("compliance_officer")
    client = api_client_for("manager")
    for index in range(3):
        file_incident(actor=officer, aware_at=timezone.now(), case=case, title=f"#{index}")
    with django_assert_max_num_queries(4):  # token + user's groups + page of incidents (+ slack)
        assert len(client.get(URL).json()["results"]) == 3
    for index in range(10):
        file_incident(actor=officer, aware_at=timezone.now(), case=case, title=f"more {index}")
    with django_assert_max_num_queries(4):
        assert len(client.get(URL).json()["results"]) == 13


def test_patch_moves_the_status(api_client_for, make_user, case):
    client = api_client_for("compliance_officer")
    incident = file_incident(actor=client.user, kind="death", aware_at=timezone.now() - dt.timedelta(days=2))
    response = client.patch(f"{URL}{incident.pk}/", {"status": "initial_report", "note": "Sent to the MSA."},
                            format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["status"] == "initial_report" and data["initial_report_at"] is not None
    assert data["clock"] == "reported"
    event = AuditEvent.objects.get(action="incident.updated")
    assert (event.actor_name, event.reason) == (client.user.username, "Sent to the MSA.")


def test_patch_refuses_backwards_and_bad_input(api_client_for, case):
    client = api_client_for("compliance_officer")
    incident = file_incident(actor=client.user, kind="death", aware_at=timezone.now())
    client.patch(f"{URL}{incident.pk}/", {"status": "full_report"}, format="json")
    for payload, field in [
        ({"status": "initial_report"}, "status"),
        ({"status": "aware"}, "status"),
        ({"status": "solved"}, "status"),
        ({}, "status"),
        ({"note": 5}, "note"),
        ({"note": "n" * 5001}, "note"),
    ]:
        response = client.patch(f"{URL}{incident.pk}/", payload, format="json")
        assert response.status_code == 400, (payload, response.content)
        assert field in response.json()
    assert AuditEvent.objects.filter(action="incident.updated").count() == 1


@pytest.mark.parametrize("role", ["manager", "reviewer", "integration"])
def test_patch_denied(api_client_for, make_user, case, role):
    incident = file_incident(actor=make_user("compliance_officer"), aware_at=timezone.now())
    response = api_client_for(role).patch(f"{URL}{incident.pk}/", {"status": "initial_report"}, format="json")
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.status == "aware"


def test_unknown_incident_is_404(api_client_for, case):
    client = api_client_for("compliance_officer")
    assert client.get(f"{URL}424242/").status_code == 404
    assert client.patch(f"{URL}424242/", {"status": "closed"}, format="json").status_code == 404
    assert client.get(f"{URL}{2**64}/").status_code == 404


def test_schema_documents_the_endpoints(api_client_for):
    response = api_client_for("admin").get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/incidents/"])
    assert {"get", "patch"} <= set(paths["/api/v1/incidents/{id}/"])
