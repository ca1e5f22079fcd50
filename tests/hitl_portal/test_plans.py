"""The write hot paths run with generic plans, every other request with custom plans (hitl_portal.plans).

The session's mode is read with the driver's own connection (``SHOW``), past the
portal's execute wrapper: a statement sent through Django would first be switched
to the mode the current request wants.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import override_settings

from hitl_portal import plans
from tests.reviews.queue_helpers import client_for, make_case, make_point, make_reviewer, make_system, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CASES = "/api/v1/cases/"
CLAIM = "/api/v1/queue/claim/"
DEFAULT = "force_custom_plan"


def session_mode() -> str:
    """The mode PostgreSQL's session is in, asked past Django's cursor (and so past the wrapper)."""
    connection.ensure_connection()
    row = connection.connection.execute("SHOW plan_cache_mode").fetchone()
    return str(row[0])


def body(external_id: str) -> dict[str, Any]:
    return {"system": "credit-scoring", "intervention_point": "loan-review", "external_id": external_id,
            "input": {"amount": 100}, "prediction": {"label": "approve", "confidence": 0.2}}


@pytest.fixture(autouse=True)
def _fresh_session() -> Iterator[None]:
    # Each test starts from a new session, in the connection's default mode.
    connection.close()
    yield
    connection.close()


@pytest.fixture
def integration() -> Any:
    make_point(make_system())
    return client_for(make_user("integration", systems=["credit-scoring"]))


def test_the_settings_of_this_run_ask_for_generic_plans_on_the_hot_paths_only() -> None:
    assert plans.default_mode() == DEFAULT
    assert plans.hot_path_mode() == "auto"


def test_ingest_switches_its_session_and_the_next_read_switches_it_back(integration: Any) -> None:
    response = integration.post(CASES, body("p-1"), format="json")
    assert response.status_code == 201, response.content
    assert session_mode() == "auto"

    listing = integration.get(CASES)  # the same view's GET is a read: custom plans
    assert listing.status_code == 200
    assert session_mode() == DEFAULT

    assert integration.post(CASES, body("p-2"), format="json").status_code == 201
    assert session_mode() == "auto"
    assert integration.get(f"{CASES}{response.json()['id']}/").status_code == 200
    assert session_mode() == DEFAULT


def test_batch_ingest_is_a_hot_path(integration: Any) -> None:
    response = integration.post(f"{CASES}batch/", {"cases": [body("b-1"), body("b-2")]}, format="json")
    assert response.status_code in (200, 201, 207), response.content
    assert session_mode() == "auto"
    assert integration.get(CASES).status_code == 200
    assert session_mode() == DEFAULT


def test_the_claim_and_the_decision_are_hot_paths_and_pages_are_not(client: Any) -> None:
    point = make_point(make_system())
    make_case(point)
    reviewer = make_reviewer()
    api = client_for(reviewer)

    claimed = api.post(CLAIM, {}, format="json")
    assert claimed.status_code == 200, claimed.content
    assert session_mode() == "auto"
    decided = api.post(f"/api/v1/cases/{claimed.json()['case']['id']}/decision/",
                       {"outcome": "approve"}, format="json")
    assert decided.status_code == 201, decided.content
    assert session_mode() == "auto"

    client.force_login(reviewer)
    assert client.get("/review/").status_code == 200
    assert session_mode() == DEFAULT


def test_a_request_that_is_refused_still_leaves_the_next_read_its_custom_plans(integration: Any) -> None:
    bad = integration.post(CASES, {**body("p-3"), "system": "no-such-system"}, format="json")
    assert bad.status_code == 400
    assert session_mode() == "auto"  # the token lookup ran planned the hot paths' way
    assert integration.get(CASES).status_code == 200
    assert session_mode() == DEFAULT


def test_nothing_is_switched_inside_a_transaction_that_could_undo_it() -> None:
    plans.prefer_hot_path_plans()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert session_mode() == DEFAULT  # a session SET here would vanish with a rollback
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert session_mode() == "auto"  # in autocommit it is switched


def test_a_read_inside_a_transaction_gets_custom_plans_for_that_transaction_only() -> None:
    plans.prefer_hot_path_plans()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert session_mode() == "auto"

    plans.reset_wanted()  # the next request starts, and its first statement is in a transaction
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.execute("SELECT 2")
            assert session_mode() == DEFAULT  # SET LOCAL: this transaction only
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert session_mode() == "auto"  # the session itself was not changed, and nothing is believed changed
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert session_mode() == DEFAULT


def test_statements_run_many_times_are_switched_too() -> None:
    plans.prefer_hot_path_plans()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE plan_probe (n integer)")
    plans.reset_wanted()
    assert session_mode() == "auto"
    with connection.cursor() as cursor:
        cursor.executemany("INSERT INTO plan_probe (n) VALUES (%s)", [(1,), (2,)])
        cursor.execute("SELECT count(*) FROM plan_probe")
        assert cursor.fetchone()[0] == 2
    assert session_mode() == DEFAULT


def test_the_wrapper_survives_other_execute_wrappers_and_a_new_connection() -> None:
    seen: list[str] = []

    def spy(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    connection.ensure_connection()
    with connection.execute_wrapper(spy):
        plans.prefer_hot_path_plans()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    assert seen == ["SELECT 1"]  # the switch is not a statement of the caller's
    assert connection.execute_wrappers == [plans._switch_plan_mode]
    assert session_mode() == "auto"

    connection.close()
    connection.ensure_connection()
    assert session_mode() == DEFAULT
    assert plans.session_mode(connection) == DEFAULT  # a new session is believed to be in the default
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert session_mode() == "auto"  # still wanted in this request, so switched again


def test_with_the_hot_path_mode_set_to_the_default_nothing_is_switched(integration: Any) -> None:
    with override_settings(HITL_HOT_PATH_PLAN_CACHE_MODE=DEFAULT):
        assert integration.post(CASES, body("p-4"), format="json").status_code == 201
        assert session_mode() == DEFAULT


def test_an_unknown_mode_is_never_sent_to_the_database() -> None:
    with override_settings(HITL_HOT_PATH_PLAN_CACHE_MODE="auto; DROP TABLE x"):
        plans.prefer_hot_path_plans()
        with pytest.raises(ValueError, match="unknown plan_cache_mode"), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    plans.reset_wanted()


@transaction.atomic
def _read_in_a_transaction() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return session_mode()


def test_a_function_decorated_atomic_gets_custom_plans_on_every_call() -> None:
    # ``@transaction.atomic`` reuses one Atomic object for every call: the SET LOCAL must
    # still be sent once per transaction, not once per Atomic object.
    plans.prefer_hot_path_plans()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    plans.reset_wanted()
    assert [_read_in_a_transaction() for _ in range(3)] == [DEFAULT] * 3
    assert session_mode() == "auto"


def test_a_server_side_cursor_as_the_first_statement_is_switched_too(integration: Any) -> None:
    from reviews.models import Case

    assert integration.post(CASES, body("p-5"), format="json").status_code == 201
    assert session_mode() == "auto"
    plans.reset_wanted()
    with transaction.atomic():  # a named cursor needs a transaction
        assert [case.external_id for case in Case.objects.all().iterator(chunk_size=10)] == ["p-5"]
        assert session_mode() == DEFAULT


def test_a_failed_switch_is_a_django_database_error_and_marks_the_connection() -> None:
    import psycopg
    from django.db import OperationalError

    plans.prefer_hot_path_plans()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    plans.reset_wanted()  # the next statement needs a switch back
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    with pytest.raises(OperationalError), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert connection.errors_occurred
