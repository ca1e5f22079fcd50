"""Schemathesis against /api/schema/ for every endpoint: no 5xx, every status and body as the schema documents.

The case and queue endpoints get the most examples; the other operations fewer.

The Django WSGI app is called in-process inside the test's transaction, on
whichever database the run uses. Generation is bounded (30 examples per
operation in the fuzzing phase, plus the schema's examples and the coverage
phase's boundary and negative cases) and deterministic (fixed seed, no example
database), so a failure reproduces.

Fuzzed data alone would almost never get past "unknown system" or hit an
existing case, so in the fuzzing phase schema hooks steer part of it, chosen by
a hash of the generated value (deterministic): case bodies get the seeded
system and point and a plausible prediction (the rest of the body stays fuzzed:
NUL bytes, huge or wrongly typed values reach the deeper validation), ``{id}``
path parameters mostly get the id of a seeded case, and most generated
``Idempotency-Key`` headers are dropped. Each operation is called as the role
it is meant for (integration for ingestion and outcomes, a qualified reviewer
for the queue, an admin for reads and reopen), so the fuzz reaches the code
behind the permission layer.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.token_helpers import new_token_key

SYSTEM = "fuzz-credit"
POINT = "fuzz-review"
LABELS = ["approve", "reject"]
PATHS = r"^/api/v1/(cases|queue)/"

# The operations of the contract this test must cover (a missing one fails the test).
EXPECTED_OPERATIONS = {
    "GET /api/v1/cases/",
    "POST /api/v1/cases/",
    "POST /api/v1/cases/batch/",
    "GET /api/v1/cases/{id}/",
    "POST /api/v1/cases/{id}/outcome/",
    "POST /api/v1/cases/{id}/reopen/",
    "POST /api/v1/queue/claim/",
    "POST /api/v1/cases/{id}/decision/",
    "POST /api/v1/cases/{id}/renew/",
    "POST /api/v1/cases/{id}/release/",
}

# Examples per operation in the fuzzing phase for the operations outside PATHS.
OTHER_MAX_EXAMPLES = 8

CONFIG = {
    "seed": 20261124,
    "generation": {"max-examples": 30, "deterministic": True},
    "phases": {"stateful": {"enabled": False}},
}


def _fraction(value: Any) -> float:
    """A stable number in [0, 1) derived from a generated value (keeps generation deterministic)."""
    text = json.dumps(value, sort_keys=True, default=repr)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32


def _steer_case(item: Any) -> Any:
    """Point three quarters of the fuzzed case bodies at the seeded system, with a plausible prediction.

    The schema makes ``prediction`` optional (labeling points take cases without
    one), so a missing one is filled in; a generated one keeps its fuzzed fields
    but mostly gets a label of the system.
    """
    if not isinstance(item, dict) or _fraction(item) < 0.25:
        return item
    item = {**item, "system": SYSTEM, "intervention_point": POINT}
    prediction = item.get("prediction")
    label = LABELS[int(_fraction([item]) * 2)]
    if not isinstance(prediction, dict):
        item["prediction"] = {"label": label, "confidence": round(_fraction([item, 1]), 4), "model_version": "v1"}
    elif _fraction(prediction) < 0.7:
        item["prediction"] = {**prediction, "label": label}
    return item


@pytest.fixture
def fuzz_world(make_user: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A system with an intervention point, its integration, a qualified reviewer, an admin, and cases.

    While the fuzz runs, Django's WSGI handler must not close "old" connections
    around each request: inside the test's transaction that would close it (the
    test client disconnects them the same way, and reconnects them after each of
    its own requests, so this comes after the seeding).
    """
    from reviews.services.systems import intervention_point_create, system_create

    admin = make_user("admin", "fuzz-admin")
    system = system_create(actor=admin, slug=SYSTEM, name="Fuzz credit", labels=LABELS, declared_tier="high",
                           role="deployer", sector="finance", positive_label="approve")
    intervention_point_create(actor=admin, system=system, slug=POINT, name="Fuzz review", stage="validation",
                              confidence_below=0.5, sla_seconds=3600)
    integration = make_user("integration", "fuzz-integration", systems=[SYSTEM])
    reviewer = make_user("reviewer", "fuzz-reviewer", systems=[SYSTEM])
    tokens = {name: new_token_key(user)
              for name, user in (("admin", admin), ("integration", integration), ("reviewer", reviewer))}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {tokens['integration']}")
    case_ids = []
    for index in range(12):
        response = client.post("/api/v1/cases/", {
            "system": SYSTEM, "intervention_point": POINT, "external_id": f"seed-{index}",
            "input": {"amount": 1000 + index, "text": "seeded"},
            # Most are routed (confidence below 0.5), so the queue has work; a few are auto-accepted.
            "prediction": {"label": LABELS[index % 2], "confidence": 0.9 if index % 4 == 0 else 0.2},
            "subject": {"gender": "f"},
        }, format="json")
        assert response.status_code == 201, response.content
        case_ids.append(response.json()["id"])
    _SEEDED_CASE_IDS[:] = case_ids
    # A long-poll on a seeded, still queued case waits out its timeout (30 s by default, up to 60):
    # the fuzz's wait examples took six minutes. The contract is the same with waits of at most
    # one second (an out-of-range timeout is still refused); tests/reviews/test_wait.py times real waits.
    from reviews.api.views import wait as wait_view

    def short_timeout(request: Any, _original: Any = wait_view._timeout) -> int | None:
        seconds = _original(request)
        return None if seconds is None else min(seconds, 1)

    monkeypatch.setattr(wait_view, "_timeout", short_timeout)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield {"tokens": tokens, "case_ids": case_ids}
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
        _SEEDED_CASE_IDS.clear()


