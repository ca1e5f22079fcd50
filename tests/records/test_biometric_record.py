"""Art. 12(3) record of remote biometric identification (Annex III 1(a)): periods of use,
reference database, the input that produced a match, and the two people who verified it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import seal_pending
from records.models import BiometricUse
from records.retention import purge_system
from records.selectors import biometric_searches
from records.services import biometric_use_end, biometric_use_start
from reviews.models import AISystem, Case
from tests.audit.evidence_helpers import (  # noqa: F401
    audit_key_fixture,
    decide_by,
    ingest_case,
    integration_for,
    media_root_fixture,
)
from tests.reviews.factories import make_system_with_point
from tests.reviews.queue_helpers import make_reviewer, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("audit_key", "media_root")]

SLUG = "border-id"
LOG_URL = f"/api/v1/systems/{SLUG}/biometric-log/"
USES_URL = f"/api/v1/systems/{SLUG}/biometric-uses/"


@pytest.fixture
def system() -> AISystem:
    system, _ = make_system_with_point(
        SLUG, "identify", labels=["match", "no_match"], reviewers_required=2, always_review_labels=["match"],
        system_fields={"annex_iii_area": "1a", "positive_label": "match", "declared_tier": "high"},
    )
    return system


@pytest.fixture
def record(system: AISystem) -> dict[str, Any]:
    """One period of use with a verified match and a non-match, then a search outside any use."""
    officer = make_user("compliance_officer")
    use = biometric_use_start(actor=officer, system=system, reference_database="Watchlist v12 (2026-11-01)",
                              started_at=timezone.now() - dt.timedelta(hours=1), purpose="Event security",
                              authorisation_ref="AUTH-77")
    integration = integration_for(SLUG)
    match = ingest_case(integration, SLUG, "identify", "probe-1", label="match", confidence=0.97,
                        input={"image_ref": "s3://probes/1.jpg", "camera": "gate-4"})
    other = ingest_case(integration, SLUG, "identify", "probe-2", label="no_match", confidence=0.99,
                        input={"image_ref": "s3://probes/2.jpg", "camera": "gate-4"})
    first, second = make_reviewer("verifier-a", systems=[system]), make_reviewer("verifier-b", systems=[system])
    decide_by(match, first, second)
    biometric_use_end(actor=officer, use=use)
    outside = ingest_case(integration, SLUG, "identify", "probe-3", label="no_match", confidence=0.99)
    seal_pending()
    return {"officer": officer, "use": BiometricUse.objects.get(pk=use.pk), "match": match, "other": other,
            "outside": outside, "verifiers": (first, second), "integration": integration}


def test_uses_are_opened_and_closed_through_audited_services(system: AISystem, record: dict[str, Any]) -> None:
    use, officer = record["use"], record["officer"]
    assert use.ended_at is not None and use.started_by == officer and use.ended_by == officer
    started = AuditEvent.objects.get(action="biometric_use.started")
    assert started.actor_id == officer.pk and started.system_id == system.pk
    assert json.loads(started.payload)["data"]["reference_database"] == "Watchlist v12 (2026-11-01)"
    ended = AuditEvent.objects.get(action="biometric_use.ended")
    assert ended.object_id == str(use.pk)
    assert use.history.count() == 2
    with pytest.raises(ValidationError, match="already ended"):
        biometric_use_end(actor=officer, use=use)
    with pytest.raises(ValidationError) as refused:
        biometric_use_start(actor=officer, system=system, reference_database=" ")
    assert "reference_database" in refused.value.message_dict


def test_only_remote_biometric_systems_record_uses() -> None:
    other, _ = make_system_with_point("credit-scoring", "loan-review")
    with pytest.raises(ValidationError) as refused:
        biometric_use_start(actor=None, system=other, reference_database="db")
    assert "system" in refused.value.message_dict


def test_selector_joins_use_match_input_and_verifiers(system: AISystem, record: dict[str, Any]) -> None:
    searches = {s.external_id: s for s in biometric_searches(system=system)}
    match = searches["probe-1"]
    assert match.use_id == record["use"].pk
    assert match.reference_database == "Watchlist v12 (2026-11-01)"
    assert (match.ai_match, match.confirmed_match) == (True, True)
    assert match.input == {"image_ref": "s3://probes/1.jpg", "camera": "gate-4"}
    assert match.input_hash == Case.objects.get(pk=match.case_id).input_hash and len(match.input_hash) == 64
    assert [v["reviewer"] for v in match.verifiers] == ["verifier-a", "verifier-b"]
    assert all(v["outcome"] == "approve" for v in match.verifiers)
    assert searches["probe-2"].ai_match is False and searches["probe-2"].verifiers == []
    assert searches["probe-3"].use_id is None  # received after the use ended
    matches = list(biometric_searches(system=system, matches_only=True))
    assert [s.external_id for s in matches] == ["probe-1"]


def test_biometric_log_api(api_client_for: Any, record: dict[str, Any]) -> None:
    body = api_client_for("compliance_officer").get(LOG_URL).json()
    assert body["system"] == SLUG and body["match_label"] == "match"
    assert len(body["uses"]) == 1
    use = body["uses"][0]
    assert use["reference_database"] == "Watchlist v12 (2026-11-01)" and use["authorisation_ref"] == "AUTH-77"
    assert use["started_at"] and use["ended_at"] and use["searches"] == 2
    assert body["searches_outside_any_use"] == 1
    match = next(s for s in body["searches"] if s["external_id"] == "probe-1")
    assert match["case"] == record["match"].pk and match["ai_match"] is True
    assert match["input"]["image_ref"] == "s3://probes/1.jpg"
    assert [v["reviewer"] for v in match["verified_by"]] == ["verifier-a", "verifier-b"]
    only = api_client_for("admin").get(LOG_URL, {"matches_only": "true", "include_input": "false"}).json()
    assert [s["external_id"] for s in only["searches"]] == ["probe-1"]
    assert only["searches"][0]["input"] is None and only["searches"][0]["input_hash"]


def test_biometric_log_period_filter(api_client_for: Any, record: dict[str, Any]) -> None:
    client = api_client_for("compliance_officer")
    future = (timezone.now() + dt.timedelta(days=1)).isoformat()
    body = client.get(LOG_URL, {"from": future}).json()
    assert body["searches"] == [] and body["uses"] == []
    past = (timezone.now() - dt.timedelta(days=1)).isoformat()
    assert len(client.get(LOG_URL, {"from": past, "to": future}).json()["searches"]) == 3


def test_biometric_log_csv(api_client_for: Any, record: dict[str, Any]) -> None:
    response = api_client_for("compliance_officer").get(LOG_URL, {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8"))))
    assert [row["external_id"] for row in rows] == ["probe-1", "probe-2", "probe-3"]
    match = rows[0]
    assert match["reference_database"] == "Watchlist v12 (2026-11-01)"
    assert (match["verifier_1"], match["verifier_2"]) == ("verifier-a", "verifier-b")
    assert match["ai_match"] == "true" and match["input_purged"] == "false"
    assert json.loads(match["input"])["camera"] == "gate-4"
    assert rows[2]["use"] == ""


def test_biometric_log_csv_defuses_formulas_from_integrations(
    api_client_for: Any, system: AISystem, record: dict[str, Any]
) -> None:
    """``external_id`` and the reference database come from integrations: no cell may start a formula."""
    use = biometric_use_start(actor=record["officer"], system=system, reference_database="=HYPERLINK(\"http://x\")")
    ingest_case(record["integration"], SLUG, "identify", "@SUM(1+1)", label="no_match", confidence=0.99)
    biometric_use_end(actor=record["officer"], use=use)
    seal_pending()
    response = api_client_for("compliance_officer").get(LOG_URL, {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8"))))
    tricky = next(row for row in rows if row["external_id"].endswith("@SUM(1+1)"))
    assert tricky["external_id"] == "'@SUM(1+1)"
    assert tricky["reference_database"] == "'=HYPERLINK(\"http://x\")"
    assert tricky["case"].isdigit()  # numbers stay numbers
    for row in rows:
        assert not any(value.startswith(("=", "+", "@", "\t", "\r")) for value in row.values() if value)


def test_purged_input_is_no_longer_shown(api_client_for: Any, system: AISystem, record: dict[str, Any]) -> None:
    run = purge_system(actor=None, system=system, now=timezone.now() + dt.timedelta(days=400))
    assert run is not None
    body = api_client_for("compliance_officer").get(LOG_URL).json()
    match = next(s for s in body["searches"] if s["external_id"] == "probe-1")
    assert match["input"] is None and match["input_purged"] is True
    assert match["input_hash"] == record["match"].input_hash  # still referable by hash
    assert [v["reviewer"] for v in match["verified_by"]] == ["verifier-a", "verifier-b"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"from": "soon"}, "from"), ({"to": "12345"}, "to"), ({"format": "xml"}, "format"),
     ({"from": "2026-02-01", "to": "2026-01-01"}, "to")],
)
def test_biometric_log_bad_parameters(api_client_for: Any, system: AISystem, params: dict[str, str],
                                      field: str) -> None:
    response = api_client_for("compliance_officer").get(LOG_URL, params)
    assert response.status_code == 400
    assert field in response.json()


def test_biometric_log_of_a_system_that_is_not_1a(api_client_for: Any) -> None:
    make_system_with_point("credit-scoring", "loan-review")
    client = api_client_for("compliance_officer")
    response = client.get("/api/v1/systems/credit-scoring/biometric-log/")
    assert response.status_code == 400 and "system" in response.json()
    assert client.get("/api/v1/systems/unknown/biometric-log/").status_code == 404


@pytest.mark.parametrize("role", ["compliance_officer", "admin"])
def test_biometric_log_allowed(api_client_for: Any, system: AISystem, role: str) -> None:
    assert api_client_for(role).get(LOG_URL).status_code == 200


@pytest.mark.parametrize("role", ["manager", "reviewer", "integration"])
def test_biometric_log_denied(api_client_for: Any, system: AISystem, role: str) -> None:
    response = api_client_for(role).get(LOG_URL)
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


def test_biometric_log_unauthenticated(anon_client: Any, system: AISystem) -> None:
    assert anon_client.get(LOG_URL).status_code == 401


# --- Periods of use over the API ----------------------------------------------------------------


def test_a_linked_integration_opens_and_closes_uses(api_client_for: Any, system: AISystem) -> None:
    client = api_client_for(integration_for(SLUG))
    created = client.post(USES_URL, {"reference_database": "Watchlist v13"}, format="json")
    assert created.status_code == 201, created.content
    use_id = created.json()["id"]
    assert created.json()["started_by"] == client.user.username and created.json()["ended_at"] is None
    event = AuditEvent.objects.get(action="biometric_use.started")
    assert event.actor_type == "integration" and event.actor_id == client.user.pk
    ended = client.post(f"{USES_URL}{use_id}/end/", {}, format="json")
    assert ended.status_code == 200 and ended.json()["ended_at"]
    assert AuditEvent.objects.filter(action="biometric_use.ended").count() == 1
    again = client.post(f"{USES_URL}{use_id}/end/", {}, format="json")
    assert again.status_code == 400 and "ended_at" in again.json()
    listed = api_client_for("compliance_officer").get(USES_URL).json()
    assert [use["id"] for use in listed] == [use_id]


def test_use_api_validation_and_denials(api_client_for: Any, system: AISystem) -> None:
    officer = api_client_for("compliance_officer")
    response = officer.post(USES_URL, {"reference_database": ""}, format="json")
    assert response.status_code == 400 and "reference_database" in response.json()
    response = officer.post(USES_URL, {"reference_database": "db", "started_at": "never"}, format="json")
    assert response.status_code == 400 and "started_at" in response.json()
    unlinked = api_client_for("integration")
    response = unlinked.post(USES_URL, {"reference_database": "db"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "not_linked"
    for role in ("reviewer", "manager"):
        assert api_client_for(role).post(USES_URL, {"reference_database": "db"}, format="json").status_code == 403
    assert not BiometricUse.objects.exists()
    assert officer.post(f"{USES_URL}999/end/", {}, format="json").status_code == 404


def test_admin_opens_and_ends_uses_through_the_services(client: Any, system: AISystem) -> None:
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
    from django.urls import reverse

    admin_user = make_user("admin")
    client.force_login(admin_user)
    refused = client.post(reverse("admin:records_biometricuse_add"),
                          {"system": system.pk, "started_at_0": "2026-11-01", "started_at_1": "08:00:00",
                           "reference_database": " "})
    assert refused.status_code == 200 and not BiometricUse.objects.exists()
    added = client.post(reverse("admin:records_biometricuse_add"),
                        {"system": system.pk, "started_at_0": "2026-11-01", "started_at_1": "08:00:00",
                         "reference_database": "Watchlist v14", "purpose": "", "authorisation_ref": ""})
    assert added.status_code == 302, added.content
    use = BiometricUse.objects.get()
    assert use.started_by == admin_user
    assert AuditEvent.objects.filter(action="biometric_use.started", actor_id=admin_user.pk).count() == 1
    client.post(reverse("admin:records_biometricuse_changelist"),
                {"action": "end_uses", ACTION_CHECKBOX_NAME: [use.pk]})
    use.refresh_from_db()
    assert use.ended_at is not None and use.ended_by == admin_user
