"""Generation and action cases (issue 14): configuration, submission, routing, decisions, SLA, audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import payload_of
from reviews.models import Case, CaseKind, CaseStatus
from reviews.routing import CaseInput, RoutingRules, route
from reviews.services.kinds import digest, json_diff, normalised_edit_distance
from reviews.services.sla import apply_sla_breaches
from reviews.services.systems import system_halt
from tests.reviews.queue_helpers import client_for, make_point, make_reviewer, make_system, make_user

pytestmark = pytest.mark.django_db

CASES = "/api/v1/cases/"
CLAIM = "/api/v1/queue/claim/"
TRANSFER_SCHEMA = {
    "type": "object",
    "properties": {"amount": {"type": "number", "maximum": 5000}, "to": {"type": "string"}},
    "required": ["amount", "to"],
    "additionalProperties": False,
}


def action_point(**rules: Any) -> Any:
    rules.setdefault("confidence_below", None)
    rules.setdefault("guidelines", "Check the payee.")
    rules.setdefault("tool_rules", {"always": ["send_payment"], "never": ["lookup_balance"]})
    rules.setdefault("tool_schemas", {"send_payment": TRANSFER_SCHEMA})
    return make_point(slug="agent-tools", kind="action", **rules)


def generation_point(**rules: Any) -> Any:
    rules.setdefault("confidence_below", None)
    rules.setdefault("text_rules", {"max_length": 500, "regex": r"\bguarantee[ds]?\b", "keywords": ["refund"]})
    return make_point(slug="replies", kind="generation", **rules)


def integration() -> Any:
    make_system()
    return client_for(make_user("integration", systems=["credit-scoring"]))


def submit_action(client: Any, external_id: str = "call-1", tool: str = "send_payment",
                  arguments: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body = {
        "system": "credit-scoring", "intervention_point": "agent-tools", "external_id": external_id,
        "action": {"tool": tool, "arguments": arguments or {"amount": 1200, "to": "ACME"}, "agent": "billing-bot",
                   "rationale": "Invoice 42 is due.",
                   "conversation": [{"role": "user", "content": "Pay invoice 42 to ACME"}]},
        **extra,
    }
    response = client.post(CASES, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def submit_generation(client: Any, text: str, external_id: str = "reply-1") -> dict[str, Any]:
    body = {
        "system": "credit-scoring", "intervention_point": "replies", "external_id": external_id,
        "generation": {"text": text, "prompt": "Answer the customer",
                       "sources": [{"title": "Policy 7", "content": "Refunds within 30 days."}]},
    }
    response = client.post(CASES, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def claim(reviewer: Any) -> dict[str, Any]:
    response = client_for(reviewer).post(CLAIM, {}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["case"]


def decide(reviewer: Any, case_id: int, **body: Any) -> Any:
    return client_for(reviewer).post(f"/api/v1/cases/{case_id}/decision/", body, format="json")


# --- Routing (pure) -----------------------------------------------------------------------


def test_tool_rules_route_and_never_review_passes_unless_halted() -> None:
    rules = RoutingRules(system="s", kind="action", tool_always=frozenset({"send_payment"}),
                         tool_never=frozenset({"lookup"}))
    pay = CaseInput(external_id="1", input={}, payload={"tool": "send_payment", "arguments": {}})
    lookup = CaseInput(external_id="2", input={}, payload={"tool": "lookup", "arguments": {}})
    other = CaseInput(external_id="3", input={}, payload={"tool": "other", "arguments": {}})
    assert route(rules, pay, system_halted=False).reasons == ["tool_always_review"]
    assert route(rules, lookup, system_halted=False).routed is False
    assert route(rules, other, system_halted=False).routed is False
    assert route(rules, lookup, system_halted=True).reasons == ["system_halted"]


def test_argument_conditions_reuse_high_stakes() -> None:
    rules = RoutingRules(system="s", kind="action",
                         high_stakes=({"field": "arguments.amount", "op": "gt", "value": 1000},))
    big = CaseInput(external_id="1", input={}, payload={"tool": "t", "arguments": {"amount": 1500}})
    small = CaseInput(external_id="2", input={}, payload={"tool": "t", "arguments": {"amount": 10}})
    missing = CaseInput(external_id="3", input={}, payload={"tool": "t", "arguments": {}})
    assert route(rules, big, system_halted=False).reasons == ["high_stakes"]
    assert route(rules, small, system_halted=False).routed is False
    assert route(rules, missing, system_halted=False).reasons == ["high_stakes_field_missing"]


def test_text_rules() -> None:
    import re

    rules = RoutingRules(system="s", kind="generation", text_max_length=20, text_regex=re.compile("guarantee"),
                         text_keywords=("refund",))
    assert route(rules, CaseInput(external_id="1", input={}, payload={"text": "Hello"}),
                 system_halted=False).routed is False
    reasons = route(rules, CaseInput(external_id="2", input={}, payload={"text": "We guarantee a REFUND, always."}),
                    system_halted=False).reasons
    assert reasons == ["text_length", "text_pattern", "text_keyword"]


def test_diff_helpers() -> None:
    assert normalised_edit_distance("kitten", "sitting") == pytest.approx(3 / 7, abs=1e-6)
    assert normalised_edit_distance("same", "same") == 0.0
    assert json_diff({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}, "d": 4}) == [
        {"path": "b.c", "op": "changed", "before": 2, "after": 3}, {"path": "d", "op": "added", "after": 4},
    ]


# --- Configuration ------------------------------------------------------------------------


def test_point_configuration_via_api_allowed_and_refused() -> None:
    make_system()
    officer = client_for(make_user("compliance_officer"))
    url = "/api/v1/systems/credit-scoring/intervention-points/"
    body = {"slug": "tools", "name": "Tools", "stage": "validation", "kind": "action",
            "tool_rules": {"always": ["*"]}, "tool_schemas": {"pay": TRANSFER_SCHEMA}}
    response = officer.post(url, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "action"
    assert response.json()["on_sla_breach"] == "fail_closed"
    bad = officer.post(url, {**body, "slug": "t2", "tool_schemas": {"pay": {"type": "nonsense"}}}, format="json")
    assert bad.status_code == 400 and "tool_schemas" in bad.json()
    bad = officer.post(url, {**body, "slug": "t3", "kind": "generation", "text_rules": {"regex": "("}},
                       format="json")
    assert bad.status_code == 400 and "tool_rules" in bad.json()
    bad = officer.post(url, {"slug": "t4", "name": "T", "stage": "validation", "kind": "generation",
                             "text_rules": {"regex": "("}}, format="json")
    assert bad.status_code == 400 and "text_rules" in bad.json()
    denied = client_for(make_reviewer()).post(url, {**body, "slug": "t5"}, format="json")
    assert denied.status_code == 403


# --- Actions ------------------------------------------------------------------------------


def test_action_submission_errors_name_the_field() -> None:
    action_point()
    client = integration()
    body = {"system": "credit-scoring", "intervention_point": "agent-tools", "external_id": "x",
            "action": {"tool": "send_payment", "arguments": "not an object"}}
    response = client.post(CASES, body, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"arguments", "agent"}
    response = client.post(CASES, {**body, "action": None, "generation": {"text": "x"}}, format="json")
    assert response.status_code == 400 and {"action", "generation"} <= set(response.json())


def test_action_modified_arguments_end_to_end_with_audit_and_webhook() -> None:
    action_point()
    client = integration()
    created = submit_action(client)
    assert created["status"] == "queued"
    assert created["routing"]["reasons"] == ["tool_always_review"]
    reviewer = make_reviewer()
    claimed = claim(reviewer)
    assert claimed["id"] == created["id"]

    # The schema is enforced: 9000 exceeds the maximum.
    refused = decide(reviewer, created["id"], outcome="modify", arguments={"amount": 9000, "to": "ACME"})
    assert refused.status_code == 400 and "arguments" in refused.json()
    unchanged = decide(reviewer, created["id"], outcome="modify", arguments={"amount": 1200, "to": "ACME"})
    assert unchanged.status_code == 400
    response = decide(reviewer, created["id"], outcome="modify", arguments={"amount": 1000, "to": "ACME"},
                      rationale="Pay only the undisputed part.")
    assert response.status_code == 201, response.content
    final = response.json()["final_output"]
    assert final["approved"] is True and final["modified"] is True
    assert final["arguments"] == {"amount": 1000, "to": "ACME"}
    assert final["diff"] == [{"path": "amount", "op": "changed", "before": 1200, "after": 1000}]

    body = client.get(f"{CASES}{created['id']}/").json()
    assert body["kind"] == "action"
    assert body["action"]["tool"] == "send_payment"
    assert body["final_output"]["arguments"]["amount"] == 1000
    assert body["decisions"][0]["outcome"] == "modify"

    events = {e.action: payload_of(e) for e in AuditEvent.objects.filter(case_id=created["id"])}
    assert {"case.created", "case.routed", "decision.recorded", "case.arguments_modified",
            "case.decided"} <= set(events)
    modified = events["case.arguments_modified"]
    assert modified["data"]["before_sha256"] == digest({"amount": 1200, "to": "ACME"})
    assert modified["data"]["after_sha256"] == digest({"amount": 1000, "to": "ACME"})
    assert modified["data"]["paths"] == ["amount"]
    assert events["case.created"]["data"]["payload"]["arguments_sha256"] == digest({"amount": 1200, "to": "ACME"})
    # Hashes only: neither the arguments nor the payee appear in the ledger.
    for event in events.values():
        assert "ACME" not in str(event)


def test_deny_requires_a_reason_and_returns_it() -> None:
    action_point()
    client = integration()
    created = submit_action(client)
    reviewer = make_reviewer()
    claim(reviewer)
    assert decide(reviewer, created["id"], outcome="deny").status_code == 400
    assert decide(reviewer, created["id"], outcome="override", label="approve").status_code == 400
    response = decide(reviewer, created["id"], outcome="deny", rationale="Payee is not on the allow-list.")
    assert response.status_code == 201
    body = client.get(f"{CASES}{created['id']}/").json()
    assert body["final_output"] == {"approved": False, "arguments": None, "modified": False, "diff": [],
                                    "reason": "Payee is not on the allow-list."}


def test_an_action_decision_reads_its_case_under_lock_once_and_sets_no_savepoint() -> None:
    """The decision is on the waiting agent's path: decision_record's locked read serves the kind's service too."""
    action_point()
    created = submit_action(integration())
    reviewer = make_reviewer()
    claim(reviewer)
    with CaptureQueriesContext(connection) as statements:
        response = decide(reviewer, created["id"], outcome="approve")
    assert response.status_code == 201, response.content
    sql = [query["sql"] for query in statements.captured_queries]
    if connection.vendor == "postgresql":
        assert sum(1 for text in sql if "FOR NO KEY UPDATE" in text) == 1, sql
    # The test's own transaction wraps the request, so the request's atomic block is one
    # savepoint; kind_decision_record adds none of its own.
    assert sum(1 for text in sql if text.startswith("SAVEPOINT")) == 1, sql
    assert Case.objects.get(pk=created["id"]).status == CaseStatus.DECIDED


