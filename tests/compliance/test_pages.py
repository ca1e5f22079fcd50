"""Pages of the compliance workspace: permissions, the classification wizard, forms calling the services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from compliance.models import FundamentalRightsAssessment, Obligation
from incidents.models import Incident
from reviews.models import AISystem
from tests.compliance.helpers import classified, make_point, make_system
from tests.compliance.test_services import FRIA_CONTENTS

pytestmark = pytest.mark.django_db

SLUG = "credit-scoring"
PAGE = f"/compliance/systems/{SLUG}"


@pytest.fixture
def system() -> AISystem:
    system = classified(make_system(SLUG))
    make_point(system)
    return system


@pytest.fixture
def client_for(make_user: Any) -> Any:
    def factory(role: str) -> Client:
        user = make_user(role)
        client = Client()
        client.force_login(user)
        client.user = user  # type: ignore[attr-defined]
        return client

    return factory


def obligation_pk(system: AISystem, ref: str) -> int:
    return Obligation.objects.get(system=system, requirement__ref=ref).pk


READ_PAGES = ["/compliance/", "/compliance/calendar/", "/compliance/catalog/", f"{PAGE}/", f"{PAGE}/obligations/",
              f"{PAGE}/fria/"]
OFFICER_PAGES = ["/compliance/systems/new/", f"{PAGE}/edit/", f"{PAGE}/classify/scope/", f"{PAGE}/dossier/"]


def test_officers_open_every_page(system: AISystem, client_for: Any) -> None:
    client = client_for("compliance_officer")
    for path in [*READ_PAGES, *OFFICER_PAGES, f"{PAGE}/obligations/{obligation_pk(system, 'AIA-26.2')}/"]:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert b'href="/compliance/calendar/"' in response.content  # the workspace navigation


def test_managers_read_but_do_not_change(system: AISystem, client_for: Any) -> None:
    client = client_for("manager")
    for path in READ_PAGES:
        assert client.get(path).status_code == 200, path
    for path in [*OFFICER_PAGES, f"{PAGE}/dossier.pdf"]:
        assert client.get(path).status_code == 403, path
    assert client.post(f"{PAGE}/obligations/sync/").status_code == 403
    assert client.post(f"{PAGE}/fria/", FRIA_CONTENTS).status_code == 403
    board = client.get(f"{PAGE}/obligations/").content.decode()
    assert "Regenerate from catalog" not in board and ">Update<" not in board


@pytest.mark.parametrize("role", ["reviewer", "integration"])
def test_reviewers_and_integrations_are_refused_everything(role: str, system: AISystem, client_for: Any) -> None:
    client = client_for(role)
    for path in [*READ_PAGES, *OFFICER_PAGES, f"{PAGE}/dossier.pdf", f"{PAGE}/fria/1/"]:
        assert client.get(path).status_code == 403, path
    assert client.post(f"{PAGE}/classify/summary/", {}).status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(system: AISystem) -> None:
    response = Client().get("/compliance/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_register_and_edit_a_system_through_the_forms(client_for: Any) -> None:
    client = client_for("compliance_officer")
    response = client.post("/compliance/systems/new/", {
        "slug": "claims-triage", "name": "Claims triage", "purpose": "Routes insurance claims.", "provider": "Acme",
        "role": "deployer", "sector": "insurance", "declared_tier": "", "annex_iii_area": "",
        "labels": "fast, manual", "positive_label": "fast", "protected_attributes": "age_band",
        "retention_days": 200,
    })
    assert response.status_code == 302 and response["Location"] == "/compliance/systems/claims-triage/classify/"
    system = AISystem.objects.get(slug="claims-triage")
    assert system.labels == ["fast", "manual"] and system.protected_attributes == ["age_band"]
    assert AuditEvent.objects.filter(action="system.created", system_id=system.pk).exists()
    response = client.post("/compliance/systems/claims-triage/edit/", {
        "slug": "ignored", "name": "Claims triage v2", "purpose": "Routes claims.", "provider": "Acme",
        "role": "deployer", "sector": "insurance", "declared_tier": "limited", "annex_iii_area": "",
        "labels": "fast, manual", "positive_label": "fast", "protected_attributes": "", "retention_days": 200,
        "reason": "Renamed",
    })
    assert response.status_code == 302
    system.refresh_from_db()
    assert (system.name, system.slug, system.declared_tier) == ("Claims triage v2", "claims-triage", "limited")
    assert AuditEvent.objects.filter(action="system.updated", system_id=system.pk, reason="Renamed").exists()


def test_system_form_shows_service_errors_next_to_fields(system: AISystem, client_for: Any) -> None:
    client = client_for("compliance_officer")
    response = client.post("/compliance/systems/new/", {
        "slug": "new-one", "name": "Dup", "role": "deployer", "labels": "a, a", "retention_days": 200,
    })
    assert response.status_code == 400
    assert b'id="err-labels"' in response.content and b"must not contain duplicates" in response.content
    response = client.post("/compliance/systems/new/", {
        "slug": SLUG, "name": "Dup", "role": "deployer", "labels": "a, b", "retention_days": 200,
    })
    assert response.status_code == 400
    assert b'id="err-slug"' in response.content


def test_wizard_walks_the_decision_order_and_stores_the_tier(client_for: Any) -> None:
    make_system(SLUG)
    client = client_for("compliance_officer")
    assert client.get(f"{PAGE}/classify/")["Location"] == f"{PAGE}/classify/scope/"
    response = client.post(f"{PAGE}/classify/scope/", {"direction": "next"})
    assert response["Location"] == f"{PAGE}/classify/prohibited/"
    response = client.post(f"{PAGE}/classify/prohibited/", {"direction": "next"})
    assert response["Location"] == f"{PAGE}/classify/high-risk/"
    response = client.post(f"{PAGE}/classify/high-risk/", {"annex_iii": ["5b"], "direction": "next"})
    assert response["Location"] == f"{PAGE}/classify/exception/"
    response = client.post(f"{PAGE}/classify/exception/", {"exception_6_3": ["d"], "profiling": "on"})
    assert response["Location"] == f"{PAGE}/classify/transparency/"
    # Back keeps what was answered.
    response = client.post(f"{PAGE}/classify/transparency/", {"direction": "back"})
    assert response["Location"] == f"{PAGE}/classify/exception/"
    page = client.get(f"{PAGE}/classify/exception/").content.decode()
    assert 'value="d" id="id_exception_6_3_3" checked' in page
    assert 'name="profiling" id="id_profiling" checked' in page
    client.post(f"{PAGE}/classify/exception/", {"exception_6_3": ["d"], "profiling": "on"})
    response = client.post(f"{PAGE}/classify/transparency/", {})
    assert response["Location"] == f"{PAGE}/classify/summary/"
    summary = client.get(f"{PAGE}/classify/summary/").content.decode()
    assert "High risk (Annex III 5(b))" in summary and "FRIA required" in summary
    assert not AuditEvent.objects.filter(action="system.classified").exists()  # nothing stored before confirming
    response = client.post(f"{PAGE}/classify/summary/", {"reason": "Wizard run", "direction": "save"})
    assert response["Location"] == f"{PAGE}/"
    system = AISystem.objects.get(slug=SLUG)
    assert system.classified_tier == "high" and system.annex_iii_area == "5b"
    assert system.classification_rationale["exception_6_3"]["profiling_override"] is True
    assert AuditEvent.objects.filter(action="system.classified", reason="Wizard run").count() == 1
    detail = client.get(f"{PAGE}/").content.decode()
    assert "A fundamental rights impact assessment is required" in detail


def test_wizard_stops_early_for_a_prohibited_practice(client_for: Any) -> None:
    make_system(SLUG)
    client = client_for("compliance_officer")
    client.get(f"{PAGE}/classify/")
    client.post(f"{PAGE}/classify/scope/", {})
    response = client.post(f"{PAGE}/classify/prohibited/", {"prohibited_practices": ["f"]})
    assert response["Location"] == f"{PAGE}/classify/summary/"
    client.post(f"{PAGE}/classify/summary/", {"direction": "save"})
    system = AISystem.objects.get(slug=SLUG)
    assert (system.classified_tier, system.status) == ("prohibited", "blocked")
    assert AuditEvent.objects.filter(action="system.blocked", system_id=system.pk).exists()


def test_wizard_rejects_unknown_choices(client_for: Any) -> None:
    make_system(SLUG)
    client = client_for("compliance_officer")
    response = client.post(f"{PAGE}/classify/high-risk/", {"annex_iii": ["9z"]})
    assert response.status_code == 400 and b"err-annex_iii" in response.content
    assert client.get(f"{PAGE}/classify/nowhere/").status_code == 404


def test_obligation_form_updates_with_evidence(system: AISystem, client_for: Any, settings: Any,
                                               tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path
    client = client_for("compliance_officer")
    pk = obligation_pk(system, "AIA-26.7")
    url = f"{PAGE}/obligations/{pk}/"
    response = client.post(url, {"status": "met", "owner": "", "due": "", "note": ""})
    assert response.status_code == 400 and b"err-status" in response.content  # evidence first
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("notice.txt", b"informed", content_type="text/plain")
    response = client.post(url, {"status": "met", "owner": client.user.username, "due": "2027-01-31", "note": "",
                                 "evidence_file": upload, "evidence_title": "Works council notice"})
    assert response.status_code == 302
    obligation = Obligation.objects.get(pk=pk)
    assert obligation.status == "met" and obligation.owner == client.user
    evidence = obligation.evidence.get()
    download = client.get(f"{PAGE}/evidence/{evidence.pk}/")
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"informed"
    assert AuditEvent.objects.filter(action="obligation.updated", object_id=str(pk)).count() == 2


def test_fria_form_saves_a_new_version(system: AISystem, client_for: Any) -> None:
    client = client_for("compliance_officer")
    page = client.get(f"{PAGE}/fria/").content.decode()
    assert "Loan review: reviewed by 1 qualified person(s)" in page  # (e) prefilled from the intervention points
    response = client.post(f"{PAGE}/fria/", {**FRIA_CONTENTS, "change_summary": "First"})
    assert response.status_code == 302
    response = client.post(f"{PAGE}/fria/", {**FRIA_CONTENTS, "mitigation": ""})
    assert response.status_code == 400 and b"err-mitigation" in response.content
    assert list(FundamentalRightsAssessment.objects.values_list("version", flat=True)) == [1]
    assert client.get(f"{PAGE}/fria/1/").status_code == 200
    assert AuditEvent.objects.filter(action="fria.saved").count() == 1


def test_dossier_download_from_the_page(system: AISystem, client_for: Any) -> None:
    client = client_for("compliance_officer")
    response = client.get(f"{PAGE}/dossier.pdf")
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    html = client.get(f"{PAGE}/dossier.html")
    assert html["Content-Type"].startswith("text/html")
    assert AuditEvent.objects.filter(action="dossier.generated").count() == 2


def test_serious_incident_suspends_the_system_in_one_step(system: AISystem, client_for: Any) -> None:
    incident = Incident.objects.create(system=system, kind="serious_harm", description="Wrong refusals",
                                       aware_at=timezone.now(), report_due_at=timezone.now() + timedelta(days=15))
    client = client_for("compliance_officer")
    detail = client.get(f"{PAGE}/").content.decode()
    assert "Suspend system" in detail and "Due in" in detail
    response = client.post(f"{PAGE}/suspend/", {"incident": incident.pk})
    assert response.status_code == 302
    system.refresh_from_db()
    assert system.status == "halted" and f"incident #{incident.pk}" in system.status_reason
    assert AuditEvent.objects.filter(action="system.halted", system_id=system.pk).exists()
    other = make_system("other-system")
    foreign = Incident.objects.create(system=other, kind="death", description="x", aware_at=timezone.now())
    assert client.post(f"{PAGE}/suspend/", {"incident": foreign.pk}).status_code == 404


def test_calendar_shows_both_date_sets(client_for: Any) -> None:
    page = client_for("manager").get("/compliance/calendar/").content.decode()
    assert "2 Aug 2026" in page and "2 Dec 2027" in page and "2 Aug 2028" in page
    assert "<strong>Art. 27</strong>" in page and ">27.1</code>" in page


def test_console_shows_the_workspace_read_only(system: AISystem, client_for: Any) -> None:
    client = client_for("admin")
    for path in ["/admin/compliance/obligation/", "/admin/compliance/requirement/", "/admin/compliance/catalogversion/",
                 f"/admin/compliance/obligation/{obligation_pk(system, 'AIA-26.2')}/change/"]:
        assert client.get(path).status_code == 200, path
    assert client.get("/admin/compliance/obligation/add/").status_code == 403
