"""``GET /api/v1/systems/{slug}/training-data/``: human-validated labels for retraining, in three formats."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any

import pyarrow.parquet as pq
import pytest

from audit.models import AuditEvent
from reviews.services.decisions import decision_record
from reviews.services.queue import claim_next
from tests.reviews.factories import ingest, make_system_with_point
from tests.reviews.queue_helpers import make_reviewer, make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/systems/credit-scoring/training-data/"


@pytest.fixture
def decided() -> dict[str, Any]:
    system, _ = make_system_with_point(confidence_below=0.9, system_fields={"protected_attributes": ["gender"]})
    integration = make_user("integration", systems=[system.slug])
    reviewer = make_reviewer(systems=[system])
    override = ingest(integration, external_id="=HYPERLINK(\"http://x\")", label="approve", confidence=0.5,
                      subject={"gender": "f"})
    claim_next(reviewer=reviewer)
    decision_record(case=override, reviewer=reviewer, outcome="override", label="reject", rationale="income too low")
    approved = ingest(integration, external_id="app-2", label="reject", confidence=0.4, subject={"gender": "m"})
    claim_next(reviewer=reviewer)
    decision_record(case=approved, reviewer=reviewer, outcome="approve", label=None, rationale="")
    ingest(integration, external_id="auto-1", label="approve", confidence=0.99)  # auto-accepted: not exported
    ingest(integration, external_id="open-1", label="approve", confidence=0.1)  # still queued: not exported
    return {"system": system, "override": override, "approved": approved}


def _body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def test_jsonl_holds_each_human_decision_and_is_audited_with_its_hash(api_client_for, decided) -> None:
    response = api_client_for("manager").get(URL, {"format": "jsonl"})
    assert response.status_code == 200
    body = _body(response)
    rows = [json.loads(line) for line in body.decode().splitlines()]
    assert [r["case_id"] for r in rows] == [decided["override"].pk, decided["approved"].pk]
    first = rows[0]
    assert (first["ai_label"], first["final_label"], first["resolution"]) == ("approve", "reject", "reviewed")
    assert first["override_rationale"] == "income too low" and first["model_version"] == "v3.1"
    assert "subject" not in first
    event = AuditEvent.objects.get(action="training_data.exported")
    data = json.loads(event.payload)["data"]
    assert data["sha256"] == hashlib.sha256(body).hexdigest() and data["format"] == "jsonl"


def test_csv_is_formula_safe(api_client_for, decided) -> None:
    response = api_client_for("compliance_officer").get(URL, {"format": "csv"})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(_body(response).decode())))
    assert rows[0]["external_id"].startswith("'=")
    assert json.loads(rows[0]["input"])["amount"] == 2500


def test_parquet_reads_back(api_client_for, decided) -> None:
    response = api_client_for("compliance_officer").get(URL, {"format": "parquet"})
    assert response.status_code == 200
    table = pq.read_table(io.BytesIO(_body(response)))
    assert table.num_rows == 2
    assert table.column("final_label").to_pylist() == ["reject", "reject"]


def test_subject_attributes_only_when_asked_and_permitted(api_client_for, decided) -> None:
    officer = api_client_for("compliance_officer").get(URL, {"include_subject": "true"})
    rows = [json.loads(line) for line in _body(officer).decode().splitlines()]
    assert rows[0]["subject"] == {"gender": "f"}
    manager = api_client_for("manager").get(URL, {"include_subject": "true"})
    assert manager.status_code == 403 and manager.json()["code"] == "subject_not_permitted"


@pytest.mark.parametrize("role", ["reviewer", "integration"])
def test_other_roles_are_refused(api_client_for, decided, role) -> None:
    assert api_client_for(role).get(URL).status_code == 403


@pytest.mark.parametrize(("params", "field"), [({"format": "xlsx"}, "format"), ({"from": "yesterday"}, "from"),
                                                ({"from": "2026-02-01", "to": "2026-01-01"}, "to")])
def test_bad_parameters_are_a_400_naming_the_field(api_client_for, decided, params, field) -> None:
    response = api_client_for("compliance_officer").get(URL, params)
    assert response.status_code == 400
    assert field in response.json()


def test_time_window_and_unknown_system(api_client_for, decided) -> None:
    client = api_client_for("compliance_officer")
    assert _body(client.get(URL, {"from": "2999-12-31"})) == b""
    assert len(_body(client.get(URL, {"from": "2000-01-01", "to": "2999-12-31"})).splitlines()) == 2
    # Dates outside what the portal stores are a 400 naming the field, never an overflow.
    edge = client.get(URL, {"from": "0001-01-01"})
    assert edge.status_code == 400 and "from" in edge.json()
    assert client.get("/api/v1/systems/nope/training-data/").status_code == 404


def test_jsonl_keeps_every_input_value_exact_beyond_what_the_fast_encoder_takes(api_client_for) -> None:
    # Rows are encoded by orjson, which refuses integers beyond 64 bits; such a row must be written
    # all the same, with the value unchanged (and the other rows by the fast path), one per line.
    system, _ = make_system_with_point(confidence_below=0.9)
    integration = make_user("integration", systems=[system.slug])
    reviewer = make_reviewer(systems=[system])
    inputs = [{"account": 2**70, "name": "Zoë\u2028"}, {"amount": 1.5, "text": "plain"}]
    for n, data in enumerate(inputs):
        case = ingest(integration, external_id=f"big-{n}", label="approve", confidence=0.5, input=data)
        claim_next(reviewer=reviewer)
        decision_record(case=case, reviewer=reviewer, outcome="approve", label=None, rationale="")
    body = _body(api_client_for("manager").get(URL, {"format": "jsonl"}))
    lines = body.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 3
    assert [json.loads(line)["input"] for line in lines[:-1]] == inputs


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_prefetching_walk_outside_a_transaction_gives_the_rows_of_the_inline_walk(monkeypatch) -> None:
    # Outside a transaction the export fetches the next chunk on a helper thread with its own
    # connection; inside one it reads inline. Small chunks and runs of equal received_at (the keyset's
    # tie-break on id): both must give the same rows in the same order, and the helper's connection closes.
    import datetime as dt
    import time

    from django.db import connection, transaction
    from django.utils import timezone

    from records import training_data
    from reviews.models import Case
    from tests.quality.helpers import make_point, make_reviewer, write_decisions

    point = make_point(reviewers_required=1)
    reviewers = [make_reviewer(f"walk-{n}") for n in range(2)]
    cases = write_decisions(point, [{reviewers[n % 2]: "approve" if n % 3 else "reject"} for n in range(23)])
    start = timezone.now() - dt.timedelta(days=2)
    for n, case in enumerate(cases):  # runs of equal times, not in id order
        Case.objects.filter(pk=case.pk).update(received_at=start + dt.timedelta(minutes=(n * 7) % 5))
    monkeypatch.setattr(training_data, "CHUNK", 3)
    export = training_data.TrainingExport(system=point.system, start=None, end=None, fmt="jsonl",
                                          include_subject=False)

    def backends() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            return cursor.fetchone()[0]

    before = backends()
    walked = list(training_data._rows(export))
    # A closed connection's backend exits a moment after the client hangs up: poll briefly.
    deadline = time.monotonic() + 10
    while backends() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backends() <= before
    with transaction.atomic():
        inline = list(training_data._rows(export))
    assert [row["case_id"] for row in inline] == [
        case.pk for case in Case.objects.filter(pk__in=[c.pk for c in cases]).order_by("received_at", "id")]
    assert walked == inline and len(walked) == 23