def test_never_reviewed_tool_is_auto_approved_until_the_system_is_halted() -> None:
    point = action_point()
    client = integration()
    created = submit_action(client, external_id="c1", tool="lookup_balance", arguments={"account": "1"})
    assert created["status"] == "auto_accepted"
    body = client.get(f"{CASES}{created['id']}/").json()
    assert body["final_output"]["approved"] is True
    system_halt(actor=None, system=point.system, reason="Incident")
    created = submit_action(client, external_id="c2", tool="lookup_balance", arguments={"account": "1"})
    assert created["status"] == "queued" and created["routing"]["reasons"] == ["system_halted"]


def test_unanswered_action_request_is_denied_at_expiry() -> None:
    action_point(sla_seconds=3600)
    client = integration()
    expires = (timezone.now() + timedelta(minutes=5)).isoformat()
    created = submit_action(client, expires_at=expires)
    case = Case.objects.get(pk=created["id"])
    assert abs((case.sla_deadline - timezone.now()).total_seconds() - 300) < 10
    assert apply_sla_breaches(now=timezone.now() + timedelta(minutes=6)) == 1
    body = client.get(f"{CASES}{created['id']}/").json()
    assert body["status"] == "decided" and body["resolution"] == "sla_fail_closed"
    assert body["final_output"]["approved"] is False
    assert body["expires_at"] == body["sla_deadline"]


