"""Cases API: ingest (single, batch), idempotency, refusals, read and list with visibility."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from reviews.models import AISystem, Case, CaseStatus, Decision, IdempotencyKey
from reviews.services.systems import system_halt
from tests.reviews.factories import (
    ingest,
    make_system_with_point,
    submission,
)
from tests.token_helpers import new_token_key

pytestmark = pytest.mark.django_db

CASES = "/api/v1/cases/"
BATCH = "/api/v1/cases/batch/"


def detail(pk: int) -> str:
    return f"/api/v1/cases/{pk}/"


@pytest.fixture
def setup(make_user: Any) -> dict[str, Any]:
    make_system_with_point(confidence_below=0.7, always_review_labels=["reject"])
    make_system_with_point("triage", "intake", labels=["urgent", "routine"])
    make_system_with_point("images", "labeling", labels=["cat", "dog"], stage="labeling")
    return {
        "acme": make_user("integration", "acme", systems=["credit-scoring", "images"]),
        "other": make_user("integration", "other", systems=["triage"]),
    }


@pytest.fixture
def acme(setup: dict[str, Any], api_client_for: Any) -> APIClient:
    return api_client_for(setup["acme"])


# --- POST /cases/ ----------------------------------------------------------------------------


def test_integration_posts_a_case_and_gets_the_routing(acme: APIClient) -> None:
    response = acme.post(CASES, submission(external_id="app-10023", confidence=0.62), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    case = Case.objects.get()
    assert body == {
        "id": case.pk,
        "external_id": "app-10023",
        "status": "queued",
        "routing": {"routed": True, "reasons": ["confidence_below"], "rules_version": 1},
        "final_label": None,
    }
    assert list(AuditEvent.objects.filter(case_id=case.pk).values_list("action", flat=True).order_by("id")) == [
        "case.created", "case.routed"]
    assert Case.history.filter(id=case.pk).get().history_user == acme.user


def test_auto_accepted_response(acme: APIClient) -> None:
    response = acme.post(CASES, submission(confidence=0.99), format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "auto_accepted"
    assert response.json()["final_label"] == "approve"
    assert response.json()["routing"] == {"routed": False, "reasons": [], "rules_version": 1}


def test_labeling_point_accepts_a_case_without_prediction(acme: APIClient) -> None:
    response = acme.post(CASES, submission("images", "labeling", label=None), format="json")
    assert response.status_code == 201
    assert response.json()["routing"]["reasons"] == ["labeling"]


def test_admin_may_post_cases(setup: dict[str, Any], api_client_for: Any) -> None:
    response = api_client_for("admin").post(CASES, submission(), format="json")
    assert response.status_code == 201


@pytest.mark.parametrize("role", ["reviewer", "compliance_officer", "manager"])
def test_other_roles_cannot_post_cases(setup: dict[str, Any], api_client_for: Any, role: str) -> None:
    response = api_client_for(role).post(CASES, submission(), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert Case.objects.count() == 0


def test_anonymous_cannot_post_cases(setup: dict[str, Any], anon_client: APIClient) -> None:
    assert anon_client.post(CASES, submission(), format="json").status_code == 401


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"system": "nope"}, "system"),
        ({"system": 5}, "system"),
        ({"system": "x" * 500}, "system"),
        ({"intervention_point": "nope"}, "intervention_point"),
        ({"intervention_point": "intake"}, "intervention_point"),  # a point of another system
        ({"prediction": {"label": "approve", "confidence": 1.5}}, "confidence"),
        ({"prediction": {"label": "approve", "confidence": -0.1}}, "confidence"),
        ({"prediction": {"label": "approve", "confidence": "0.5"}}, "confidence"),
        ({"prediction": {"label": "approve", "confidence": True}}, "confidence"),
        ({"prediction": {"label": "maybe", "confidence": 0.5}}, "label"),
        ({"prediction": {"label": 1, "confidence": 0.5}}, "label"),
        ({"prediction": {"confidence": 0.5}}, "label"),
        ({"prediction": {"label": "approve", "model_version": "v" * 101}}, "model_version"),
        ({"prediction": {"label": "approve", "extra": 1}}, "prediction"),
        ({"prediction": "approve"}, "prediction"),
        ({"prediction": None}, "prediction"),
        ({"input": ["not", "an", "object"]}, "input"),
        ({"input": "text"}, "input"),
        ({"input": None}, "input"),
        ({"external_id": ""}, "external_id"),
        ({"external_id": "   "}, "external_id"),
        ({"external_id": "x" * 256}, "external_id"),
        ({"external_id": 17}, "external_id"),
        ({"callback_url": "ftp://example.org/x"}, "callback_url"),
        ({"callback_url": "not a url"}, "callback_url"),
        ({"subject": ["f"]}, "subject"),
        ({"subject": {"gender": {"nested": "x"}}}, "subject"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_bad_submissions_are_400_naming_the_field(acme: APIClient, overrides: dict[str, Any], field: str) -> None:
    body = submission()
    body.update(overrides)
    response = acme.post(CASES, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert Case.objects.count() == 0


def test_missing_fields_are_named(acme: APIClient) -> None:
    response = acme.post(CASES, {}, format="json")
    assert response.status_code == 400
    assert {"system", "intervention_point", "external_id", "input"} <= set(response.json())


@pytest.mark.parametrize(
    "raw",
    [
        b"[1, 2]",
        b'{"system": "credit-scoring", "intervention_point": "loan-review", "external_id": "a", '
        b'"input": {"x": 1e999}, "prediction": {"label": "approve"}}',
        b'{"system": "credit-scoring", "intervention_point": "loan-review", "external_id": "a", '
        b'"input": ' + b'{"a":' * 100 + b"1" + b"}" * 100 + b', "prediction": {"label": "approve"}}',
        b'{"system": "credit-scoring", "intervention_point": "loan-review", "external_id": "a", '
        b'"input": {}, "prediction": {"label": "approve", "confidence": 1e999}}',
        b'{"system": "credit-scoring", "external_id": "a\\u0000b"}',
        b"{not json",
    ],
)
def test_hostile_bodies_are_4xx_never_500(acme: APIClient, raw: bytes) -> None:
    response = acme.generic("POST", CASES, raw, content_type="application/json")
    assert 400 <= response.status_code < 500, response.content
    assert response["Content-Type"].startswith("application/json")


def test_duplicate_external_id_is_409_with_existing_id(acme: APIClient) -> None:
    first = acme.post(CASES, submission(external_id="dup"), format="json").json()
    response = acme.post(CASES, submission(external_id="dup", label="reject"), format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate"
    assert response.json()["id"] == first["id"]
    assert Case.objects.count() == 1


def test_prohibited_system_is_409(setup: dict[str, Any], api_client_for: Any, make_user: Any) -> None:
    make_system_with_point("social-scoring", "score", system_fields={"declared_tier": "prohibited"})
    client = api_client_for(make_user("integration", systems=["social-scoring"]))
    response = client.post(CASES, submission("social-scoring", "score"), format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "system_prohibited"
    assert Case.objects.count() == 0


def test_integration_not_linked_is_403(acme: APIClient) -> None:
    response = acme.post(CASES, submission("triage", "intake", label="urgent"), format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "system_not_linked"
    assert Case.objects.count() == 0


def test_halted_system_accepts_and_routes_with_system_halted(acme: APIClient) -> None:
    system_halt(actor=None, system=AISystem.objects.get(slug="credit-scoring"), reason="Incident")
    response = acme.post(CASES, submission(confidence=0.99), format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "queued"
    assert response.json()["routing"]["reasons"] == ["system_halted"]


def test_single_ingest_query_count_is_pinned(acme: APIClient, django_assert_num_queries: Any) -> None:
    acme.post(CASES, submission(external_id="warm-up", confidence=0.1), format="json")
    # token with user and role, point with system, (savepoint), case with its history row (one
    # statement on PostgreSQL, two elsewhere), audit events, (release).
    with django_assert_num_queries(6 if connection.vendor == "postgresql" else 7):
        response = acme.post(CASES, submission(external_id="counted", confidence=0.1), format="json")
    assert response.status_code == 201


# --- Idempotency ------------------------------------------------------------------------------


def test_same_key_same_body_replays_and_creates_nothing(acme: APIClient) -> None:
    body = submission(external_id="idem-1")
    first = acme.post(CASES, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = acme.post(CASES, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Case.objects.count() == 1
    assert AuditEvent.objects.filter(action="case.created").count() == 1
    assert IdempotencyKey.objects.get().status_code == 201


def test_same_key_different_body_is_422(acme: APIClient) -> None:
    acme.post(CASES, submission(external_id="idem-2"), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    response = acme.post(CASES, submission(external_id="idem-3"), format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert Case.objects.count() == 1


def test_rejected_requests_are_not_stored_under_their_key(acme: APIClient) -> None:
    bad = submission(external_id="idem-4", prediction={"label": "approve", "confidence": 7})
    assert acme.post(CASES, bad, format="json", HTTP_IDEMPOTENCY_KEY="k-4").status_code == 400
    assert not IdempotencyKey.objects.exists()
    fixed = submission(external_id="idem-4")
    assert acme.post(CASES, fixed, format="json", HTTP_IDEMPOTENCY_KEY="k-4").status_code == 201


def test_keys_are_scoped_to_the_integration(setup: dict[str, Any], api_client_for: Any, make_user: Any) -> None:
    twin = make_user("integration", "twin", systems=["credit-scoring"])
    a = api_client_for(setup["acme"]).post(CASES, submission(external_id="s-1"), format="json",
                                           HTTP_IDEMPOTENCY_KEY="shared")
    b = api_client_for(twin).post(CASES, submission(external_id="s-2"), format="json",
                                  HTTP_IDEMPOTENCY_KEY="shared")
    assert a.status_code == b.status_code == 201
    assert Case.objects.count() == 2


def test_invalid_key_header_is_400(acme: APIClient) -> None:
    response = acme.post(CASES, submission(), format="json", HTTP_IDEMPOTENCY_KEY="x" * 300)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()


def test_duplicate_without_key_after_keyed_create_is_409(acme: APIClient) -> None:
    body = submission(external_id="idem-5")
    acme.post(CASES, body, format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    assert acme.post(CASES, body, format="json").status_code == 409


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_requests_with_one_key_create_exactly_one_case(make_user: Any) -> None:
    make_system_with_point()
    user = make_user("integration", "racer", systems=["credit-scoring"])
    token_key = new_token_key(user)
    body = submission(external_id="race-1")
    barrier = threading.Barrier(8)
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def worker() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
        try:
            barrier.wait()
            response = client.post(CASES, body, format="json", HTTP_IDEMPOTENCY_KEY="race-key")
            with lock:
                results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Case.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1
    assert {status for status, _ in results} == {201}
    # The same body for everyone (jsonb may reorder keys, so compare as data).
    assert all(payload == results[0][1] for _, payload in results)
    assert results[0][1]["external_id"] == "race-1"
    assert AuditEvent.objects.filter(action="case.created").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_same_key_different_bodies_one_wins_others_422(make_user: Any) -> None:
    make_system_with_point()
    user = make_user("integration", "racer2", systems=["credit-scoring"])
    token_key = new_token_key(user)
    barrier = threading.Barrier(6)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
        try:
            barrier.wait()
            response = client.post(CASES, submission(external_id=f"r-{index}"), format="json",
                                   HTTP_IDEMPOTENCY_KEY="one-key")
            with lock:
                statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 422, 422, 422, 422, 422]
    assert Case.objects.count() == 1


# --- Batch ---------------------------------------------------------------------------------------


def test_batch_all_accepted_is_201(acme: APIClient) -> None:
    cases = [submission(external_id=f"b-{i}", confidence=0.9 if i % 2 else 0.2) for i in range(10)]
    response = acme.post(BATCH, {"cases": cases}, format="json")
    assert response.status_code == 201, response.content
    results = response.json()["results"]
    assert [r["external_id"] for r in results] == [f"b-{i}" for i in range(10)]
    assert all("id" in r and "error" not in r for r in results)
    assert [r["status"] for r in results[:2]] == ["queued", "auto_accepted"]
    assert Case.objects.count() == 10
    assert Case.history.count() == 10
    assert AuditEvent.objects.filter(action="case.created").count() == 10


def test_batch_with_mixed_items_is_207_and_keeps_every_valid_case(acme: APIClient) -> None:
    existing = acme.post(CASES, submission(external_id="old"), format="json").json()
    cases = [
        submission(external_id="ok-1"),
        submission(external_id="bad-1", prediction={"label": "approve", "confidence": 2}),
        "not an object",
        submission(external_id="old"),
        submission(external_id="ok-2", confidence=0.1),
        submission(external_id="ok-1"),
        submission("triage", "intake", external_id="t-1", label="urgent"),
        submission(external_id="bad-2", input=[1]),
        submission("images", "labeling", external_id="img-1", label=None),
    ]
    response = acme.post(BATCH, {"cases": cases}, format="json")
    assert response.status_code == 207, response.content
    results = response.json()["results"]
    assert len(results) == len(cases)
    accepted = {r["external_id"]: r for r in results if "id" in r}
    assert set(accepted) == {"ok-1", "ok-2", "img-1"}
    assert results[1] == {"external_id": "bad-1", "error": {"confidence": ["must be between 0 and 1"]}}
    assert results[2]["external_id"] is None and "non_field_errors" in results[2]["error"]
    assert results[3]["error"]["code"] == "duplicate" and results[3]["error"]["id"] == existing["id"]
    assert results[5]["error"]["code"] == "duplicate" and results[5]["error"]["id"] == accepted["ok-1"]["id"]
    assert results[6]["error"]["code"] == "system_not_linked"
    assert "input" in results[7]["error"]
    assert set(Case.objects.values_list("external_id", flat=True)) == {"old", "ok-1", "ok-2", "img-1"}
    assert Case.history.count() == 4


def test_batch_all_rejected_is_207(acme: APIClient) -> None:
    response = acme.post(BATCH, {"cases": [submission(system="nope")]}, format="json")
    assert response.status_code == 207
    assert "system" in response.json()["results"][0]["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "cases"), ({"cases": "x"}, "cases"), ({"cases": []}, "cases"), ({"cases": [{}] * 1001}, "cases"),
     ([], "non_field_errors"), ({"cases": [], "extra": 1}, "extra")],
)
def test_batch_envelope_errors_are_400(acme: APIClient, body: Any, field: str) -> None:
    response = acme.post(BATCH, body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_batch_of_a_thousand(acme: APIClient) -> None:
    cases = [submission(external_id=f"k-{i}", confidence=(i % 10) / 10) for i in range(1000)]
    response = acme.post(BATCH, {"cases": cases}, format="json")
    assert response.status_code == 201
    assert Case.objects.count() == 1000
    assert Case.history.count() == 1000
    assert AuditEvent.objects.filter(action__in=["case.routed", "case.auto_accepted"]).count() == 1000


def test_batch_idempotency_replays(acme: APIClient) -> None:
    body = {"cases": [submission(external_id="bi-1"), submission(external_id="bi-2", label="nope")]}
    first = acme.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    again = acme.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert first.status_code == again.status_code == 207
    assert again.json() == first.json()
    assert Case.objects.count() == 1
    other = acme.post(BATCH, {"cases": [submission(external_id="bi-3")]}, format="json",
                      HTTP_IDEMPOTENCY_KEY="batch-1")
    assert other.status_code == 422


@pytest.mark.parametrize("role", ["reviewer", "compliance_officer", "manager"])
def test_batch_denied_to_other_roles(setup: dict[str, Any], api_client_for: Any, role: str) -> None:
    response = api_client_for(role).post(BATCH, {"cases": [submission()]}, format="json")
    assert response.status_code == 403


def test_batch_denied_to_anonymous(setup: dict[str, Any], anon_client: APIClient) -> None:
    assert anon_client.post(BATCH, {"cases": [submission()]}, format="json").status_code == 401


# --- GET /cases/{id}/ --------------------------------------------------------------------------


@pytest.fixture
def case(setup: dict[str, Any]) -> Case:
    return ingest(setup["acme"], external_id="c-1", confidence=0.3)


def hold(case: Case, reviewer: Any, *, expired: bool = False) -> None:
    """Simulate a claim (the queue service is another module's)."""
    lease = timezone.now() + dt.timedelta(minutes=-1 if expired else 5)
    Case.objects.filter(pk=case.pk).update(status=CaseStatus.CLAIMED, claimed_by=reviewer,
                                           claimed_at=timezone.now(), lease_expires_at=lease)


def test_integration_reads_its_case(acme: APIClient, case: Case) -> None:
    response = acme.get(detail(case.pk))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == case.pk
    assert body["system"] == "credit-scoring" and body["intervention_point"] == "loan-review"
    assert body["prediction"] == {"label": "approve", "confidence": 0.3, "model_version": "v3.1"}
    assert body["routing"] == {"routed": True, "reasons": ["confidence_below"], "rules_version": 1}
    assert body["status"] == "queued"
    assert body["true_label"] is None
    assert body["decisions"] == []
    assert body["received_at"].endswith("Z")


def test_other_integration_gets_404(setup: dict[str, Any], api_client_for: Any, case: Case) -> None:
    assert api_client_for(setup["other"]).get(detail(case.pk)).status_code == 404


@pytest.mark.parametrize("role", ["compliance_officer", "manager", "admin"])
def test_oversight_roles_read_any_case(api_client_for: Any, case: Case, role: str) -> None:
    response = api_client_for(role).get(detail(case.pk))
    assert response.status_code == 200
    assert "true_label" in response.json()


def test_reviewer_reads_only_a_case_they_hold_or_decided(make_user: Any, api_client_for: Any, case: Case) -> None:
    reviewer = make_user("reviewer", "rev1", systems=["credit-scoring"])
    client = api_client_for(reviewer)
    assert client.get(detail(case.pk)).status_code == 404
    hold(case, reviewer, expired=True)
    assert client.get(detail(case.pk)).status_code == 404
    hold(case, reviewer)
    held = client.get(detail(case.pk))
    assert held.status_code == 200
    assert "true_label" not in held.json()


def test_reviewer_sees_only_their_own_decision(make_user: Any, api_client_for: Any, case: Case) -> None:
    rev1 = make_user("reviewer", "rev1", systems=["credit-scoring"])
    rev2 = make_user("reviewer", "rev2", systems=["credit-scoring"])
    Case.objects.filter(pk=case.pk).update(true_label="reject")
    Decision.objects.create(case=case, reviewer=rev1, outcome="approve", label="approve")
    Decision.objects.create(case=case, reviewer=rev2, outcome="override", label="reject", rationale="income")
    body = api_client_for(rev1).get(detail(case.pk)).json()
    assert [d["reviewer"] for d in body["decisions"]] == ["rev1"]
    assert "true_label" not in body
    full = api_client_for("compliance_officer").get(detail(case.pk)).json()
    assert [d["reviewer"] for d in full["decisions"]] == ["rev1", "rev2"]
    assert full["true_label"] == "reject"


def test_reviewer_does_not_see_the_prediction_of_a_blind_case(make_user: Any, api_client_for: Any,
                                                              case: Case) -> None:
    reviewer = make_user("reviewer", systems=["credit-scoring"])
    Case.objects.filter(pk=case.pk).update(blind=True)
    hold(case, reviewer)
    assert api_client_for(reviewer).get(detail(case.pk)).json()["prediction"] is None


def test_detail_denied_to_anonymous_and_unknown_ids(acme: APIClient, anon_client: APIClient, case: Case) -> None:
    assert anon_client.get(detail(case.pk)).status_code == 401
    assert acme.get(detail(case.pk + 1000)).status_code == 404
    assert acme.get(detail(10**30)).status_code == 404


# --- GET /cases/ ------------------------------------------------------------------------------------


def test_list_filters_and_visibility(setup: dict[str, Any], api_client_for: Any) -> None:
    for i in range(3):
        ingest(setup["acme"], external_id=f"l-{i}", confidence=0.99)
    ingest(setup["acme"], external_id="l-q", confidence=0.1)
    ingest(setup["other"], system="triage", point="intake", external_id="t-1", label="urgent")
    acme = api_client_for(setup["acme"])
    body = acme.get(CASES).json()
    assert {"next", "previous", "results"} <= set(body)
    assert [c["external_id"] for c in body["results"]] == ["l-q", "l-2", "l-1", "l-0"]
    queued = acme.get(CASES, {"status": "queued"}).json()["results"]
    assert [c["external_id"] for c in queued] == ["l-q"]
    officer = api_client_for("compliance_officer")
    assert len(officer.get(CASES).json()["results"]) == 5
    assert [c["external_id"] for c in officer.get(CASES, {"system": "triage"}).json()["results"]] == ["t-1"]
    Case.objects.filter(external_id="l-0").update(received_at=timezone.now() - dt.timedelta(days=2))
    recent = officer.get(CASES, {"received_after": (timezone.now() - dt.timedelta(days=1)).isoformat()})
    assert "l-0" not in [c["external_id"] for c in recent.json()["results"]]
    old = officer.get(CASES, {"received_before": (timezone.now() - dt.timedelta(days=1)).isoformat()})
    assert [c["external_id"] for c in old.json()["results"]] == ["l-0"]


def test_list_paginates_with_a_cursor(setup: dict[str, Any], api_client_for: Any) -> None:
    for i in range(5):
        ingest(setup["acme"], external_id=f"p-{i}")
    client = api_client_for(setup["acme"])
    first = client.get(CASES, {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    second = client.get(first["next"]).json()
    assert [c["external_id"] for c in second["results"]] == ["p-2", "p-1"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"received_after": "yesterday"}, "received_after"), ({"received_before": "2026-13-45"}, "received_before"),
     ({"status": "done"}, "status"), ({"system": "bad slug!"}, "system")],
)
def test_list_bad_filters_are_400(acme: APIClient, params: dict[str, str], field: str) -> None:
    response = acme.get(CASES, params)
    assert response.status_code == 400
    assert field in response.json()


