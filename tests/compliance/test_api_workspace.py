"""REST API of the compliance workspace (api-v1: obligations, dossier; plus classification, FRIA, catalog)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditEvent
from compliance.models import FundamentalRightsAssessment, Obligation, ObligationEvidence
from tests.compliance.helpers import CREDIT_ANSWERS, classified, make_point, make_system
from tests.compliance.test_services import FRIA_CONTENTS

pytestmark = pytest.mark.django_db

SLUG = "credit-scoring"
BASE = f"/api/v1/systems/{SLUG}"
ROLES = ["compliance_officer", "manager", "reviewer", "integration", "admin"]

# (method, path, body, roles allowed); everything else gets 403, nobody at all 401.
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("get", f"{BASE}/classification/", None, {"compliance_officer", "manager", "admin"}),
    ("post", f"{BASE}/classification/", CREDIT_ANSWERS, {"compliance_officer", "admin"}),
    ("get", f"{BASE}/obligations/", None, {"compliance_officer", "admin"}),
    ("post", f"{BASE}/obligations/sync/", None, {"compliance_officer", "admin"}),
    ("get", f"{BASE}/obligations/AIA-26.2/", None, {"compliance_officer", "admin"}),
    ("patch", f"{BASE}/obligations/AIA-26.2/", {"status": "in_progress"}, {"compliance_officer", "admin"}),
    ("get", f"{BASE}/fria/", None, {"compliance_officer", "manager", "admin"}),
    ("post", f"{BASE}/fria/", FRIA_CONTENTS, {"compliance_officer", "admin"}),
    ("get", f"{BASE}/dossier/?format=html", None, {"compliance_officer", "admin"}),
    ("get", "/api/v1/requirements/", None, {"compliance_officer", "manager", "admin"}),
    ("get", "/api/v1/regulatory-calendar/", None, {"compliance_officer", "manager", "admin"}),
]


@pytest.fixture
def system() -> Any:
    system = classified(make_system(SLUG))
    make_point(system)
    return system


def call(client: Any, method: str, path: str, body: dict[str, Any] | None) -> Any:
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS,
                         ids=[f"{m}-{p.removeprefix('/api/v1/')}" for m, p, _, _ in ENDPOINTS])
def test_roles_allowed_and_denied(method: str, path: str, body: Any, allowed: set[str], system: Any,
                                  api_client_for: Any, anon_client: Any) -> None:
    response = call(anon_client, method, path, body)
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "not_authenticated"
    for role in ROLES:
        response = call(api_client_for(role), method, path, body)
        if role in allowed:
            assert 200 <= response.status_code < 300, (role, response.status_code, response.content[:300])
        else:
            assert response.status_code == 403, (role, response.status_code)
            assert response.json()["code"] == "forbidden"


# --- Classification --------------------------------------------------------------------------------------


def test_post_classification_stores_tier_and_generates_obligations(api_client_for: Any) -> None:
    make_system(SLUG, declared_tier="minimal")
    client = api_client_for("compliance_officer")
    response = client.post(f"{BASE}/classification/", {**CREDIT_ANSWERS, "reason": "Initial assessment"},
                           format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["classified_tier"], body["declared_tier"], body["risk_tier"]) == ("high", "minimal", "high")
    assert body["annex_iii_area"] == "5b"
    assert body["fria_required"] is True
    assert body["rationale"]["outcome"] == "high"
    assert "AIA-27.1" in body["obligations"]["created"]
    assert body["obligations"]["progress"]["met"] == 0
    [event] = AuditEvent.objects.filter(action="system.classified")
    assert event.reason == "Initial assessment"
    system_body = client.get(f"/api/v1/systems/{SLUG}/").json()
    assert system_body["risk_tier"] == "high"  # the classified tier wins in the systems API too


def test_prohibited_classification_blocks_via_api(api_client_for: Any, system: Any) -> None:
    response = api_client_for("admin").post(f"{BASE}/classification/", {"prohibited_practices": ["g"]},
                                            format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "blocked"
    assert AuditEvent.objects.filter(action="system.blocked", system_id=system.pk).exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"annex_iii": ["9z"]}, "annex_iii"),
    ({"annex_iii": "5b"}, "annex_iii"),
    ({"profiling": "yes"}, "profiling"),
    ({"art50": [50.1]}, "art50"),
    ({"colour": "blue"}, "colour"),
    ({"reason": "x" * 2001}, "reason"),
])
def test_bad_classification_input_names_the_field(body: dict[str, Any], field: str, system: Any,
                                                  api_client_for: Any) -> None:
    response = api_client_for("compliance_officer").post(f"{BASE}/classification/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_unknown_system_is_a_json_404(api_client_for: Any) -> None:
    client = api_client_for("compliance_officer")
    for path in ["/api/v1/systems/nope/classification/", "/api/v1/systems/nope/obligations/",
                 "/api/v1/systems/bad%00slug/dossier/", "/api/v1/systems/nope/fria/"]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"


def test_malformed_json_is_a_400(api_client_for: Any, system: Any) -> None:
    response = api_client_for("compliance_officer").post(f"{BASE}/classification/", "{not json",
                                                         content_type="application/json")
    assert response.status_code == 400


# --- Obligations -----------------------------------------------------------------------------------------


def test_obligation_list_follows_the_contract(api_client_for: Any, system: Any) -> None:
    response = api_client_for("compliance_officer").get(f"{BASE}/obligations/?page_size=500")
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"next", "previous", "results", "progress"}
    assert body["progress"]["total"] == Obligation.objects.filter(system=system).count() == len(body["results"])
    item = next(r for r in body["results"] if r["ref"] == "AIA-14.4.e")
    assert {"ref", "framework", "summary", "status", "owner", "evidence", "due"} <= set(item)
    assert item["framework"] == "EU_AI_ACT" and item["status"] == "open" and item["owner"] is None
    assert item["evidence"] == [] and item["due"] == "2027-12-02"
    assert item["portal_evidence"] == "intervention_points"
    assert "NIST-MANAGE-2.4" in item["related"]


def test_obligation_list_filters(api_client_for: Any, system: Any) -> None:
    client = api_client_for("compliance_officer")
    body = client.get(f"{BASE}/obligations/?framework=NIST_AI_RMF").json()
    assert body["results"] and {r["framework"] for r in body["results"]} == {"NIST_AI_RMF"}
    assert client.get(f"{BASE}/obligations/?status=met").json()["results"] == []
    for query, field in [("framework=GDPR", "framework"), ("status=done", "status")]:
        response = client.get(f"{BASE}/obligations/?{query}")
        assert response.status_code == 400 and field in response.json()


def test_obligation_list_query_count_does_not_grow(api_client_for: Any, system: Any,
                                                   django_assert_max_num_queries: Any) -> None:
    client = api_client_for("compliance_officer")
    client.get(f"{BASE}/obligations/")  # warm the role cache of the token user
    with django_assert_max_num_queries(12):
        response = client.get(f"{BASE}/obligations/?page_size=500")
    assert len(response.json()["results"]) > 40


def test_patch_obligation_updates_and_audits(api_client_for: Any, make_user: Any, system: Any) -> None:
    officer = make_user("compliance_officer", "officer7")
    client = api_client_for(officer)
    response = client.patch(f"{BASE}/obligations/AIA-26.2/", {
        "status": "met", "owner": "officer7", "due": "2027-03-31", "evidence_url": "https://lms.example/course/12",
        "evidence_title": "Reviewer training curriculum", "capture_portal_evidence": True, "reason": "Q1 review",
    }, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["owner"], body["due"]) == ("met", "officer7", "2027-03-31")
    assert [e["kind"] for e in body["evidence"]] == ["link", "portal"]
    assert body["evidence"][0]["url"] == "https://lms.example/course/12"
    assert body["evidence"][1]["portal_kind"] == "reviewer_competence" and len(body["evidence"][1]["sha256"]) == 64
    event = AuditEvent.objects.filter(action="obligation.updated").order_by("id").last()
    assert event.actor_name == "officer7" and event.reason == "Q1 review"
    assert '"status":"met"' in event.payload


@pytest.mark.parametrize(("body", "field"), [
    ({"status": "done"}, "status"),
    ({"status": "met"}, "status"),  # no evidence yet
    ({"status": "not_applicable"}, "note"),  # no reason given
    ({"due": "next tuesday"}, "due"),
    ({"evidence_url": "not a url"}, "evidence_url"),
    ({"owner": "ghost"}, "owner"),
    ({"note": "bad\x00note"}, "note"),
    ({"applicable": False}, "applicable"),
    ({}, "non_field_errors"),
])
def test_bad_obligation_patch_names_the_field(body: dict[str, Any], field: str, system: Any,
                                              api_client_for: Any) -> None:
    response = api_client_for("compliance_officer").patch(f"{BASE}/obligations/AIA-26.2/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_patch_with_a_file_upload(api_client_for: Any, system: Any, settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path
    client = api_client_for("compliance_officer")
    upload = SimpleUploadedFile("notice.pdf", b"%PDF-1.4 works council notice", content_type="application/pdf")
    response = client.patch(f"{BASE}/obligations/AIA-26.7/", {"evidence_file": upload, "status": "met"},
                            format="multipart")
    assert response.status_code == 200, response.content
    evidence = ObligationEvidence.objects.get(obligation__requirement__ref="AIA-26.7")
    assert evidence.sha256 == hashlib.sha256(b"%PDF-1.4 works council notice").hexdigest()
    url = response.json()["evidence"][0]["url"]
    assert url == f"/compliance/systems/{SLUG}/evidence/{evidence.pk}/"


def test_unknown_obligation_ref_is_404(api_client_for: Any, system: Any) -> None:
    client = api_client_for("compliance_officer")
    assert client.get(f"{BASE}/obligations/AIA-99.9/").status_code == 404
    assert client.patch(f"{BASE}/obligations/bad%00ref/", {"status": "open"}, format="json").status_code == 404


def test_sync_endpoint_reports_changes(api_client_for: Any) -> None:
    make_system(SLUG, declared_tier="high", annex_iii_area="5b")
    # Obligations follow the system: registering it generated them already.
    assert Obligation.objects.filter(system__slug=SLUG, requirement__ref="AIA-27.1").exists()
    Obligation.history.all().delete()
    Obligation.objects.filter(system__slug=SLUG, requirement__ref="AIA-27.1").delete()
    response = api_client_for("compliance_officer").post(f"{BASE}/obligations/sync/")
    assert response.status_code == 200
    assert response.json()["created"] == ["AIA-27.1"]
    assert response.json()["progress"]["total"] == Obligation.objects.filter(system__slug=SLUG).count()


# --- FRIA -----------------------------------------------------------------------------------------------


def test_fria_versions_through_the_api(api_client_for: Any, system: Any) -> None:
    client = api_client_for("compliance_officer")
    assert client.get(f"{BASE}/fria/").json() == {"required": True, "latest": None, "versions": []}
    first = client.post(f"{BASE}/fria/", FRIA_CONTENTS, format="json")
    assert first.status_code == 201 and first.json()["version"] == 1
    second = client.post(f"{BASE}/fria/", {**FRIA_CONTENTS, "change_summary": "Scope widened"}, format="json")
    assert second.json()["version"] == 2
    overview = client.get(f"{BASE}/fria/").json()
    assert overview["latest"]["version"] == 2 and [v["version"] for v in overview["versions"]] == [2, 1]
    assert client.get(f"{BASE}/fria/1/").json()["processes"] == FRIA_CONTENTS["processes"]
    assert client.get(f"{BASE}/fria/9/").status_code == 404
    assert AuditEvent.objects.filter(action="fria.saved").count() == 2


@pytest.mark.parametrize(("change", "field"), [
    ({"mitigation": ""}, "mitigation"),
    ({"processes": None}, "processes"),
    ({"affected_persons": 12}, "affected_persons"),
    ({"first_use_on": "soon"}, "first_use_on"),
    ({"extra": "x"}, "extra"),
])
def test_bad_fria_input_names_the_field(change: dict[str, Any], field: str, system: Any,
                                        api_client_for: Any) -> None:
    response = api_client_for("compliance_officer").post(f"{BASE}/fria/", {**FRIA_CONTENTS, **change},
                                                         format="json")
    assert response.status_code == 400 and field in response.json()
    assert FundamentalRightsAssessment.objects.count() == 0


# --- Dossier --------------------------------------------------------------------------------------------


def test_dossier_pdf_with_its_hash(api_client_for: Any, system: Any) -> None:
    response = api_client_for("compliance_officer").get(f"{BASE}/dossier/?format=pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment; filename=\"dossier-credit-scoring-")
    digest = hashlib.sha256(response.content).hexdigest()
    assert response["X-Content-SHA256"] == digest
    event = AuditEvent.objects.get(action="dossier.generated")
    assert digest in event.payload and '"format":"pdf"' in event.payload


def test_dossier_defaults_to_pdf_and_refuses_unknown_formats(api_client_for: Any, system: Any) -> None:
    client = api_client_for("admin")
    assert client.get(f"{BASE}/dossier/")["Content-Type"] == "application/pdf"
    response = client.get(f"{BASE}/dossier/?format=docx")
    assert response.status_code == 400 and "format" in response.json()
    html = client.get(f"{BASE}/dossier/?format=html")
    assert html["Content-Type"].startswith("text/html") and b"Annex IV" in html.content


# --- Catalog ---------------------------------------------------------------------------------------------


def test_requirements_and_calendar(api_client_for: Any) -> None:
    client = api_client_for("manager")
    body = client.get("/api/v1/requirements/?framework=EU_AI_ACT").json()
    assert body["catalog"] == "2026.1" and body["date_basis"] == "amended"
    fria = next(r for r in body["results"] if r["ref"] == "AIA-27.1")
    assert fria["duty_holder"] == "deployer"
    assert (fria["applies_from_original"], fria["applies_from_amended"]) == ("2026-08-02", "2027-12-02")
    assert client.get("/api/v1/requirements/?framework=X").status_code == 400
    calendar = client.get("/api/v1/regulatory-calendar/").json()
    regime = next(m for m in calendar["milestones"] if m["key"] == "annex-iii-regime")
    assert (regime["original"], regime["amended"]) == ("2026-08-02", "2027-12-02")
    assert "AIA-26.2" in regime["requirements"]


def test_schema_documents_the_workspace(api_client_for: Any) -> None:
    response = api_client_for("compliance_officer").get("/api/schema/?format=json")
    paths = response.json()["paths"] if response["Content-Type"].startswith("application/json") else None
    if paths is None:
        import yaml

        paths = yaml.safe_load(response.content)["paths"]
    for path in ["/api/v1/systems/{slug}/obligations/", "/api/v1/systems/{slug}/dossier/",
                 "/api/v1/systems/{slug}/classification/", "/api/v1/systems/{slug}/obligations/{ref}/"]:
        assert path in paths, path
