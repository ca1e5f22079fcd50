"""Pages of the incident register: who may open them, filing, moving, the clock on the page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from incidents.models import Incident
from tests.incidents.incident_helpers import file_incident, make_case

pytestmark = pytest.mark.django_db

LIST = "/compliance/incidents/"
NEW = "/compliance/incidents/new/"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def case():
    return make_case("app-10023")


def test_anonymous_is_sent_to_login(client):
    for url in (LIST, NEW, f"{LIST}1/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith("/accounts/login/")


@pytest.mark.parametrize("role", ["reviewer", "integration"])
def test_other_roles_get_403(make_user, case, role):
    incident = file_incident(actor=make_user("compliance_officer"), aware_at=timezone.now())
    client = client_for(make_user(role))
    for url in (LIST, NEW, f"{LIST}{incident.pk}/"):
        assert client.get(url).status_code == 403


def test_officer_files_an_incident_through_the_form(make_user, case):
    officer = make_user("compliance_officer")
    client = client_for(officer)
    form = client.get(f"{NEW}?system=credit-scoring&case={case.pk}")
    assert form.status_code == 200
    assert "report within 10 days" in form.content.decode()
    aware = (timezone.now() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(NEW, {"system": "credit-scoring", "kind": "death", "aware_at": aware,
                                 "title": "Fatal outcome", "description": "A person died.", "case": case.pk})
    incident = Incident.objects.get()
    assert response.status_code == 302 and response.url == f"{LIST}{incident.pk}/"
    assert incident.case == case and incident.created_by == officer
    assert AuditEvent.objects.get(action="incident.created").actor_name == officer.username
    page = client.get(response.url).content.decode()
    assert "Due in 8 d 23 h" in page
    assert f"/audit/cases/{case.pk}/" in page


def test_form_errors_are_shown_not_500(make_user, case):
    client = client_for(make_user("compliance_officer"))
    other = make_case("tx-1", system="fraud-check", point="tx-review")
    response = client.post(NEW, {"system": "credit-scoring", "kind": "death", "aware_at": "2999-01-01T00:00",
                                 "description": "x", "case": other.pk})
    assert response.status_code == 400
    content = response.content.decode()
    assert "Awareness cannot be in the future." in content
    response = client.post(NEW, {"system": "credit-scoring", "kind": "death", "aware_at": "2026-01-01T00:00",
                                 "description": "x", "case": other.pk})
    assert response.status_code == 400
    assert "belongs to another AI system" in response.content.decode()
    response = client.post(NEW, {"system": "nope", "kind": "flood", "aware_at": "never", "description": "a\x00b"})
    assert response.status_code == 400
    assert not Incident.objects.exists()


def test_officer_moves_the_status_on_the_detail_page(make_user, case):
    officer = make_user("compliance_officer")
    incident = file_incident(actor=officer, kind="critical_infrastructure",
                             aware_at=timezone.now() - dt.timedelta(days=3))
    client = client_for(officer)
    page = client.get(f"{LIST}{incident.pk}/").content.decode()
    assert "Overdue by 1 d" in page
    assert '<option value="initial_report">' in page and '<option value="closed">' not in page
    response = client.post(f"{LIST}{incident.pk}/", {"status": "initial_report", "note": "Sent to the MSA."})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == "initial_report"
    page = client.get(f"{LIST}{incident.pk}/").content.decode()
    assert "Reported late." in page and "Sent to the MSA." in page
    # A move the flow does not allow is an error on the form, not a change.
    response = client.post(f"{LIST}{incident.pk}/", {"status": "aware", "note": ""})
    assert response.status_code == 400
    incident.refresh_from_db()
    assert incident.status == "initial_report"


def test_manager_reads_but_cannot_change(make_user, case):
    incident = file_incident(actor=make_user("compliance_officer"), aware_at=timezone.now())
    client = client_for(make_user("manager"))
    assert client.get(LIST).status_code == 200
    page = client.get(f"{LIST}{incident.pk}/")
    assert page.status_code == 200
    assert "Move to" not in page.content.decode()
    assert client.get(NEW).status_code == 403
    assert client.post(f"{LIST}{incident.pk}/", {"status": "initial_report"}).status_code == 403
    incident.refresh_from_db()
    assert incident.status == "aware"


def test_list_filters_and_overdue_badge(make_user, case):
    officer = make_user("compliance_officer")
    now = timezone.now()
    overdue = file_incident(actor=officer, kind="death", aware_at=now - dt.timedelta(days=11), title="Overdue one")
    file_incident(actor=officer, kind="bias", aware_at=now, title="Bias one")
    client = client_for(officer)
    page = client.get(LIST).content.decode()
    assert "Overdue one" in page and "Bias one" in page and "Overdue by 1 d" in page
    page = client.get(LIST, {"overdue": "yes"}).content.decode()
    assert "Overdue one" in page and "Bias one" not in page
    page = client.get(LIST, {"kind": "bias", "system": "credit-scoring"}).content.decode()
    assert "Bias one" in page and "Overdue one" not in page
    response = client.get(LIST, {"kind": "flood", "system": "x\x00"})
    assert response.status_code == 200
    assert "No incidents match." in response.content.decode()
    assert f'href="{LIST}{overdue.pk}/"' in client.get(LIST).content.decode()


def test_unknown_incident_page_is_404(make_user):
    assert client_for(make_user("compliance_officer")).get(f"{LIST}999999/").status_code == 404


def test_the_new_incident_form_starts_with_no_kind_selected(make_user, case):
    """Nobody files a "death" (the shortest Art. 73 clock) by skipping the field."""
    client = client_for(make_user("compliance_officer"))
    form = client.get(NEW).context["form"]

    assert form["kind"].value() in (None, "")
    assert form.fields["kind"].choices[0] == ("", "Choose the kind of incident")
    response = client.post(NEW, {"system": "credit-scoring", "aware_at": "2026-01-01T00:00", "description": "x"})
    assert response.status_code == 400
    assert "kind" in response.context["form"].errors
    assert not Incident.objects.exists()