# --- Generations --------------------------------------------------------------------------


def test_generation_edit_stores_final_text_and_diff() -> None:
    generation_point()
    client = integration()
    created = submit_generation(client, "We guarantee delivery tomorrow.")
    assert created["routing"]["reasons"] == ["text_pattern"]
    reviewer = make_reviewer()
    claim(reviewer)
    assert decide(reviewer, created["id"], outcome="edit", text="We guarantee delivery tomorrow.").status_code == 400
    response = decide(reviewer, created["id"], outcome="edit", text="We expect delivery tomorrow.")
    assert response.status_code == 201, response.content
    body = client.get(f"{CASES}{created['id']}/").json()
    assert body["final_output"]["text"] == "We expect delivery tomorrow."
    assert body["final_output"]["edited"] is True
    assert "-We guarantee delivery tomorrow." in body["final_output"]["diff"]
    assert "+We expect delivery tomorrow." in body["final_output"]["diff"]
    edited = payload_of(AuditEvent.objects.get(case_id=created["id"], action="case.output_edited"))
    assert edited["data"]["after_sha256"] == digest("We expect delivery tomorrow.")
    assert "expect" not in str(edited)


def test_generation_reject_with_category() -> None:
    generation_point()
    client = integration()
    created = submit_generation(client, "You will get a refund.")
    reviewer = make_reviewer()
    claim(reviewer)
    bad = decide(reviewer, created["id"], outcome="reject", rationale="Wrong", category="bogus")
    assert bad.status_code == 400 and "category" in bad.json()
    response = decide(reviewer, created["id"], outcome="reject", rationale="Refund policy misquoted.",
                      category="factuality")
    assert response.status_code == 201
    body = client.get(f"{CASES}{created['id']}/").json()
    assert body["final_output"]["rejected"] is True and body["final_output"]["category"] == "factuality"
    assert body["decisions"][0]["category"] == "factuality"
    assert Case.objects.get(pk=created["id"]).status == CaseStatus.DECIDED


@pytest.mark.parametrize("kind", [CaseKind.GENERATION, CaseKind.ACTION])
def test_the_kinds_decision_form_maps_service_errors_onto_its_fields(kind: str) -> None:
    """The case page puts a service error next to the field (it raised AttributeError before)."""
    from types import SimpleNamespace

    from reviews.views_kinds import KindDecisionForm

    case: Any = SimpleNamespace(intervention_point=SimpleNamespace(kind=kind), payload={})
    form = KindDecisionForm(case=case)
    assert form.error_target("rationale") == "rationale"
    assert form.error_target("outcome") == "outcome"
    assert form.error_target("not_a_field") is None
    assert form.error_target("text") == ("text" if kind == CaseKind.GENERATION else None)
