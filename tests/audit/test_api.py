"""GET /api/v1/audit/events/ and /api/v1/audit/verify/."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from audit.models import AuditEvent
from audit.services import seal_pending
from tests.audit.factories import make_system, write_events

pytestmark = pytest.mark.django_db

EVENTS_URL = "/api/v1/audit/events/"
VERIFY_URL = "/api/v1/audit/verify/"
CONTRACT_FIELDS = {
    "seq",
    "at",
    "actor",
    "actor_type",
    "action",
    "object_type",
    "object_id",
    "data",
    "prev_hash",
    "hash",
}


@pytest.fixture
def officer(api_client_for: Any) -> Any:
    return api_client_for("compliance_officer")


@pytest.mark.parametrize("role", ["compliance_officer", "admin"])
def test_events_allowed_roles(api_client_for: Any, role: str) -> None:
    client = api_client_for(role)
    write_events(2)
    seal_pending()
    response = client.get(EVENTS_URL)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert [event["seq"] for event in body["results"]] == sorted(event["seq"] for event in body["results"])
    assert len(body["results"]) == AuditEvent.objects.sealed().count()


@pytest.mark.parametrize("role", ["manager", "reviewer", "integration"])
def test_events_denied_roles(api_client_for: Any, role: str) -> None:
    response = api_client_for(role).get(EVENTS_URL)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_events_unauthenticated(anon_client: Any) -> None:
    response = anon_client.get(EVENTS_URL)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_event_fields_follow_the_contract(officer: Any) -> None:
    system = make_system(actor=officer.user)
    seal_pending()
    event = AuditEvent.objects.get(action="system.created")
    response = officer.get(EVENTS_URL, {"action": "system.created"})
    (item,) = response.json()["results"]
    assert set(item) >= CONTRACT_FIELDS
    assert {"reason", "request_id", "object_label", "payload_sha256"} <= set(item)
    assert item["seq"] == event.seq
    assert item["actor"] == officer.user.username
    assert item["actor_type"] == "user"
    assert item["object_type"] == "aisystem"
    assert item["object_id"] == str(system.pk)
    assert item["object_label"] == system.name
    assert item["hash"] == event.hash
    assert item["prev_hash"] == event.prev_hash
    assert item["payload_sha256"] == event.payload_sha256
    assert item["data"]["after"]["slug"] == system.slug  # the parsed payload, not its text
    assert item["at"].endswith("Z")


def test_unsealed_events_are_not_listed(officer: Any) -> None:
    seal_pending()
    sealed_count = AuditEvent.objects.sealed().count()
    write_events(2)  # not sealed yet (nothing commits inside the test transaction)
    assert len(officer.get(EVENTS_URL).json()["results"]) == sealed_count
    seal_pending()
    assert len(officer.get(EVENTS_URL).json()["results"]) == sealed_count + 2


def test_purged_payload_is_listed_as_null_data(officer: Any) -> None:
    write_events(1, action="case.created", case_id=77)
    seal_pending()
    event = AuditEvent.objects.get(case_id=77)
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET payload = NULL WHERE id = %s", [event.pk])
    (item,) = officer.get(EVENTS_URL, {"case": 77}).json()["results"]
    assert item["data"] is None
    assert item["payload_sha256"] == event.payload_sha256


def test_filters(officer: Any) -> None:
    credit = make_system("credit-scoring", actor=officer.user)
    other = make_system(
        "content-moderation", actor=officer.user, labels=["allow", "remove"], declared_tier="limited", annex_iii_area=""
    )
    write_events(2, action="case.created", system_id=credit.pk, case_id=10)
    write_events(1, action="case.decided", system_id=other.pk, case_id=11)
    seal_pending()

    def seqs(**params: Any) -> list[int]:
        response = officer.get(EVENTS_URL, params)
        assert response.status_code == 200, response.content
        return [item["seq"] for item in response.json()["results"]]

    by = AuditEvent.objects.sealed()
    assert seqs(case=10) == list(by.filter(case_id=10).values_list("seq", flat=True))
    assert seqs(system="credit-scoring") == list(by.filter(system_id=credit.pk).values_list("seq", flat=True))
    assert seqs(system=str(other.pk)) == list(by.filter(system_id=other.pk).values_list("seq", flat=True))
    assert seqs(action="case.created") == list(by.filter(action="case.created").values_list("seq", flat=True))
    assert seqs(action="case.*") == list(by.filter(action__startswith="case.").values_list("seq", flat=True))
    assert seqs(action="case.decided,system.created") == list(
        by.filter(action__in=["case.decided", "system.created"]).values_list("seq", flat=True)
    )
    middle = by.get(action="case.decided").seq - 1
    assert seqs(after_seq=middle) == list(by.filter(seq__gt=middle).values_list("seq", flat=True))
    assert seqs(system="credit-scoring", action="case.created", case=10) == list(
        by.filter(system_id=credit.pk, action="case.created").values_list("seq", flat=True)
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after_seq": "abc"}, "after_seq"),
        ({"after_seq": "-1"}, "after_seq"),
        ({"case": "x"}, "case"),
        ({"system": "no-such-system"}, "system"),
        ({"action": "case.exploded"}, "action"),
        ({"action": "nothing.*"}, "action"),
    ],
)
def test_bad_filters_are_400_naming_the_field(officer: Any, params: dict[str, str], field: str) -> None:
    response = officer.get(EVENTS_URL, params)
    assert response.status_code == 400
    assert field in response.json()


def test_cursor_pagination_walks_the_chain_in_seq_order(officer: Any) -> None:
    write_events(5)
    seal_pending()
    expected = list(AuditEvent.objects.sealed().values_list("seq", flat=True))
    seen: list[int] = []
    url: str | None = f"{EVENTS_URL}?page_size=2"
    while url:
        body = officer.get(url).json()
        assert len(body["results"]) <= 2
        seen += [item["seq"] for item in body["results"]]
        url = body["next"]
    assert seen == expected


def test_events_list_query_count_does_not_grow_with_rows(officer: Any, django_assert_max_num_queries: Any) -> None:
    write_events(30)
    seal_pending()
    officer.get(EVENTS_URL)  # warm the role cache paths
    # Token + user, the role lookup, the page of events: no per-row queries.
    with django_assert_max_num_queries(4):
        response = officer.get(EVENTS_URL)
    assert len(response.json()["results"]) >= 30


@pytest.mark.parametrize("role", ["compliance_officer", "admin"])
def test_verify_allowed_roles(api_client_for: Any, role: str) -> None:
    client = api_client_for(role)
    write_events(3)
    seal_pending()
    response = client.get(VERIFY_URL)
    assert response.status_code == 200
    body = response.json()
    head = AuditEvent.objects.sealed().order_by("-seq").first()
    assert body["ok"] is True
    assert body["events"] == AuditEvent.objects.sealed().count()
    assert body["head_hash"] == head.hash
    assert body["first_bad_seq"] is None


@pytest.mark.parametrize("role", ["manager", "reviewer", "integration"])
def test_verify_denied_roles(api_client_for: Any, role: str) -> None:
    assert api_client_for(role).get(VERIFY_URL).status_code == 403


def test_verify_unauthenticated(anon_client: Any) -> None:
    assert anon_client.get(VERIFY_URL).status_code == 401