def test_list_query_count_is_pinned(setup: dict[str, Any], api_client_for: Any, make_user: Any,
                                    django_assert_num_queries: Any) -> None:
    reviewer = make_user("reviewer", systems=["credit-scoring"])
    for i in range(6):
        case = ingest(setup["acme"], external_id=f"q-{i}", confidence=0.1)
        Decision.objects.create(case=case, reviewer=reviewer, outcome="approve", label="approve")
    client = api_client_for("compliance_officer")
    # token with user and role, cases, decisions (with reviewers): the same for 6 cases or 600.
    with django_assert_num_queries(3):
        response = client.get(CASES)
    assert len(response.json()["results"]) == 6
    assert all(len(c["decisions"]) == 1 for c in response.json()["results"])


def test_list_denied_to_reviewers_and_anonymous(setup: dict[str, Any], api_client_for: Any,
                                                anon_client: APIClient) -> None:
    assert api_client_for("reviewer").get(CASES).status_code == 403
    assert anon_client.get(CASES).status_code == 401


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_batches_with_one_key_store_each_case_once(make_user: Any) -> None:
    make_system_with_point()
    user = make_user("integration", "batch-racer", systems=["credit-scoring"])
    token_key = new_token_key(user)
    body = {"cases": [submission(external_id=f"rb-{i}", confidence=0.1 * i) for i in range(10)]}
    barrier = threading.Barrier(4)
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def worker() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
        try:
            barrier.wait()
            response = client.post(BATCH, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-race")
            with lock:
                results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in results] == [201] * 4
    assert all(payload == results[0][1] for _, payload in results)
    assert Case.objects.count() == 10
    assert Case.history.count() == 10
    assert AuditEvent.objects.filter(action="case.created").count() == 10


# --- Throttling ---------------------------------------------------------------------------------


def test_ingest_is_throttled_per_integration(setup: dict[str, Any], api_client_for: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.cache import cache

    from reviews.api.views.cases import IntegrationRateThrottle

    cache.clear()
    monkeypatch.setattr(IntegrationRateThrottle, "rate", "2/min", raising=False)
    acme = api_client_for(setup["acme"])
    statuses = [acme.post(CASES, submission(external_id=f"th-{i}"), format="json").status_code for i in range(3)]
    assert statuses == [201, 201, 429]
    # Another integration has its own budget.
    other = api_client_for(setup["other"])
    assert other.post(CASES, submission("triage", "intake", label="urgent"), format="json").status_code == 201
    cache.clear()


def test_list_accepts_an_unencoded_plus_offset(acme: APIClient) -> None:
    response = acme.get(CASES + "?received_after=2026-01-01T00:00:00+00:00")
    assert response.status_code == 200
