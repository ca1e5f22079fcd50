"""The claim response carries what a reviewer client needs to decide generation/action cases and adjudications."""

from __future__ import annotations

from typing import Any

import pytest

from reviews.api.serializers.queue import ClaimResponseSerializer
from reviews.models import Case
from reviews.selectors.claims import claim_extras
from reviews.selectors.queue import claim_payload
from tests.reviews.queue_helpers import client_for, make_case, make_point, make_reviewer, make_user
from tests.reviews.test_kinds import (
    CLAIM,
    TRANSFER_SCHEMA,
    action_point,
    claim,
    decide,
    generation_point,
    integration,
    submit_action,
    submit_generation,
)

pytestmark = pytest.mark.django_db


def _as_serializer_renders(response_body: dict[str, Any]) -> dict[str, Any]:
    """What the declared response serializer renders for the claimed case (the schema's promise)."""
    case = Case.objects.select_related("system", "intervention_point").get(pk=response_body["case"]["id"])
    payload = claim_payload(case)
    payload.update(claim_extras(case))
    return ClaimResponseSerializer({"case": payload, "lease_expires_at": case.lease_expires_at}).data


def test_action_claim_carries_the_tool_call_and_its_schema() -> None:
    action_point(sla_seconds=600)
    submit_action(integration(), arguments={"amount": 1200, "to": "ACME"})
    response = client_for(make_reviewer()).post(CLAIM, {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    case = body["case"]
    assert case["kind"] == "action"
    assert case["action"] == {
        "tool": "send_payment", "arguments": {"amount": 1200, "to": "ACME"}, "agent": "billing-bot",
        "rationale": "Invoice 42 is due.", "conversation": [{"role": "user", "content": "Pay invoice 42 to ACME"}],
    }
    assert case["tool_schema"] == TRANSFER_SCHEMA
    assert case["expires_at"] == case["sla_deadline"]
    assert "generation" not in case and "adjudication" not in case  # first round: the blind phase
    assert body == _as_serializer_renders(body)


def test_action_claim_without_a_declared_schema_has_none() -> None:
    action_point(tool_schemas={}, tool_rules={"always": ["wire_funds"]})
    submit_action(integration(), tool="wire_funds", arguments={"iban": "X"})
    case = claim(make_reviewer())
    assert case["action"]["tool"] == "wire_funds" and "tool_schema" not in case


def test_generation_claim_carries_text_prompt_and_sources() -> None:
    generation_point()
    submit_generation(integration(), "We guarantee a refund within 30 days.")
    response = client_for(make_reviewer()).post(CLAIM, {}, format="json")
    body = response.json()
    case = body["case"]
    assert case["kind"] == "generation"
    assert case["generation"] == {
        "text": "We guarantee a refund within 30 days.", "prompt": "Answer the customer",
        "sources": [{"title": "Policy 7", "content": "Refunds within 30 days."}],
    }
    assert "action" not in case and "tool_schema" not in case
    assert "expires_at" not in case  # no SLA on this point
    assert body == _as_serializer_renders(body)


def test_first_round_classification_claim_is_unchanged() -> None:
    make_case(make_point())
    case = claim(make_reviewer())
    assert not {"kind", "generation", "action", "tool_schema", "expires_at", "adjudication"} & set(case)


def test_adjudicator_sees_the_earlier_verdicts_and_why_others_do_not_get_the_case() -> None:
    action_point()
    submit_action(integration())
    first = make_reviewer("first")
    held = claim(first)
    assert "adjudication" not in held
    escalated = decide(first, held["id"], outcome="escalate", rationale="Payee looks new; second opinion.")
    assert escalated.status_code == 201, escalated.content
    # Denied: a reviewer who is not an adjudicator is never handed the escalated case.
    assert client_for(make_reviewer("plain")).post(CLAIM, {}, format="json").status_code == 204
    # Allowed: the adjudicator gets the tool call and the verdict to adjudicate.
    response = client_for(make_reviewer("judge", adjudicator=True)).post(CLAIM, {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    adjudication = body["case"]["adjudication"]
    assert [(d["reviewer"], d["outcome"], d["rationale"], d["round"]) for d in adjudication["decisions"]] == [
        ("first", "escalate", "Payee looks new; second opinion.", 1)
    ]
    assert adjudication["reasons"][0]["who"] == "first"
    assert "escalated" in adjudication["reasons"][0]["text"]
    assert body["case"]["action"]["tool"] == "send_payment"
    assert body == _as_serializer_renders(body)


def test_reopened_action_shows_the_adjudicator_the_earlier_modified_arguments() -> None:
    action_point()
    submit_action(integration())
    first = make_reviewer("first")
    held = claim(first)
    assert decide(first, held["id"], outcome="modify", rationale="Cap it.",
                  arguments={"amount": 900, "to": "ACME"}).status_code == 201
    reopened = client_for(make_user("compliance_officer")).post(
        f"/api/v1/cases/{held['id']}/reopen/", {"reason": "The payee complained."}, format="json")
    assert reopened.status_code == 200, reopened.content
    body = client_for(make_reviewer("judge", adjudicator=True)).post(CLAIM, {}, format="json").json()
    adjudication = body["case"]["adjudication"]
    [earlier] = adjudication["decisions"]
    assert (earlier["reviewer"], earlier["outcome"], earlier["round"]) == ("first", "modify", 1)
    assert earlier["output"]["arguments"] == {"amount": 900, "to": "ACME"}
    assert earlier["output"]["diff"]
    assert any(reason["why"] == "The payee complained." for reason in adjudication["reasons"])
    assert body == _as_serializer_renders(body)


def test_double_review_is_blind_until_the_verdicts_differ() -> None:
    make_case(make_point(reviewers_required=2))
    first, second = make_reviewer("first"), make_reviewer("second")
    held = claim(first)
    assert decide(first, held["id"], outcome="override", label="reject", rationale="Income too low.").status_code == 201
    again = claim(second)
    assert again["id"] == held["id"] and "adjudication" not in again  # the second verdict is independent
    assert decide(second, held["id"], outcome="approve").status_code == 201
    body = client_for(make_reviewer("judge", adjudicator=True)).post(CLAIM, {}, format="json").json()
    rows = {d["reviewer"]: (d["outcome"], d["label"]) for d in body["case"]["adjudication"]["decisions"]}
    assert rows == {"first": ("override", "reject"), "second": ("approve", "approve")}
    assert "kind" not in body["case"]  # classification: only the adjudication is added
    assert body == _as_serializer_renders(body)


def test_claim_refused_to_an_integration() -> None:
    action_point()
    client = integration()
    submit_action(client)
    assert client.post(CLAIM, {}, format="json").status_code == 403