# Filled by the ``fuzz_world`` fixture; read by the hooks while examples are generated.
_SEEDED_CASE_IDS: list[int] = []


def _load_schema() -> Any:
    """The OpenAPI schema served by the app itself (no database access needed to render it).

    Loaded at import because ``@schema.parametrize()`` makes one test per operation
    at collection; schemathesis' lazy ``from_fixture`` loader fails on pytest 9 (it
    relies on pytest's private ``Function._nodeid``, which pytest 9 no longer has). drf-spectacular's generator warnings
    would print on every collection of the suite: they are kept back here
    (``manage.py spectacular --validate`` shows them) and shown only if loading fails.
    """
    from hitl_portal.wsgi import application

    generator_output = io.StringIO()
    try:
        with contextlib.redirect_stderr(generator_output):
            return schemathesis.openapi.from_wsgi(
                "/api/schema/", application, config=schemathesis.Config.from_dict(CONFIG)
            )
    except Exception:
        sys.stderr.write(generator_output.getvalue())
        raise


schema = _load_schema()


@schema.hook
def map_body(context: Any, body: Any) -> Any:
    path = context.operation.path if context.operation is not None else ""
    if path == "/api/v1/cases/":
        return _steer_case(body)
    if path == "/api/v1/cases/batch/" and isinstance(body, dict) and isinstance(body.get("cases"), list):
        return {**body, "cases": [_steer_case(item) for item in body["cases"]]}
    return body


@schema.hook
def map_headers(context: Any, headers: Any) -> Any:
    """Drop most generated ``Idempotency-Key`` headers (they come out mostly empty, a 400), keep the rest."""
    if isinstance(headers, dict) and "Idempotency-Key" in headers:
        key = headers["Idempotency-Key"]
        if not isinstance(key, str) or not key.strip() or _fraction(headers) < 0.6:
            headers = {name: value for name, value in headers.items() if name != "Idempotency-Key"}
    return headers


@schema.hook
def map_path_parameters(context: Any, path_parameters: Any) -> Any:
    """Aim most path parameters at seeded objects, so the handlers behind the lookup run too.

    ``{id}`` of a case path → a seeded case; ``{slug}``/``{point}`` → the seeded system and
    intervention point; ``{username}`` → the seeded reviewer. A quarter stay fuzzed (404s,
    odd characters in the path).
    """
    if not isinstance(path_parameters, dict) or _fraction(path_parameters) >= 0.75:
        return path_parameters
    path = context.operation.path if context.operation is not None else ""
    mapped = dict(path_parameters)
    if _SEEDED_CASE_IDS and "id" in mapped and path.startswith("/api/v1/cases/"):
        mapped["id"] = _SEEDED_CASE_IDS[int(_fraction([path_parameters]) * len(_SEEDED_CASE_IDS))]
    if "slug" in mapped:
        mapped["slug"] = SYSTEM
    if "point" in mapped:
        mapped["point"] = POINT
    if "username" in mapped:
        mapped["username"] = "fuzz-reviewer"
    return mapped


def _role_for(method: str, path: str) -> str:
    if path == "/api/v1/auth/token/":
        return "anonymous"
    if path.startswith("/api/v1/queue/") or path.endswith(("/decision/", "/renew/", "/release/")):
        return "reviewer"
    if method == "POST" and (path in ("/api/v1/cases/", "/api/v1/cases/batch/") or path.endswith("/outcome/")):
        return "integration"
    return "admin"


@pytest.mark.slow
@schema.include(path_regex=PATHS).parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_case_and_queue_endpoints_conform(case: Any, fuzz_world: dict[str, Any]) -> None:
    _call(case, fuzz_world)


def _call(case: Any, fuzz_world: dict[str, Any]) -> None:
    role = _role_for(case.method.upper(), case.path)
    headers = {} if role == "anonymous" else {"Authorization": f"Token {fuzz_world['tokens'][role]}"}
    case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance])


# Every other operation of the API, with fewer examples each (about 55 operations: the whole
# file stays within a few minutes in CI). ``response_schema_conformance`` fails on any status
# the schema does not document, so "no undocumented status" is checked here as well.
@pytest.mark.slow
@schema.exclude(path_regex=PATHS).parametrize()
@settings(max_examples=OTHER_MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_other_endpoint_conforms(case: Any, fuzz_world: dict[str, Any]) -> None:
    _call(case, fuzz_world)


@pytest.mark.slow
def test_schema_lists_every_case_and_queue_operation() -> None:
    """The fuzz above only covers what the schema lists: the contract's operations must all be there."""
    listed = {
        f"{result.ok().method.upper()} {result.ok().path}"
        for result in schema.include(path_regex=PATHS).get_all_operations()
    }
    assert listed >= EXPECTED_OPERATIONS, sorted(EXPECTED_OPERATIONS - listed)
