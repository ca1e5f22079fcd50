"""Gold items: creation (API, CSV, page, command), mixing into queues, secrecy, scoring."""

from __future__ import annotations

import io
import json
import re
import uuid
from html.parser import HTMLParser
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from audit.models import AuditEvent
from quality.models import GoldItem, GoldServing
from quality.selectors import gold_answers, gold_figures
from reviews.models import Case, CaseStatus
from reviews.selectors.queue import queue_overview
from reviews.services.queue import claim_next, claim_release
from tests.quality.helpers import (
    client_for,
    decide,
    gold_item,
    make_case,
    make_point,
    make_reviewer,
    make_user,
    page_client,
    set_gold_dice,
)

pytestmark = pytest.mark.django_db

GOLD_URL = "/api/v1/gold-items/"


def body(**overrides: Any) -> dict[str, Any]:
    data = {
        "system": "credit-scoring", "intervention_point": "loan-review",
        "input": {"amount": 25000, "text": "loan application"},
        "prediction": {"label": "approve", "confidence": 0.6, "model_version": "v3.1"},
        "gold_label": "reject",
    }
    data.update(overrides)
    return data


# --- Creating gold items -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["compliance_officer", "admin"])
def test_officer_creates_gold_item_routed_like_a_real_case(api_client_for, role: str) -> None:
    point = make_point()
    client = api_client_for(role)
    response = client.post(GOLD_URL, body(), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["gold_label"] == "reject" and data["system"] == "credit-scoring"
    assert data["routing"] == {"routed": True, "reasons": ["confidence_below"], "rules_version": point.version}
    case = Case.objects.get(pk=data["case"])
    assert case.is_gold and case.gold_label == "reject" and case.status == CaseStatus.QUEUED
    assert case.callback_url == "" and case.subject == {} and case.sla_deadline is None
    uuid.UUID(case.external_id)  # generated, unguessable: no "gold" prefix, no counter
    event = AuditEvent.objects.get(action="gold.created", case_id=case.pk)
    assert event.actor_id == client.user.pk
    payload = json.loads(event.payload)
    assert payload["data"]["kind"] == "item" and payload["data"]["gold_label"] == "reject"
    # Personal data by hash only.
    assert "loan application" not in event.payload and payload["data"]["input_hash"] == case.input_hash


@pytest.mark.parametrize("role", ["manager", "reviewer", "integration"])
def test_other_roles_may_not_create_or_list_gold_items(api_client_for, role: str) -> None:
    make_point()
    client = api_client_for(role)
    assert client.post(GOLD_URL, body(), format="json").status_code == 403
    assert client.get(GOLD_URL).status_code == 403
    assert not Case.objects.filter(is_gold=True).exists()


def test_anonymous_gets_401(anon_client) -> None:
    assert anon_client.post(GOLD_URL, body(), format="json").status_code == 401
    assert anon_client.get(GOLD_URL).status_code == 401


def test_officer_lists_gold_items(api_client_for) -> None:
    item = gold_item(make_point())
    response = api_client_for("compliance_officer").get(GOLD_URL)
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["id"] == item.pk and row["gold_label"] == "reject" and row["served"] == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"system": "nope"}, "system"),
        ({"intervention_point": "nope"}, "intervention_point"),
        ({"gold_label": "maybe"}, "gold_label"),
        ({"gold_label": None}, "gold_label"),
        ({"prediction": None}, "prediction"),
        ({"prediction": {"label": "approve", "confidence": 0.95}}, "prediction"),  # would be auto-accepted
        ({"prediction": {"label": "approve", "confidence": 7}}, "confidence"),
        ({"input": [1, 2]}, "input"),
        ({"callback_url": "https://example.org/"}, "callback_url"),
        ({"note": 5}, "note"),
    ],
)
def test_bad_gold_items_are_400_naming_the_field(api_client_for, overrides: dict[str, Any], field: str) -> None:
    make_point()
    data = body(**overrides)
    if overrides.get("gold_label", "") is None:
        del data["gold_label"]
    response = api_client_for("compliance_officer").post(GOLD_URL, data, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Case.objects.filter(is_gold=True).exists()


def test_nul_bytes_and_duplicate_external_ids_are_400(api_client_for) -> None:
    make_point()
    client = api_client_for("compliance_officer")
    assert client.post(GOLD_URL, body(input={"text": "a\u0000b"}), format="json").status_code == 400
    assert client.post(GOLD_URL, body(external_id="app-77"), format="json").status_code == 201
    response = client.post(GOLD_URL, body(external_id="app-77"), format="json")
    assert response.status_code == 400 and "external_id" in response.json()


def test_labeling_point_takes_gold_items_without_prediction(api_client_for) -> None:
    make_point(slug="tagging", stage="labeling", confidence_below=None)
    response = api_client_for("compliance_officer").post(
        GOLD_URL, body(intervention_point="tagging", prediction=None), format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["routing"]["reasons"] == ["labeling"]


# --- The master never enters a queue ---------------------------------------------------------------


def test_gold_master_is_never_claimed_or_counted() -> None:
    point = make_point()
    gold_item(point)
    reviewer = make_reviewer()
    assert claim_next(reviewer=reviewer) is None
    assert [row["claimable"] for row in queue_overview(reviewer=reviewer)] == [0]


# --- Mixing ---------------------------------------------------------------------------------------------


def test_gold_copy_is_served_at_the_points_gold_rate(monkeypatch) -> None:
    point = make_point(gold_rate=0.3)
    item = gold_item(point)
    real = make_case(point)
    reviewer = make_reviewer()
    set_gold_dice(monkeypatch, 0.31)  # above the rate: ordinary work
    first = claim_next(reviewer=reviewer)
    assert first.pk == real.pk and not first.is_gold
    claim_release(reviewer=reviewer, case=first)
    set_gold_dice(monkeypatch, 0.29)  # below the rate: a gold copy
    copy = claim_next(reviewer=reviewer)
    assert copy.pk not in (real.pk, item.case_id)
    assert copy.is_gold and copy.gold_label == "reject" and copy.status == CaseStatus.CLAIMED
    assert copy.claimed_by == reviewer and copy.intervention_point_id == point.pk
    serving = GoldServing.objects.get(case=copy)
    assert serving.item == item and serving.reviewer == reviewer and serving.session is None
    # Routed and given an SLA like a case received now; its own unguessable external id.
    assert copy.routing_reasons == ["confidence_below"] and copy.external_id != item.case.external_id
    assert copy.input == item.case.input and copy.prediction_label == "approve"
    served = AuditEvent.objects.get(action="gold.created", case_id=copy.pk)
    assert json.loads(served.payload)["data"]["kind"] == "serving"
    assert AuditEvent.objects.filter(action="case.claimed", case_id=copy.pk, actor_id=reviewer.pk).exists()


def test_gold_is_mixed_only_into_a_queue_with_real_work(monkeypatch) -> None:
    point = make_point(gold_rate=1.0)
    gold_item(point)
    reviewer = make_reviewer()
    set_gold_dice(monkeypatch, 0.0)
    # Nothing real to do: a claim that returned a case now would give the gold item away.
    assert claim_next(reviewer=reviewer) is None
    assert not GoldServing.objects.exists()


def test_each_gold_item_is_served_once_per_reviewer(monkeypatch) -> None:
    point = make_point(gold_rate=1.0)
    gold_item(point)
    real = make_case(point)
    make_case(point)
    reviewer, other = make_reviewer(), make_reviewer()
    set_gold_dice(monkeypatch, 0.0)
    copy = claim_next(reviewer=reviewer)
    assert copy.is_gold
    decide(reviewer, copy, "reject")
    # Answered: the next claim is real work, never the same item again.
    assert claim_next(reviewer=reviewer).pk == real.pk
    # Another reviewer gets their own copy.
    theirs = claim_next(reviewer=other)
    assert theirs.is_gold and theirs.pk != copy.pk
    assert GoldServing.objects.filter(reviewer=other).count() == 1


def test_released_copy_returns_to_its_owner_only(monkeypatch) -> None:
    point = make_point(gold_rate=0.5)
    gold_item(point)
    make_case(point)
    owner, other = make_reviewer(), make_reviewer()
    set_gold_dice(monkeypatch, 0.0)
    copy = claim_next(reviewer=owner)
    claim_release(reviewer=owner, case=copy)
    assert Case.objects.get(pk=copy.pk).status == CaseStatus.QUEUED
    set_gold_dice(monkeypatch, 0.99)
    other_claim = claim_next(reviewer=other)
    assert other_claim is not None and other_claim.pk != copy.pk
    # The owner's queue counts their open copy, and the copy comes back to them first.
    assert queue_overview(reviewer=owner)[0]["claimable"] == 1
    assert claim_next(reviewer=owner).pk == copy.pk


def test_rate_zero_never_serves_gold(monkeypatch) -> None:
    point = make_point(gold_rate=0.0)
    gold_item(point)
    real = make_case(point)
    set_gold_dice(monkeypatch, 0.0)
    assert claim_next(reviewer=make_reviewer()).pk == real.pk


# --- Secrecy ------------------------------------------------------------------------------------------------


def shape(value: Any) -> Any:
    """The structure of a JSON value (keys and types), without the values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return type(value).__name__


def test_claim_api_and_case_get_never_reveal_a_gold_copy(monkeypatch) -> None:
    point = make_point(gold_rate=0.5)
    gold_item(point)
    make_case(point)
    make_case(point)
    reviewer = make_reviewer()
    client = client_for(reviewer)
    set_gold_dice(monkeypatch, 0.9)
    real = client.post("/api/v1/queue/claim/", {}, format="json")
    set_gold_dice(monkeypatch, 0.1)
    # The reviewer still holds the real case: the claim hands out another one.
    gold = client.post("/api/v1/queue/claim/", {}, format="json")
    assert real.status_code == gold.status_code == 200
    real_case, gold_case = real.json()["case"], gold.json()["case"]
    assert Case.objects.get(pk=gold_case["id"]).is_gold and not Case.objects.get(pk=real_case["id"]).is_gold
    assert shape(real.json()) == shape(gold.json())
    assert gold_case["routing"] == real_case["routing"] and gold_case["prediction"] == real_case["prediction"]
    assert "gold" not in json.dumps(gold.json()).lower()
    # After deciding, the case GET shows the reviewer exactly what a real case shows.
    for payload, label in ((real_case, "approve"), (gold_case, "approve")):
        response = client.post(f"/api/v1/cases/{payload['id']}/decision/", {"outcome": "approve"}, format="json")
        assert response.status_code == 201, response.json()
    real_get = client.get(f"/api/v1/cases/{real_case['id']}/").json()
    gold_get = client.get(f"/api/v1/cases/{gold_case['id']}/").json()
    assert shape(real_get) == shape(gold_get)
    assert "gold" not in json.dumps(gold_get).lower() and "true_label" not in gold_get
    assert gold_get["status"] == real_get["status"] and gold_get["resolution"] == real_get["resolution"]


class _Skeleton(HTMLParser):
    """The tag and class sequence of a page (its structure, without the text)."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.items.append((tag, dict(attrs).get("class") or ""))


def skeleton(html: str) -> list[tuple[str, str]]:
    parser = _Skeleton()
    parser.feed(html)
    return parser.items


def test_workbench_page_of_a_gold_copy_looks_like_any_case(monkeypatch) -> None:
    point = make_point(gold_rate=0.5, sla_seconds=3600)
    gold_item(point, input={"amount": 25000, "text": "loan application"})
    make_case(point)
    reviewer = make_reviewer()
    client = page_client(reviewer)
    set_gold_dice(monkeypatch, 0.9)
    real = claim_next(reviewer=reviewer)
    real_html = client.get(reverse("reviews:case", args=[real.pk])).content.decode()
    claim_release(reviewer=reviewer, case=real)
    set_gold_dice(monkeypatch, 0.1)
    copy = claim_next(reviewer=reviewer)
    assert copy.is_gold and copy.sla_deadline is not None
    response = client.get(reverse("reviews:case", args=[copy.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "gold" not in html.lower()
    assert skeleton(html) == skeleton(real_html)
    # Same input, AI suggestion, reasons and guidelines as a real case shows.
    assert re.sub(r"\s+", " ", "loan application") in html and "confidence is below" in html.lower()


# --- Scoring ------------------------------------------------------------------------------------------------


def test_answers_are_scored_against_the_gold_label(monkeypatch, settings) -> None:
    settings.HITL_GOLD_WINDOW = 3
    point = make_point(gold_rate=1.0)
    labels = ["reject", "approve", "reject", "refer"]
    for _ in labels:
        gold_item(point, gold_label="reject")
    for _ in labels:
        make_case(point)
    reviewer = make_reviewer()
    set_gold_dice(monkeypatch, 0.0)
    for label in labels:
        copy = claim_next(reviewer=reviewer)
        assert copy.is_gold
        decide(reviewer, copy, label)
    answers = gold_answers(reviewer_id=reviewer.pk)
    assert [a.correct for a in reversed(answers)] == [True, False, True, False]
    # The sliding window: the last three answers (approve, reject, refer) → one correct.
    figures = gold_figures(reviewer_id=reviewer.pk)
    assert figures == {"gold_answered": 3, "gold_correct": 1, "gold_accuracy": 1 / 3, "gold_window": 3}
    assert gold_figures(reviewer_id=reviewer.pk, window=10)["gold_accuracy"] == 0.5


def test_escalating_a_gold_copy_counts_as_a_miss(monkeypatch) -> None:
    from reviews.services.decisions import decision_record

    point = make_point(gold_rate=1.0)
    gold_item(point)
    make_case(point)
    reviewer = make_reviewer()
    set_gold_dice(monkeypatch, 0.0)
    copy = claim_next(reviewer=reviewer)
    decision_record(reviewer=reviewer, case=copy, outcome="escalate", label=None, rationale="unsure")
    assert gold_figures(reviewer_id=reviewer.pk) == {"gold_answered": 1, "gold_correct": 0, "gold_accuracy": 0.0,
                                                     "gold_window": 50}


# --- CSV import ------------------------------------------------------------------------------------------------

CSV_OK = (
    "system,intervention_point,input,prediction_label,prediction_confidence,model_version,gold_label,note\n"
    'credit-scoring,loan-review,"{""amount"": 1}",approve,0.5,v1,reject,clear case\n'
    'credit-scoring,loan-review,"{""amount"": 2}",reject,0.4,v1,reject,\n'
)
CSV_BAD = (
    "system,intervention_point,input,prediction_label,prediction_confidence,gold_label\n"
    'credit-scoring,loan-review,"{""amount"": 1}",approve,0.5,reject\n'
    'credit-scoring,loan-review,not json,approve,0.5,reject\n'
    'credit-scoring,loan-review,"{""amount"": 3}",approve,0.5,maybe\n'
)


def test_csv_import_through_the_api_is_all_or_nothing(api_client_for) -> None:
    make_point()
    client = api_client_for("compliance_officer")
    bad = client.post(f"{GOLD_URL}import/", {"csv": CSV_BAD}, format="json")
    assert bad.status_code == 400
    errors = " ".join(bad.json()["csv"])
    assert "line 3: input" in errors and "line 4: gold_label" in errors
    assert not GoldItem.objects.exists()
    ok = client.post(f"{GOLD_URL}import/", {"csv": CSV_OK}, format="json")
    assert ok.status_code == 201, ok.json()
    assert len(ok.json()["created"]) == 2
    assert set(GoldItem.objects.values_list("source", flat=True)) == {"csv"}
    assert AuditEvent.objects.filter(action="gold.created").count() == 2
    assert GoldItem.objects.get(note="clear case").case.gold_label == "reject"


def test_csv_import_roles(api_client_for, anon_client) -> None:
    make_point()
    assert api_client_for("manager").post(f"{GOLD_URL}import/", {"csv": CSV_OK}, format="json").status_code == 403
    assert anon_client.post(f"{GOLD_URL}import/", {"csv": CSV_OK}, format="json").status_code == 401
    response = api_client_for("compliance_officer").post(f"{GOLD_URL}import/", {"csv": "a,b\n1,2\n"}, format="json")
    assert response.status_code == 400 and "header" in " ".join(response.json()["csv"])


def test_management_command_imports_as_an_officer(tmp_path) -> None:
    make_point()
    officer = make_user("compliance_officer")
    path = tmp_path / "gold.csv"
    path.write_text(CSV_OK, encoding="utf-8")
    out = io.StringIO()
    call_command("import_gold_items", str(path), "--as", officer.username, stdout=out)
    assert "Imported 2" in out.getvalue()
    assert AuditEvent.objects.filter(action="gold.created", actor_id=officer.pk).count() == 2
    path.write_text(CSV_BAD, encoding="utf-8")
    with pytest.raises(CommandError):
        call_command("import_gold_items", str(path), "--as", officer.username, stderr=io.StringIO())
    with pytest.raises(CommandError):
        call_command("import_gold_items", str(path), "--as", make_user("manager").username)
    assert GoldItem.objects.count() == 2


def test_gold_page_creates_and_imports(tmp_path) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    make_point()
    officer = make_user("compliance_officer")
    client = page_client(officer)
    assert client.get(reverse("quality:gold")).status_code == 200
    response = client.post(reverse("quality:gold"), {
        "action": "create", "target": "credit-scoring/loan-review", "input": '{"amount": 5}',
        "prediction_label": "approve", "prediction_confidence": "0.5", "gold_label": "reject",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    refused = client.post(reverse("quality:gold"), {
        "action": "create", "target": "credit-scoring/loan-review", "input": '{"amount": 5}',
        "prediction_label": "approve", "prediction_confidence": "0.99", "gold_label": "reject",
    })
    assert refused.status_code == 400 and "auto-accept" in refused.content.decode()
    upload = SimpleUploadedFile("gold.csv", CSV_OK.encode(), content_type="text/csv")
    response = client.post(reverse("quality:gold"), {"action": "import", "file": upload})
    assert response.status_code == 302
    assert GoldItem.objects.count() == 3
    bad = SimpleUploadedFile("gold.csv", CSV_BAD.encode(), content_type="text/csv")
    response = client.post(reverse("quality:gold"), {"action": "import", "file": bad})
    assert response.status_code == 400 and "Line 3" in response.content.decode()
    assert GoldItem.objects.count() == 3


@pytest.mark.parametrize("role", ["manager", "reviewer"])
def test_gold_page_is_for_officers_only(role: str) -> None:
    make_point()
    assert page_client(make_user(role)).get(reverse("quality:gold")).status_code == 403


def test_admin_add_leads_to_the_gold_page() -> None:
    admin = make_user("admin")
    response = page_client(admin).get("/admin/quality/golditem/add/")
    assert response.status_code == 302 and response.url == reverse("quality:gold")
    assert page_client(admin).get("/admin/quality/golditem/").status_code == 200


def test_a_gold_copy_and_a_real_case_look_alike_to_the_reviewer(monkeypatch) -> None:
    """Issue: a rule "external_id is a UUID / model version empty / received at the claim" spotted gold copies."""
    from reviews.selectors.queue import claim_payload as payload_of

    point = make_point(gold_rate=0.5, confidence_below=0.9)
    real = make_case(point, confidence=0.5)
    item = gold_item(point, label="approve")
    Case.objects.filter(pk=item.case_id).update(model_version="")  # as the API accepts it: no model version
    reviewer = make_reviewer()
    set_gold_dice(monkeypatch, 0.0)  # the next claim serves gold
    copy = claim_next(reviewer=reviewer)
    assert copy is not None and copy.is_gold
    gold_view = payload_of(copy)
    set_gold_dice(monkeypatch, 1.0)
    decide(reviewer, copy, "reject")
    served = claim_next(reviewer=reviewer)
    assert served is not None and served.pk == real.pk
    real_view = payload_of(served)
    assert set(gold_view) == set(real_view)
    for view in (gold_view, real_view):
        assert "external_id" not in view and "received_at" not in view
        assert "gold" not in json.dumps(view, default=str).lower()
    assert gold_view["prediction"]["model_version"] == real_view["prediction"]["model_version"] != ""
