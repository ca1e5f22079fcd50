"""The dossier shows the oversight in operation; the Art. 73 incident report draft (issue 13 item 7)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from audit.models import AuditEvent
from compliance.dossier import dossier_context, render_html
from compliance.services.dossier import dossier_generate
from dashboard.models import MonitoringAlert
from incidents.services import incident_create
from records.services import biometric_use_start, legal_hold_place
from reviews.models import Decision
from reviews.services.decisions import decision_record
from reviews.services.queue import claim_next
from reviews.services.systems import system_halt, system_resume
from tests.reviews.factories import ingest, make_system_with_point
from tests.reviews.queue_helpers import make_reviewer, make_user

pytestmark = pytest.mark.django_db

BIOMETRIC = {"annex_iii_area": "1a", "non_match_label": "no_match"}


def pdf_text(content: bytes) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(content)).pages)


@pytest.fixture
def biometric():
    """A face-identification system with one match verified by two people, a blind and a shown decision,
    a halt and resumption, a period of use, a legal hold and a monitoring alert."""
    system, point = make_system_with_point("face-id", "verify", labels=("match", "no_match"),
                                           system_fields=BIOMETRIC, confidence_below=0.5, reviewers_required=2)
    officer = make_user("compliance_officer", "officer1")
    biometric_use_start(actor=officer, system=system, reference_database="watchlist-2026",
                        started_at=timezone.now() - dt.timedelta(hours=2), purpose="search for a missing person")
    integration = make_user("integration", systems=[system.slug])
    case = ingest(integration, system="face-id", point="verify", external_id="probe-1", label="match",
                  confidence=0.97)
    first, second = make_reviewer("ana", systems=[system]), make_reviewer("ben", systems=[system])
    for reviewer in (first, second):
        assert claim_next(reviewer=reviewer).pk == case.pk
        decision_record(case=case, reviewer=reviewer, outcome="approve", label=None, rationale="")
    # ana follows the AI when she sees it and disagrees with it in blind review: a gap of 1.
    shown, hidden = (ingest(integration, system="face-id", point="verify", external_id=f"probe-{i}",
                            label="match", confidence=0.9) for i in (2, 3))
    Decision.objects.create(case=shown, reviewer=first, outcome="approve", label="match", ai_shown=True)
    Decision.objects.create(case=hidden, reviewer=first, outcome="override", label="no_match", ai_shown=False)
    system_halt(actor=officer, system=system, reason="false matches reported by the field team")
    system_resume(actor=officer, system=system, reason="threshold recalibrated")
    legal_hold_place(actor=officer, system=system, reason="court order 12/2026", reference="LH-7")
    MonitoringAlert.objects.create(intervention_point=point, system=system, metric="confidence_psi",
                                   day=dt.date(2026, 11, 20), value=0.31, reference=None, severity="critical",
                                   message="The AI's confidence distribution shifted: PSI 0.310")
    system.refresh_from_db()
    return system, officer


def test_the_dossier_html_shows_the_oversight_in_operation(biometric):
    system, _officer = biometric
    context = dossier_context(system, generated_by="test")
    ana = next(r for r in context["reviewer_points"] if r["reviewer"] == "ana")
    assert ana["point"] == "verify"
    assert ana["agreement_ai_hidden"] == 0.0 and ana["automation_bias_gap"] == pytest.approx(1.0)
    html = render_html(context).decode()
    assert "Art. 14(5): identification results verified by two people" in html
    assert "Decided with two or more different reviewers" in html
    assert 'data-reviewer-point="ana/verify"' in html and "1.000" in html
    assert "false matches reported by the field team" in html and "threshold recalibrated" in html
    assert "watchlist-2026" in html and "search for a missing person" in html
    assert "court order 12/2026" in html and "LH-7" in html
    assert "PSI 0.310" in html
    assert "0 reopens of 0 decided cases" in html


def test_the_dossier_pdf_shows_the_two_person_rule_and_the_automation_bias_gap(biometric):
    system, officer = biometric
    dossier = dossier_generate(actor=officer, system=system, fmt="pdf")
    text = pdf_text(dossier.content)
    assert "identification results verified by two people" in text
    assert "Decided with two or more different reviewers" in text
    assert "Automation bias and gold accuracy per reviewer and intervention point" in text
    assert "Automation-bias gap" in text and "1.000" in text
    assert "Record of use of remote biometric identification" in text


def _incident(system):
    return incident_create(actor=None, system=system, kind="serious_harm",
                           aware_at=timezone.now() - dt.timedelta(days=1), title="Wrongful stop after a false match",
                           description="A passer-by was stopped after a false match at the station entrance.")


def test_the_incident_report_pdf_holds_the_incidents_facts(biometric):
    system, officer = biometric
    incident = _incident(system)
    client = Client()
    client.force_login(officer)
    response = client.get(f"/compliance/incident-reports/{incident.pk}.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content)
    assert f"Incident #{incident.pk}" in text
    assert "A passer-by was stopped after a false match at the station entrance." in text
    assert "Art. 73(2)" in text and "face-id" in text
    assert "PSI 0.310" in text  # the system's monitoring findings
    event = AuditEvent.objects.get(action="incident.report_drafted")
    assert event.object_id == str(incident.pk) and response["X-Content-SHA256"] in event.payload


@pytest.mark.parametrize("role", ["manager", "reviewer", "integration"])
def test_the_incident_report_is_denied_to_other_roles(biometric, role):
    system, _officer = biometric
    incident = _incident(system)
    client = Client()
    client.force_login(make_user(role))
    assert client.get(f"/compliance/incident-reports/{incident.pk}.pdf").status_code == 403
    assert not AuditEvent.objects.filter(action="incident.report_drafted").exists()


def test_an_unknown_incident_is_404(biometric):
    _system, officer = biometric
    client = Client()
    client.force_login(officer)
    assert client.get("/compliance/incident-reports/999999.pdf").status_code == 404
