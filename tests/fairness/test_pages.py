"""The bias-audit pages: list, request form, audit results; who may open them."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from fairness.models import AuditStatus, BiasAudit
from fairness.services import bias_audit_request
from tests.fairness.factories import add_cases, make_audited_system
from tests.fairness.test_audits import BALANCED, DISPARITY

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def flagged_audit(db, django_capture_on_commit_callbacks):
    system, point = make_audited_system()
    add_cases(system, point, DISPARITY)
    add_cases(system, point, [(12, "x", "approve", "approve", None)])
    with django_capture_on_commit_callbacks(execute=True):
        audit = bias_audit_request(actor=None, system=system, attribute="gender")
    audit.refresh_from_db()
    assert audit.status == AuditStatus.DONE and audit.flagged
    return audit


@pytest.mark.parametrize("role", ["compliance_officer", "manager", "admin"])
def test_oversight_roles_see_the_list_and_the_audit(role, flagged_audit, make_user):
    client = client_for(make_user(role))
    listing = client.get("/fairness/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert f'href="/fairness/{flagged_audit.pk}/"' in html and "flagged" in html
    assert f'href="/compliance/incidents/{flagged_audit.incident_id}/"' in html
    assert 'href="/fairness/"' in html  # the navigation link

    page = client.get(f"/fairness/{flagged_audit.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    # Rates as %, differences as percentage points, the ratio as a ratio; AI and final side by side.
    assert "30.0 %" in html and "60.0 %" in html
    assert "30.0 pp" in html  # demographic parity difference of the AI labels (60 % − 30 %)
    assert "0.50" in html  # disparate impact ratio of the AI labels
    assert "AI labels" in html and "Final labels" in html
    assert "adverse impact" in html  # the four-fifths verdict
    assert "insufficient n" in html  # group x (12 cases)
    assert f"/compliance/incidents/{flagged_audit.incident_id}/" in html
    assert "≥ 0.80" in html and "≤ 10.0 pp" in html  # the thresholds
    assert 'http-equiv="refresh"' not in html  # done: no more refreshing


@pytest.mark.parametrize("role", ["reviewer", "integration"])
def test_other_roles_are_refused(role, flagged_audit, make_user):
    client = client_for(make_user(role))
    for path in ("/fairness/", "/fairness/new/", f"/fairness/{flagged_audit.pk}/"):
        assert client.get(path).status_code == 403


def test_anonymous_users_are_sent_to_log_in(flagged_audit):
    response = Client().get(f"/fairness/{flagged_audit.pk}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_unknown_audit_is_404(make_user):
    assert client_for(make_user("manager")).get("/fairness/424242/").status_code == 404


def test_list_filters_by_system_and_survives_unknown_ones(flagged_audit, make_user):
    make_audited_system("other-system")
    client = client_for(make_user("compliance_officer"))
    assert f"/fairness/{flagged_audit.pk}/" not in client.get("/fairness/?system=other-system").content.decode()
    response = client.get("/fairness/?system=nope%00")
    assert response.status_code == 200 and "Unknown AI system" in response.content.decode()


def test_the_form_requests_an_audit(make_user, django_capture_on_commit_callbacks):
    system, point = make_audited_system()
    add_cases(system, point, BALANCED)
    officer = make_user("compliance_officer")
    client = client_for(officer)
    form = client.get("/fairness/new/?system=credit-scoring")
    assert form.status_code == 200
    html = form.content.decode()
    # Opened for one system: its attributes only (no per-system groups).
    assert "<optgroup" not in html and 'value="age_band"' in html
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/fairness/new/", {"system": "credit-scoring", "attribute": "gender",
                                                  "period_from": "", "period_to": ""})
    audit = BiasAudit.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/fairness/{audit.pk}/"
    assert audit.requested_by == officer and audit.status == AuditStatus.DONE
    assert AuditEvent.objects.filter(action="bias_audit.requested", actor_id=officer.pk).count() == 1
    page = client.get(response["Location"]).content.decode()
    assert "Within thresholds" in page and "passes" in page


def test_the_form_lists_each_systems_attributes_once(make_user):
    """Opened for a system: its attributes only, each once (not "gender" once per system)."""
    make_audited_system()
    make_audited_system("other-system", attributes=["gender", "region"])
    client = client_for(make_user("compliance_officer"))

    form = client.get("/fairness/new/", {"system": "credit-scoring"}).context["form"]
    assert form.fields["attribute"].choices == [("", "Choose the attribute"), ("gender", "gender"),
                                                ("age_band", "age_band")]
    # Without a system: one group per system (the page's script shows only the chosen one's).
    form = client.get("/fairness/new/").context["form"]
    groups = dict(form.fields["attribute"].choices[1:])
    assert groups == {"Credit Scoring": [("gender", "gender"), ("age_band", "age_band")],
                      "Other System": [("gender", "gender"), ("region", "region")]}
    assert 'src="/static/js/fairness-form.js"' in client.get("/fairness/new/").content.decode()


def test_the_form_shows_errors_on_the_field(make_user):
    make_audited_system()
    make_audited_system("other-system", attributes=["region"])
    client = client_for(make_user("manager"))
    # "region" is an attribute of another system: refused on the attribute field.
    response = client.post("/fairness/new/", {"system": "credit-scoring", "attribute": "region"})
    assert response.status_code == 400
    assert "Must be one of the system&#x27;s protected attributes" in response.content.decode()
    response = client.post("/fairness/new/", {"system": "credit-scoring", "attribute": "gender",
                                              "period_from": "2026-03-01", "period_to": "2026-02-01"})
    assert response.status_code == 400 and "Must be later than from." in response.content.decode()
    response = client.post("/fairness/new/", {"system": "credit-scoring", "attribute": "gender",
                                              "period_from": "not a date"})
    assert response.status_code == 400
    assert not BiasAudit.objects.exists()


def test_an_open_audit_shows_its_progress_and_refreshes(make_user, django_capture_on_commit_callbacks):
    system, point = make_audited_system()
    add_cases(system, point, BALANCED)
    with django_capture_on_commit_callbacks(execute=False):
        audit = bias_audit_request(actor=None, system=system, attribute="gender")
    html = client_for(make_user("manager")).get(f"/fairness/{audit.pk}/").content.decode()
    assert "pending" in html and "0/0 chunks" in html and 'http-equiv="refresh"' in html


def test_the_console_shows_audits_read_only(flagged_audit, make_user):
    client = client_for(make_user("admin"))
    assert client.get("/admin/fairness/biasaudit/").status_code == 200
    page = client.get(f"/admin/fairness/biasaudit/{flagged_audit.pk}/change/")
    assert page.status_code == 200 and "gender" in page.content.decode()
    assert client.get(f"/admin/fairness/biasaudit/{flagged_audit.pk}/history/").status_code == 200
    add = client.get("/admin/fairness/biasaudit/add/")
    assert add.status_code == 302 and add["Location"] == "/fairness/new/"
    assert client.post(f"/admin/fairness/biasaudit/{flagged_audit.pk}/delete/", {"post": "yes"}).status_code == 403
    assert BiasAudit.objects.filter(pk=flagged_audit.pk).exists()
