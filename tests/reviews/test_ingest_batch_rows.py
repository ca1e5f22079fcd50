"""The batch builds its cases without ``Model.__init__``: the same values, rows and responses as ``build_case``.

``case_ingest_batch`` sets each case's attributes in a dict and prepares its row from
it (``reviews.services.ingest._case_of``); single ingest and the gold copies still go
through ``build_case`` and ``prepared_row``. Every kind of case is built both ways
here and compared field by field (value and type), column by column, with the same
relation caches, audit events and API response.
"""

from __future__ import annotations

import datetime as dt
import gc
from typing import Any

import pytest
from django.db import connection
from django.db.models.signals import post_init
from django.utils import timezone
from psycopg.types.json import Jsonb

from audit.canonical import canonical_json
from audit.models import AuditEvent
from reviews.api.serializers.cases import CaseSubmissionValidator
from reviews.models import AISystem, Case, CaseStatus, InterventionPoint
from reviews.selectors.cases import case_ingest_response
from reviews.services.ingest import (
    BatchItem,
    _build_case,
    _case_of,
    _case_template,
    _event_specs,
    _plan,
    _row_from_values,
    _row_plan,
    case_ingest_batch,
    case_ingest_screened,
    collector_paused,
    prepared_row,
)
from reviews.services.systems import system_halt
from tests.reviews.factories import make_system_with_point, submission
from tests.reviews.queue_helpers import make_user

pytestmark = pytest.mark.django_db

CASE_FIELDS = [f.attname for f in Case._meta.concrete_fields]
ACTION = {"tool": "send_payment", "arguments": {"amount": 1200, "to": "ACME"}, "agent": "billing-bot",
          "rationale": "Invoice 42 is due."}


