"""Rich content through the API: display configurations, explanations, decision fields, attachments."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from audit.models import AuditEvent
from reviews.content import clean_form_values, sniff, validate_explanation
from reviews.models import Case, CaseAttachment, InterventionPoint
from reviews.services.webhooks import render_body
from tests.reviews.queue_helpers import client_for, make_case, make_point, make_reviewer, make_system, make_user

pytestmark = pytest.mark.django_db

# A 1x1 PNG (a real, decodable image).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'

DISPLAY = [
    {"field": "scan", "renderer": "image", "label": "X-ray"},
    {"field": "notes", "renderer": "text", "highlights": "spans"},
]
DECISION_FIELDS = [
    {"name": "severity", "label": "Severity", "type": "single_choice", "choices": ["low", "high"], "required": True},
    {"name": "tags", "label": "Tags", "type": "multi_choice", "choices": ["blur", "crop"]},
    {"name": "score", "label": "Score", "type": "number", "min": 0, "max": 10},
    {"name": "note", "label": "Note", "type": "text", "max_length": 20},
]


@pytest.fixture(autouse=True)
def _attachment_storage(tmp_path: Any) -> Iterator[None]:
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                        "OPTIONS": {"location": str(tmp_path / "attachments")}},
    }
    with override_settings(STORAGES=storages):
        yield


def _point_url(point: InterventionPoint) -> str:
    return f"/api/v1/systems/{point.system.slug}/intervention-points/{point.slug}/"


# --- display configuration and decision fields ---------------------------------------------------


def test_officer_sets_display_and_fields_and_version_bumps() -> None:
    point = make_point()
    officer = client_for(make_user("compliance_officer"))
    response = officer.patch(_point_url(point), {"display": DISPLAY, "decision_fields": DECISION_FIELDS,
                                                 "reason": "show the scan"}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["version"] == point.version + 1
    assert body["display"][0] == {"field": "scan", "renderer": "image", "label": "X-ray"}
    assert [f["name"] for f in body["decision_fields"]] == ["severity", "tags", "score", "note"]
    event = AuditEvent.objects.filter(action="intervention_point.updated").latest("id")
    assert "display" in repr(event.__dict__) and "decision_fields" in repr(event.__dict__)


@pytest.mark.parametrize(("body", "field"), [
    ({"display": [{"field": "scan", "renderer": "flash"}]}, "display"),
    ({"display": [{"field": "../etc", "renderer": "image"}]}, "display"),
    ({"display": [{"field": "a", "renderer": "image", "highlights": "b"}]}, "display"),
    ({"display": "image"}, "display"),
    ({"decision_fields": [{"name": "x", "label": "X", "type": "single_choice"}]}, "decision_fields"),
    ({"decision_fields": [{"name": "Bad Name", "label": "X", "type": "text"}]}, "decision_fields"),
    ({"decision_fields": [{"name": "n", "label": "N", "type": "number", "min": 5, "max": 1}]}, "decision_fields"),
    ({"decision_fields": [{"name": "n", "label": "N", "type": "text", "max_length": 0}]}, "decision_fields"),
    ({"decision_fields": [{"name": "n", "label": "N", "type": "text"}, {"name": "n", "label": "M",
                                                                        "type": "text"}]}, "decision_fields"),
])
def test_bad_display_or_fields_are_400_naming_the_field(body: dict[str, Any], field: str) -> None:
    point = make_point()
    officer = client_for(make_user("compliance_officer"))
    response = officer.patch(_point_url(point), body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    point.refresh_from_db()
    assert point.version == 1


def test_reviewer_and_manager_may_not_change_display() -> None:
    point = make_point()
    for role in ("reviewer", "manager"):
        response = client_for(make_user(role)).patch(_point_url(point), {"display": DISPLAY}, format="json")
        assert response.status_code == 403


# --- explanations ------------------------------------------------------------------------------------


def _integration() -> Any:
    system = make_system()
    make_point(system, confidence_below=0.99)
    return client_for(make_user("integration", systems=[system.slug]))


def _submission(external_id: str, explanation: Any) -> dict[str, Any]:
    return {
        "system": "credit-scoring", "intervention_point": "loan-review", "external_id": external_id,
        "input": {"amount": 100},
        "prediction": {"label": "approve", "confidence": 0.5, "model_version": "v1", "explanation": explanation},
    }


def test_explanation_accepted_stored_returned_and_kept_out_of_audit() -> None:
    client = _integration()
    explanation = [{"feature": "income", "value": 52000, "weight": 0.41},
                   {"feature": "debt_ratio", "weight": -0.22}, "R01: short credit history"]
    response = client.post("/api/v1/cases/", _submission("e-1", explanation), format="json")
    assert response.status_code == 201, response.json()
    case = Case.objects.get(pk=response.json()["id"])
    assert case.explanation == {
        "reason_codes": ["R01: short credit history"],
        "attributions": [{"feature": "income", "value": 52000, "weight": 0.41},
                         {"feature": "debt_ratio", "weight": -0.22}],
    }
    shown = client.get(f"/api/v1/cases/{case.pk}/").json()
    assert shown["prediction"]["explanation"] == case.explanation
    for event in AuditEvent.objects.filter(case_id=case.pk):
        text = repr(event.__dict__)
        assert "income" not in text and "52000" not in text and "R01" not in text


def test_explanation_object_form_accepted() -> None:
    client = _integration()
    body = _submission("e-2", {"reason_codes": ["low income"], "attributions": []})
    assert client.post("/api/v1/cases/", body, format="json").status_code == 201


@pytest.mark.parametrize("explanation", [
    [{"feature": "income", "weight": "high"}],
    [{"feature": "", "weight": 1}],
    [{"feature": "x", "weight": 1, "colour": "red"}],
    [{"feature": "x", "value": {"nested": 1}, "weight": 1}],
    [{"feature": "x" * 201, "weight": 1}],
    [{"feature": f"f{i}", "weight": 1} for i in range(101)],
    {"reasons": ["x"]},
    "because",
    42,
])
def test_bad_explanation_is_400_naming_explanation(explanation: Any) -> None:
    client = _integration()
    response = client.post("/api/v1/cases/", _submission("e-bad", explanation), format="json")
    assert response.status_code == 400
    assert "explanation" in response.json()
    assert not Case.objects.filter(external_id="e-bad").exists()


def test_nul_in_explanation_refused() -> None:
    assert validate_explanation([{"feature": "a\x00b", "weight": 1}])[1]
    assert validate_explanation(["code\x00"])[1]
    # Through the API the strict JSON parser refuses the NUL first: still a 400, never a 500.
    client = _integration()
    raw = '{"system": "credit-scoring", "intervention_point": "loan-review", "external_id": "n1", ' \
          '"input": {}, "prediction": {"label": "approve", "explanation": [{"feature": "a\\u0000", "weight": 1}]}}'
    response = client.post("/api/v1/cases/", raw, content_type="application/json")
    assert response.status_code == 400


def test_explanation_reaches_reviewer_unless_blind() -> None:
    point = make_point()
    explanation = {"reason_codes": ["r"], "attributions": [{"feature": "f", "weight": 1.0}]}
    shown = make_case(point, explanation=explanation)
    reviewer = client_for(make_reviewer())
    body = reviewer.post("/api/v1/queue/claim/", {}, format="json").json()
    assert body["case"]["id"] == shown.pk
    assert body["case"]["prediction"]["explanation"] == explanation
    reviewer.post(f"/api/v1/cases/{shown.pk}/release/")
    Case.objects.filter(pk=shown.pk).update(blind=True)
    body = reviewer.post("/api/v1/queue/claim/", {}, format="json").json()
    assert body["case"]["prediction"] is None
    assert reviewer.get(f"/api/v1/cases/{shown.pk}/").json()["prediction"] is None


# --- decision fields -----------------------------------------------------------------------------------


def _claimed(point: InterventionPoint) -> tuple[Any, Case]:
    case = make_case(point)
    reviewer = client_for(make_reviewer())
    assert reviewer.post("/api/v1/queue/claim/", {}, format="json").status_code == 200
    return reviewer, case


def test_required_decision_field_missing_is_400_naming_it() -> None:
    point = make_point(decision_fields=DECISION_FIELDS)
    reviewer, case = _claimed(point)
    response = reviewer.post(f"/api/v1/cases/{case.pk}/decision/", {"outcome": "approve"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"form_values.severity": ["This field is required."]}
    case.refresh_from_db()
    assert case.status == "claimed"


@pytest.mark.parametrize(("values", "field"), [
    ({"severity": "medium"}, "form_values.severity"),
    ({"severity": "low", "tags": ["blur", "blur"]}, "form_values.tags"),
    ({"severity": "low", "tags": "blur"}, "form_values.tags"),
    ({"severity": "low", "score": 11}, "form_values.score"),
    ({"severity": "low", "score": "7"}, "form_values.score"),
    ({"severity": "low", "note": "x" * 21}, "form_values.note"),
    ({"severity": "low", "colour": "red"}, "form_values.colour"),
])
def test_bad_decision_field_values_are_400_naming_the_field(values: dict[str, Any], field: str) -> None:
    point = make_point(decision_fields=DECISION_FIELDS)
    reviewer, case = _claimed(point)
    response = reviewer.post(f"/api/v1/cases/{case.pk}/decision/",
                             {"outcome": "approve", "form_values": values}, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_decision_fields_saved_returned_and_in_webhook_representation() -> None:
    point = make_point(decision_fields=DECISION_FIELDS)
    reviewer, case = _claimed(point)
    values = {"severity": "high", "tags": ["crop"], "score": 7.5, "note": "fine"}
    response = reviewer.post(f"/api/v1/cases/{case.pk}/decision/",
                             {"outcome": "approve", "form_values": values}, format="json")
    assert response.status_code == 201, response.json()
    decision = case.decisions.get()
    assert decision.form_values == values
    officer = client_for(make_user("compliance_officer"))
    assert officer.get(f"/api/v1/cases/{case.pk}/").json()["decisions"][0]["form_values"] == values
    webhook = json.loads(render_body(event="case.decided", case=Case.objects.get(pk=case.pk)))
    assert webhook["case"]["decisions"][0]["form_values"] == values
    event = AuditEvent.objects.filter(action="decision.recorded", case_id=case.pk).latest("id")
    assert "fine" not in repr(event.__dict__)


def test_escalation_may_leave_required_fields_open() -> None:
    point = make_point(decision_fields=DECISION_FIELDS)
    reviewer, case = _claimed(point)
    response = reviewer.post(f"/api/v1/cases/{case.pk}/decision/",
                             {"outcome": "escalate", "rationale": "unsure"}, format="json")
    assert response.status_code == 201


def test_clean_form_values_unit() -> None:
    assert clean_form_values(DECISION_FIELDS, {"severity": "low", "tags": []}, require=True) == {"severity": "low"}


# --- attachments ---------------------------------------------------------------------------------------


def _upload(client: Any, case: Case, content: bytes, name: str = "scan.png", content_type: str = "image/png",
            **extra: Any) -> Any:
    upload = SimpleUploadedFile(name, content, content_type=content_type)
    return client.post(f"/api/v1/cases/{case.pk}/attachments/", {"file": upload, **extra}, format="multipart")


def _integration_and_case() -> tuple[Any, Case]:
    point = make_point()
    integration = make_user("integration", systems=[point.system.slug])
    case = make_case(point)
    # Integrations see (and attach files to) only the cases they submitted.
    Case.objects.filter(pk=case.pk).update(submitted_by=integration)
    case.refresh_from_db()
    return client_for(integration), case


def test_integration_uploads_png_audited_by_sha256() -> None:
    client, case = _integration_and_case()
    response = _upload(client, case, PNG)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["content_type"] == "image/png"
    assert body["sha256"] == hashlib.sha256(PNG).hexdigest()
    event = AuditEvent.objects.filter(action="case.attachment_added", case_id=case.pk).get()
    assert hashlib.sha256(PNG).hexdigest() in repr(event.__dict__)
    assert "scan.png" not in repr(event.__dict__)
    listed = client.get(f"/api/v1/cases/{case.pk}/attachments/").json()["results"]
    assert [a["name"] for a in listed] == ["scan.png"]


@pytest.mark.parametrize(("content", "name", "content_type"), [
    (SVG, "x.svg", "image/svg+xml"),
    (b"<html><script>alert(1)</script></html>", "x.png", "image/png"),
    (PNG, "x.png", "application/pdf"),
    (b"", "empty.png", "image/png"),
])
def test_refused_files_are_400_naming_file(content: bytes, name: str, content_type: str) -> None:
    client, case = _integration_and_case()
    response = _upload(client, case, content, name=name, content_type=content_type)
    assert response.status_code == 400
    assert "file" in response.json()
    assert not CaseAttachment.objects.exists()


def test_oversized_file_refused() -> None:
    client, case = _integration_and_case()
    with override_settings(HITL_ATTACHMENT_MAX_BYTES=10):
        response = _upload(client, case, PNG)
    assert response.status_code == 400 and "file" in response.json()


def test_bad_name_refused_and_duplicate_name_refused() -> None:
    client, case = _integration_and_case()
    assert "name" in _upload(client, case, PNG, name="../evil.png").json()
    assert _upload(client, case, PNG).status_code == 201
    response = _upload(client, case, PNG)
    assert response.status_code == 400 and "name" in response.json()


def test_upload_denied_for_other_roles_and_unlinked_integrations() -> None:
    _, case = _integration_and_case()
    assert _upload(client_for(make_reviewer()), case, PNG).status_code == 403
    assert _upload(client_for(make_user("compliance_officer")), case, PNG).status_code == 403
    other = make_system("other-system")
    stranger = client_for(make_user("integration", systems=[other.slug]))
    assert _upload(stranger, case, PNG).status_code == 404


def test_upload_refused_on_decided_case() -> None:
    client, case = _integration_and_case()
    Case.objects.filter(pk=case.pk).update(status="decided", resolution="reviewed", final_label="approve")
    response = _upload(client, case, PNG)
    assert response.status_code == 409 and response.json()["code"] == "case_closed"


def test_download_allowed_with_safe_headers_and_denied_to_others() -> None:
    client, case = _integration_and_case()
    _upload(client, case, PDF, name="report.pdf", content_type="application/pdf")
    url = f"/api/v1/cases/{case.pk}/attachments/report.pdf/"
    officer = client_for(make_user("compliance_officer"))
    response = officer.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("inline")
    assert "sandbox" in response["Content-Security-Policy"]
    assert officer.get(url + "?download=1")["Content-Disposition"].startswith("attachment")
    # A reviewer who neither holds nor decided the case: as if it did not exist.
    reviewer_user = make_reviewer()
    reviewer = client_for(reviewer_user)
    assert reviewer.get(url).status_code == 404
    # Holding it: allowed.
    assert reviewer.post("/api/v1/queue/claim/", {}, format="json").json()["case"]["id"] == case.pk
    assert reviewer.get(url).status_code == 200
    other = make_system("other-system")
    assert client_for(make_user("integration", systems=[other.slug])).get(url).status_code == 404
    assert officer.get(f"/api/v1/cases/{case.pk}/attachments/missing.pdf/").status_code == 404


def test_sniffer_refuses_svg_and_html() -> None:
    assert sniff(SVG[:16]) is None
    assert sniff(b"<!DOCTYPE html>") is None
    assert sniff(PNG[:16]) == "image/png"
    assert sniff(PDF[:16]) == "application/pdf"


# --- a case submitted together with its files (multipart) ----------------------------------------------


def _multipart_case(external_id: str, files: list[Any], **input_extra: Any) -> dict[str, Any]:
    body = {"system": "credit-scoring", "intervention_point": "loan-review", "external_id": external_id,
            "input": {"amount": 100, "scan": "attachment:scan.png", **input_extra},
            "prediction": {"label": "approve", "confidence": 0.5}}
    return {"case": json.dumps(body), "files": files}


def test_case_with_files_in_one_request() -> None:
    client = _integration()
    files = [SimpleUploadedFile("scan.png", PNG, content_type="image/png"),
             SimpleUploadedFile("report.pdf", PDF, content_type="application/pdf")]
    response = client.post("/api/v1/cases/", _multipart_case("m-1", files), format="multipart")
    assert response.status_code == 201, response.json()
    case = Case.objects.get(pk=response.json()["id"])
    assert sorted(case.attachments.values_list("name", flat=True)) == ["report.pdf", "scan.png"]
    assert AuditEvent.objects.filter(action="case.attachment_added", case_id=case.pk).count() == 2


def test_case_with_a_bad_file_creates_nothing() -> None:
    client = _integration()
    files = [SimpleUploadedFile("scan.png", PNG, content_type="image/png"),
             SimpleUploadedFile("evil.svg", SVG, content_type="image/svg+xml")]
    response = client.post("/api/v1/cases/", _multipart_case("m-2", files), format="multipart")
    assert response.status_code == 400
    assert "files.evil.svg" in response.json()
    assert not Case.objects.filter(external_id="m-2").exists()
    assert not CaseAttachment.objects.exists()


def test_multipart_without_case_or_with_bad_json_is_400() -> None:
    client = _integration()
    assert "case" in client.post("/api/v1/cases/", {"files": []}, format="multipart").json()
    response = client.post("/api/v1/cases/", {"case": "{not json"}, format="multipart")
    assert response.status_code == 400 and "case" in response.json()
