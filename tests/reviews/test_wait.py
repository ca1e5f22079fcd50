"""``GET /api/v1/cases/{id}/wait/``: long-poll until decided or timeout (issue 14)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test import override_settings

from reviews.models import Case
from reviews.services.decisions import decision_record
from reviews.services.queue import claim_next
from tests.reviews.queue_helpers import make_point, make_reviewer, make_system, make_user
from tests.token_helpers import new_token_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _requirements_catalog(transactional_db: Any) -> None:
    """Live-server tests flush the database: reload the catalog a migration loaded (obligations need it)."""
    from compliance.catalog import load_catalog
    from compliance.models import CatalogVersion

    if not CatalogVersion.objects.filter(is_current=True).exists():
        load_catalog()


def _setup() -> tuple[Any, Any, Case]:
    point = make_point(slug="agent-tools", kind="action", confidence_below=None, tool_rules={"always": ["*"]})
    make_system()
    integration = make_user("integration", systems=["credit-scoring"])
    from reviews.api.serializers.cases import CaseSubmissionValidator
    from reviews.services.ingest import case_ingest

    data, errors = CaseSubmissionValidator(actor=integration).validate({
        "system": "credit-scoring", "intervention_point": point.slug, "external_id": "w1",
        "action": {"tool": "refund", "arguments": {"amount": 5}, "agent": "bot"},
    })
    assert errors is None, errors
    case = case_ingest(actor=integration, data=data)
    return integration, make_reviewer(), case


def _client(live_server: Any, user: Any) -> httpx.Client:
    return httpx.Client(base_url=live_server.url, headers={"Authorization": f"Token {new_token_key(user)}"},
                        timeout=30)


def _decide_later(reviewer: Any, case: Case, delay: float) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        claimed = claim_next(reviewer=reviewer)
        assert claimed is not None and claimed.pk == case.pk
        decision_record(reviewer=reviewer, case=claimed, outcome="deny", label=None, rationale="Not today.")
        connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_timeout_returns_the_current_state(live_server: Any) -> None:
    integration, _, case = _setup()
    with _client(live_server, integration) as client:
        started = time.monotonic()
        response = client.get(f"/api/v1/cases/{case.pk}/wait/", params={"timeout": 1})
        assert response.status_code == 200
        assert response.json()["status"] == "queued"
        # It held the request for the timeout (a behaviour, not a speed: no upper bound).
        assert time.monotonic() - started >= 0.9
        assert response.headers["Cache-Control"] == "no-store"


def test_bad_timeout_is_a_400_naming_the_field(live_server: Any) -> None:
    integration, _, case = _setup()
    with _client(live_server, integration) as client:
        for value in ("61", "-1", "soon"):
            response = client.get(f"/api/v1/cases/{case.pk}/wait/", params={"timeout": value})
            assert response.status_code == 400 and "timeout" in response.json()


def test_denied_without_token_and_for_other_integrations(live_server: Any) -> None:
    _, _, case = _setup()
    assert httpx.get(f"{live_server.url}/api/v1/cases/{case.pk}/wait/?timeout=0").status_code == 401
    stranger = make_user("integration")
    with _client(live_server, stranger) as client:
        assert client.get(f"/api/v1/cases/{case.pk}/wait/", params={"timeout": 0}).status_code == 404


def test_returns_as_soon_as_the_case_is_decided(live_server: Any) -> None:
    """With Redis (the test settings' REDIS_URL): the notification wakes the waiter."""
    integration, reviewer, case = _setup()
    thread = _decide_later(reviewer, case, 1.0)
    with _client(live_server, integration) as client:
        started = time.monotonic()
        response = client.get(f"/api/v1/cases/{case.pk}/wait/", params={"timeout": 60})
        elapsed = time.monotonic() - started
    thread.join()
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "decided"
    assert body["final_output"]["reason"] == "Not today."
    # Woken by the decision, not by the 60 s timeout (the margin absorbs any machine's load;
    # how fast the wake-up is gets measured by bench/approval_roundtrip.py, not here).
    assert elapsed < 30, elapsed


@override_settings(REDIS_URL="")
def test_embedded_default_polls_the_database(live_server: Any) -> None:
    integration, reviewer, case = _setup()
    thread = _decide_later(reviewer, case, 1.0)
    with _client(live_server, integration) as client:
        started = time.monotonic()
        response = client.get(f"/api/v1/cases/{case.pk}/wait/", params={"timeout": 60})
        elapsed = time.monotonic() - started
    thread.join()
    assert response.json()["status"] == "decided"
    assert elapsed < 30, elapsed  # woken by the poll that saw the decision, not by the timeout