def _validated(actor: Any, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    validator = CaseSubmissionValidator(actor=actor)
    validator.prime(bodies)
    out = []
    for body in bodies:
        data, errors = validator.validate(body)
        assert errors is None, (body, errors)
        out.append(data)
    return out


def _comparable(value: Any) -> Any:
    # psycopg's JSON wrapper has no equality of its own: compare what it wraps.
    return ("jsonb", value.obj) if isinstance(value, Jsonb) else value


@pytest.fixture
def bodies() -> list[dict[str, Any]]:
    """Every kind of case ingestion builds, on points set up for each of them."""
    make_system_with_point(confidence_below=0.7, sla_seconds=600, reviewers_required=2)
    make_system_with_point(point="blind-review", confidence_below=0.3, blind_review_rate=1.0)
    make_system_with_point(point="no-sla", confidence_below=0.5)
    make_system_with_point(point="labeling", stage="labeling", sla_seconds=120)
    make_system_with_point("halted", "intake", confidence_below=0.1, sla_seconds=60)
    system_halt(actor=None, system=AISystem.objects.get(slug="halted"), reason="Drift detected")
    make_system_with_point("face-id", "verify", labels=("match", "no_match"),
                           system_fields={"annex_iii_area": "1a", "non_match_label": "no_match"},
                           confidence_below=0.5, reviewers_required=2, sla_seconds=300)
    # A point configured before Art. 14(5) was enforced: ingestion still asks for two.
    InterventionPoint.objects.filter(slug="verify").update(reviewers_required=1)
    make_system_with_point(point="replies", kind="generation", confidence_below=None, sla_seconds=900,
                           text_rules={"max_length": 500, "keywords": ["refund"]})
    make_system_with_point(point="agent-tools", kind="action", confidence_below=None, sla_seconds=900,
                           tool_rules={"always": ["send_payment"], "never": ["lookup_balance"]})
    soon = (timezone.now() + dt.timedelta(seconds=120)).isoformat()
    later = (timezone.now() + dt.timedelta(days=3)).isoformat()
    out: list[dict[str, Any]] = []
    for i, confidence in enumerate((0.0, 0.05, 0.29, 0.5, 0.69, 0.7, 0.95, 1.0)):
        out.append(submission(external_id=f"c-{i}", confidence=confidence, label="approve" if i % 2 else "reject"))
        out.append(submission(point="blind-review", external_id=f"b-{i}", confidence=confidence))
        out.append(submission(point="no-sla", external_id=f"n-{i}", confidence=confidence))
        out.append(submission("halted", "intake", external_id=f"h-{i}", confidence=confidence))
        out.append(submission("face-id", "verify", external_id=f"f-{i}", confidence=confidence,
                              label="match" if i % 2 else "no_match"))
    out += [
        submission(point="labeling", external_id="no-prediction", label=None),
        submission(external_id="full", confidence=0.9, callback_url="https://example.org/hook",
                   subject={"gender": "f", "age_band": "25-34"},
                   prediction={"label": "approve", "confidence": 0.9, "model_version": "",
                               "explanation": {"reason_codes": ["income"],
                                               "attributions": [{"feature": "income", "value": 5, "weight": 0.4}]}}),
        submission(external_id="no-version", confidence=0.2, model_version=""),
        submission(external_id="nested", confidence=0.1, input={"a": [1, 2.5, {"b": None}], "c": "ü"}),
        submission(point="replies", external_id="g-ok", label=None,
                   generation={"text": "Thanks for writing, we will call you.", "prompt": "Answer"}),
        submission(point="replies", external_id="g-review", label=None,
                   generation={"text": "You get a refund.", "prompt": "Answer"}),
        submission(point="replies", external_id="g-deadline", label=None, expires_at=soon,
                   generation={"text": "You get a refund.", "prompt": "Answer"}),
        submission(point="replies", external_id="g-late-deadline", label=None, expires_at=later,
                   generation={"text": "A refund, maybe.", "prompt": "Answer"}),
        submission(point="agent-tools", external_id="a-review", label=None, action=ACTION),
        submission(point="agent-tools", external_id="a-ok", label=None,
                   action={**ACTION, "tool": "lookup_balance", "arguments": {"account": "1"}}),
        submission(point="agent-tools", external_id="a-deadline", label=None, expires_at=soon, action=ACTION),
    ]
    return out


@pytest.mark.parametrize("anonymous", [False, True])
def test_batch_cases_equal_build_case_field_by_field_and_row_by_row(bodies: list[dict[str, Any]],
                                                                    anonymous: bool) -> None:
    integration = make_user("integration", systems=["credit-scoring", "halted", "face-id"])
    actor = None if anonymous else integration
    now = timezone.now()
    plan = _plan(Case, connection.alias)
    row_plan = _row_plan(connection.alias)
    statuses = set()
    for data in _validated(integration, bodies):
        expected, expected_decision = _build_case(actor=actor, data=data, now=now)
        built, decision = _case_of(actor=actor, data=data, now=now, template=_case_template(), dbs={})
        assert decision == expected_decision
        for name in CASE_FIELDS:
            want, got = expected.__dict__[name], built.__dict__[name]
            assert got == want and type(got) is type(want), (data["external_id"], name, got, want)
        assert built._state.fields_cache == expected._state.fields_cache
        assert all(built._state.fields_cache[k] is v for k, v in expected._state.fields_cache.items())
        assert (built._state.adding, built._state.db) == (expected._state.adding, expected._state.db)
        assert built._history_user is expected._history_user  # type: ignore[attr-defined]
        want_row = [_comparable(v) for v in prepared_row(plan, expected, connection)]
        got_row = [_comparable(v) for v in _row_from_values(row_plan, built, connection)]
        assert got_row == want_row
        assert [type(v) for v in got_row] == [type(v) for v in want_row]
        expected.pk = built.pk = 7
        assert case_ingest_response(built) == case_ingest_response(expected)
        assert canonical_json([{k: v for k, v in s.items() if k not in ("obj", "actor")}
                               for s in _event_specs(built, actor)]) == canonical_json(
            [{k: v for k, v in s.items() if k not in ("obj", "actor")} for s in _event_specs(expected, actor)])
        statuses.add((built.status, built.blind, built.reviewers_required, built.sla_deadline is not None,
                      built.final_output is not None))
    # The scenarios reach every branch of build_case.
    assert {s[0] for s in statuses} == {CaseStatus.QUEUED, CaseStatus.AUTO_ACCEPTED}
    assert any(s[1] for s in statuses) and any(s[2] == 2 for s in statuses)
    assert any(not s[3] and s[0] == CaseStatus.QUEUED for s in statuses)
    assert any(s[4] for s in statuses)


def test_stored_batch_equals_what_build_case_would_store(bodies: list[dict[str, Any]]) -> None:
    integration = make_user("integration", systems=["credit-scoring", "halted", "face-id"])
    items = _validated(integration, bodies)
    cases = case_ingest_batch(actor=integration, items=items)
    assert len(cases) == len(items)
    for data, case in zip(items, cases, strict=True):
        stored = Case.objects.get(pk=case.pk)
        expected, _ = _build_case(actor=integration, data=data, now=case.received_at)
        for name in CASE_FIELDS:
            if name != "id":
                assert getattr(stored, name) == getattr(expected, name), (data["external_id"], name)
        assert (case._state.adding, case._state.db) == (False, "default")
        assert Case.history.get(id=case.pk).history_type == "+"
    assert AuditEvent.objects.filter(action="case.created").count() == len(items)


def test_a_post_init_receiver_still_sees_every_batch_case(make_user: Any) -> None:
    make_system_with_point(confidence_below=0.7)
    integration = make_user("integration", systems=["credit-scoring"])
    seen: list[Case] = []

    def receiver(sender: Any, instance: Case, **kwargs: Any) -> None:
        seen.append(instance)

    post_init.connect(receiver, sender=Case)
    try:
        items = _validated(integration, [submission(external_id=f"r-{i}", confidence=i / 4) for i in range(4)])
        cases = case_ingest_batch(actor=integration, items=items)
    finally:
        post_init.disconnect(receiver, sender=Case)
    assert all(any(case is instance for instance in seen) for case in cases)
    assert sorted(Case.objects.values_list("external_id", flat=True)) == [f"r-{i}" for i in range(4)]


def test_the_collector_is_off_during_a_screened_batch_and_back_on_after(make_user: Any) -> None:
    make_system_with_point(confidence_below=0.7)
    integration = make_user("integration", systems=["credit-scoring"])
    during: list[bool] = []
    items = [BatchItem(external_id=data["external_id"], data=data)
             for data in _validated(integration, [submission(external_id=f"g-{i}") for i in range(3)])]
    assert gc.isenabled()
    case_ingest_screened(actor=integration, items=items, on_created=lambda done: during.append(gc.isenabled()))
    assert during == [False]
    assert gc.isenabled()
    assert Case.objects.count() == 3


def test_collector_pauses_nest_restore_on_errors_and_respect_a_disabled_collector() -> None:
    assert gc.isenabled()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("batch failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # whoever switched it off keeps it off
    finally:
        gc.enable()


def test_overlapping_pauses_still_collect_now_and_then(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches overlapping without a gap (threads) must not keep cycles from being collected for good."""
    from reviews.services import ingest

    clock = [1000.0]
    monkeypatch.setattr(ingest.time, "monotonic", lambda: clock[0])
    collections: list[int] = []
    monkeypatch.setattr(ingest.gc, "collect", lambda *args: collections.append(1) or 0)
    with collector_paused():  # a batch that stays open throughout
        with collector_paused():
            pass
        assert collections == []  # the last collection is recent
        clock[0] += ingest.COLLECT_EVERY_S
        with collector_paused():
            pass
        assert collections == [1]  # an overlapping pause ended long after: one collection
        with collector_paused():
            pass
        assert collections == [1]
        assert not gc.isenabled()
    assert gc.isenabled() and collections == [1]
