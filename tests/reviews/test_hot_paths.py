"""The cheaper hot paths keep the behaviour of the code they replaced.

One-query token authentication, the decision's single locked read and combined
writes, the case + history INSERT (one statement or ``COPY`` on PostgreSQL), the
hand-rendered claim response and the parser's fast path: each is checked against
what the ORM, simple-history or DRF would have produced.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from audit.models import AuditEvent
from hitl_portal.api.authentication import load_token
from hitl_portal.roles import ADMIN, REVIEWER
from reviews.api.serializers.queue import ClaimResponseSerializer, claim_response
from reviews.models import Case, CaseStatus, Decision, ReviewerProfile
from reviews.selectors.queue import claim_payload
from reviews.services.decisions import _locked_for_decision, _require_standing, decision_record, stands_escalated
from reviews.services.errors import ReviewerNotAllowed
from reviews.services.queue import claim_next, escalated_case_ids, require_may_review
from tests.reviews.factories import ingest, make_system_with_point, submission
from tests.reviews.queue_helpers import (
    client_for,
    make_case,
    make_point,
    make_reviewer,
    make_system,
    make_user,
)
from tests.token_helpers import new_token_key

pytestmark = pytest.mark.django_db

CASES = "/api/v1/cases/"
BATCH = "/api/v1/cases/batch/"
CLAIM = "/api/v1/queue/claim/"

# The columns simple-history copies from the case (everything tracked but the pk).
CASE_HISTORY_FIELDS = (
    "external_id", "input_hash", "prediction_label", "prediction_confidence", "model_version", "status", "routed",
    "routing_reasons", "rules_version", "reviewers_required", "is_gold", "gold_label", "blind", "review_round",
    "claimed_at", "lease_expires_at", "received_at", "sla_deadline", "sla_breached", "resolution", "final_label",
    "decided_at", "true_label", "true_label_at", "system_id", "intervention_point_id", "submitted_by_id",
    "claimed_by_id",
)


def decision_url(pk: int) -> str:
    return f"/api/v1/cases/{pk}/decision/"


def assert_history_mirrors(case: Case, record: Any) -> None:
    case.refresh_from_db()
    for name in CASE_HISTORY_FIELDS:
        assert getattr(record, name) == getattr(case, name), name


# --- Token authentication ----------------------------------------------------------------------


def test_token_user_and_role_come_from_one_query(django_assert_num_queries: Any) -> None:
    reviewer = make_reviewer()
    token_row, key = AuthToken.objects.create(user=reviewer)
    with django_assert_num_queries(1):
        user, token = load_token(key)
    assert user == reviewer and token.digest == token_row.digest and token.user is user
    assert user._hitl_role == REVIEWER
    assert load_token("no-such-key") is None
    # Same 15-character prefix, wrong rest: the digest decides.
    assert load_token(key[:15] + "0" * (len(key) - 15)) is None


def test_superuser_is_admin_and_user_without_role_has_none() -> None:
    admin = make_user("admin")
    plain = make_user("reviewer")
    plain.groups.clear()
    assert load_token(new_token_key(admin))[0]._hitl_role == ADMIN
    assert load_token(new_token_key(plain))[0]._hitl_role is None


def test_only_a_role_group_names_the_role() -> None:
    reviewer = make_reviewer()
    reviewer.groups.add(Group.objects.create(name="newsletter"))
    assert load_token(new_token_key(reviewer))[0]._hitl_role == REVIEWER


def test_bad_tokens_and_inactive_users_are_401_and_roles_still_403() -> None:
    make_system_with_point()
    for header in ("Token nope", "Token a\x00b", "Token ", "Token a b"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        response = client.post(CASES, submission(), format="json")
        assert response.status_code == 401, header
        assert response.json()["code"] == "not_authenticated"
        assert response["WWW-Authenticate"] == "Token"
    integration = make_user("integration", systems=["credit-scoring"])
    client = client_for(integration)
    integration.is_active = False
    integration.save(update_fields=["is_active"])
    response = client.post(CASES, submission(), format="json")
    assert response.status_code == 401
    assert response.json()["detail"] == "User inactive or deleted."
    # A role that may not post: the role read with the token decides.
    assert client_for(make_reviewer()).post(CASES, submission(), format="json").status_code == 403


def test_role_change_takes_effect_on_the_next_request() -> None:
    make_system_with_point()
    integration = make_user("integration", systems=["credit-scoring"])
    client = client_for(integration)
    assert client.post(CASES, submission(external_id="first"), format="json").status_code == 201
    integration.groups.clear()
    integration.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    assert client.post(CASES, submission(external_id="second"), format="json").status_code == 403


# --- Ingest: case and history row --------------------------------------------------------------


def test_single_case_history_row_mirrors_the_stored_case() -> None:
    make_system_with_point(confidence_below=0.7, sla_seconds=600)
    integration = make_user("integration", systems=["credit-scoring"])
    for external_id, confidence in (("routed", 0.2), ("accepted", 0.9)):
        case = ingest(integration, external_id=external_id, confidence=confidence)
        record = Case.history.get(id=case.pk)
        assert (record.history_type, record.history_change_reason, record.history_user) == ("+", "", integration)
        assert_history_mirrors(case, record)


def test_batch_history_rows_mirror_the_stored_cases_and_keep_input_order() -> None:
    make_system_with_point(confidence_below=0.7, sla_seconds=600)
    integration = make_user("integration", systems=["credit-scoring"])
    bodies = [submission(external_id=f"b-{i}", confidence=0.9 if i % 3 else 0.1) for i in range(30)]
    response = client_for(integration).post(BATCH, {"cases": bodies}, format="json")
    assert response.status_code == 201
    results = response.json()["results"]
    assert [r["external_id"] for r in results] == [f"b-{i}" for i in range(30)]
    for result in results:
        case = Case.objects.get(pk=result["id"])
        assert case.external_id == result["external_id"] and case.status == result["status"]
        record = Case.history.get(id=case.pk)
        assert (record.history_type, record.history_change_reason, record.history_user) == ("+", "", integration)
        assert_history_mirrors(case, record)
    assert AuditEvent.objects.filter(action="case.created").count() == 30


def test_a_duplicate_reaching_the_batch_insert_is_the_409_duplicate(monkeypatch: Any) -> None:
    make_system_with_point()
    integration = make_user("integration", systems=["credit-scoring"])
    existing = ingest(integration, external_id="taken")
    # Let the duplicate past the first screening, as a concurrent request would: the
    # unique constraint then decides inside the bulk write (COPY on PostgreSQL), and the
    # retry screens it out.
    from reviews.services import ingest as ingest_module

    real = ingest_module._existing_ids
    calls = {"n": 0}

    def first_misses(keys: Any) -> Any:
        calls["n"] += 1
        return {} if calls["n"] == 1 else real(keys)

    monkeypatch.setattr(ingest_module, "_existing_ids", first_misses)
    body = {"cases": [submission(external_id="fresh"), submission(external_id="taken")]}
    response = client_for(integration).post(BATCH, body, format="json")
    assert response.status_code == 207
    results = response.json()["results"]
    assert results[1]["error"]["code"] == "duplicate" and results[1]["error"]["id"] == existing.pk
    assert sorted(Case.objects.values_list("external_id", flat=True)) == ["fresh", "taken"]


# --- Decisions ---------------------------------------------------------------------------------


def test_decision_writes_the_same_history_rows_as_save(django_assert_num_queries: Any) -> None:
    case = make_case(make_point(), label="approve")
    reviewer = make_reviewer()
    claimed = claim_next(reviewer=reviewer)
    client = client_for(reviewer)
    # Token with role, (savepoint), the locked read, the writes (one statement on
    # PostgreSQL, four elsewhere), the audit events, (release).
    with django_assert_num_queries(6 if connection.vendor == "postgresql" else 9):
        response = client.post(decision_url(claimed.pk), {"outcome": "approve"}, format="json")
    assert response.status_code == 201
    assert response.json() == {"case": case.pk, "case_status": "decided", "final_label": "approve"}
    decision = Decision.objects.get(case=case)
    decision_record_row = decision.history.get()
    assert (decision_record_row.history_type, decision_record_row.history_user,
            decision_record_row.history_change_reason) == ("+", reviewer, None)
    for name in ("round", "outcome", "label", "rationale", "ai_shown", "is_adjudication", "claimed_at",
                 "time_spent_ms", "decided_at", "case_id", "reviewer_id"):
        assert getattr(decision_record_row, name) == getattr(decision, name), name
    case_record = Case.history.filter(id=case.pk).order_by("-history_id").first()
    assert (case_record.history_type, case_record.history_user, case_record.history_change_reason) == (
        "~", reviewer, None)
    assert_history_mirrors(case, case_record)
    assert case_record.status == "decided" and case_record.claimed_by_id is None
    # The case's row follows the decision's (the timeline shows them in that order).
    assert case_record.history_date > decision_record_row.history_date
    assert list(AuditEvent.objects.filter(case_id=case.pk, action__in=["decision.recorded", "case.decided"])
                .order_by("id").values_list("action", flat=True)) == ["decision.recorded", "case.decided"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement claim is PostgreSQL's")
def test_a_case_leased_from_queued_is_not_recounted(django_assert_num_queries: Any) -> None:
    """The claim statement trusts ``queued``; claim_extras then skips the round's verdict count."""
    point = make_point(reviewers_required=2)
    case = make_case(point, label="approve")
    first, second = make_reviewer(), make_reviewer()
    claim_next(reviewer=first)
    decision_record(reviewer=first, case=case, outcome="approve", label=None, rationale="")
    client = client_for(second)
    # Token with role, scope, the competence verdict stored on this first claim (read, write), gold,
    # (savepoint), the claim statement, its audit event, (release): no count of the round's verdicts.
    with django_assert_num_queries(9) as captured:
        body = client.post(CLAIM, {}, format="json").json()
    assert not any("COUNT(DISTINCT" in q["sql"] for q in captured.captured_queries)
    assert body["case"]["id"] == case.pk and "adjudication" not in body["case"]
    claimed = Case.objects.get(pk=case.pk)
    assert claimed.claimed_from is None  # not stored: only the instance the claim returns carries it


def test_an_escalated_case_still_carries_its_adjudication_context() -> None:
    case = make_case(make_point(reviewers_required=2), label="approve")
    first, second = make_reviewer(), make_reviewer()
    claim_next(reviewer=first)
    decision_record(reviewer=first, case=case, outcome="approve", label=None, rationale="")
    claim_next(reviewer=second)
    decision_record(reviewer=second, case=case, outcome="override", label="reject", rationale="No.")
    adjudicator = make_reviewer(adjudicator=True)
    body = client_for(adjudicator).post(CLAIM, {}, format="json").json()
    assert body["case"]["id"] == case.pk
    assert [d["label"] for d in body["case"]["adjudication"]["decisions"]] == ["approve", "reject"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="statement counts are PostgreSQL's")
def test_decision_with_claim_next_is_one_round_of_statements(django_assert_num_queries: Any) -> None:
    point = make_point()
    first = make_case(point, label="approve")
    make_case(point, label="reject")
    reviewer = make_reviewer()
    claim_next(reviewer=reviewer)
    client = client_for(reviewer)
    # The decision's six (see above), then the claim's scope, gold, (savepoint), statement, event, (release).
    with django_assert_num_queries(6 + 6):
        response = client.post(decision_url(first.pk), {"outcome": "approve", "claim_next": {}}, format="json")
    assert response.status_code == 201 and response.json()["next"]["case"]["id"] != first.pk


def test_escalation_and_second_round_history_rows(make_user: Any) -> None:
    case = make_case(make_point(reviewers_required=2), label="approve")
    first, second = make_reviewer(), make_reviewer()
    claim_next(reviewer=first)
    decision_record(reviewer=first, case=case, outcome="approve", label=None, rationale="")
    claim_next(reviewer=second)
    decided = decision_record(reviewer=second, case=case, outcome="override", label="reject", rationale="No.")
    assert decided.status == CaseStatus.ESCALATED
    rows = list(Case.history.filter(id=case.pk).order_by("history_id").values_list("history_type", "status"))
    assert rows[-1] == ("~", "escalated") and ("~", "queued") in rows
    assert Decision.history.filter(case_id=case.pk).count() == 2


def test_decision_on_a_missing_case_is_404_after_validation() -> None:
    make_point()
    client = client_for(make_reviewer())
    assert client.post(decision_url(999999), {"outcome": "approve"}, format="json").status_code == 404
    assert client.post(decision_url(2**64), {"outcome": "approve"}, format="json").status_code == 404
    assert client.post(decision_url(999999), {"outcome": "bogus"}, format="json").status_code == 400


@pytest.mark.parametrize(
    "verdicts, required, review_round, breached",
    [
        ([], 1, 1, False), ([], 2, 1, False), ([("approve", "approve")], 2, 1, False),
        ([("approve", "approve")], 1, 1, False), ([("approve", "approve"), ("reject", "override")], 3, 1, False),
        ([(None, "escalate")], 2, 1, False), ([("reject", "escalate")], 1, 1, False),
        ([], 1, 2, False), ([], 1, 1, True), ([(None, "approve"), ("approve", "approve")], 3, 1, False),
    ],
)
def test_stands_escalated_agrees_with_escalated_case_ids(
    verdicts: list[tuple[str | None, str]], required: int, review_round: int, breached: bool
) -> None:
    case = make_case(make_point(reviewers_required=3), label="approve", reviewers_required=required,
                     review_round=review_round, sla_breached=breached)
    for label, outcome in verdicts:
        Decision.objects.create(case=case, reviewer=make_reviewer(), round=1, outcome=outcome, label=label)
    assert stands_escalated(case, verdicts if review_round == 1 and not breached else []) == (
        case.pk in escalated_case_ids([case]))


@pytest.mark.parametrize("state", ["active", "adjudicator", "suspended", "inactive", "unqualified", "no_profile"])
def test_standing_read_with_the_case_agrees_with_require_may_review(state: str) -> None:
    point = make_point()
    case = make_case(point)
    other = make_system("other-system")
    reviewer = make_reviewer(systems=[other] if state == "unqualified" else None, adjudicator=state == "adjudicator",
                             suspended=state == "suspended")
    if state == "inactive":
        reviewer.is_active = False
        reviewer.save(update_fields=["is_active"])
    if state == "no_profile":
        ReviewerProfile.objects.filter(user=reviewer).delete()

    def outcome(check: Any) -> Any:
        try:
            result = check()
        except ReviewerNotAllowed as exc:
            return exc.code_name
        return bool(getattr(result, "adjudicator", result))

    locked = _locked_for_decision(Case(pk=case.pk), reviewer)
    assert outcome(lambda: _require_standing(reviewer, locked)) == outcome(lambda: require_may_review(reviewer, case))
    assert locked.system.pk == point.system_id and locked.intervention_point.pk == point.pk
    # Personal data is not read to decide; it loads when asked for.
    assert locked.get_deferred_fields() == {"input", "subject", "explanation"}
    assert locked.input == case.input


# --- Claim response ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["plain", "blind", "labeling", "no_sla", "no_confidence"])
def test_claim_response_renders_what_the_serializer_renders(kind: str) -> None:
    point = make_point(stage="labeling") if kind == "labeling" else make_point()
    fields: dict[str, Any] = {}
    if kind == "blind":
        fields["blind"] = True
    if kind == "labeling":
        fields["label"] = None
    if kind == "no_sla":
        fields["sla_deadline"] = None
    if kind == "no_confidence":
        fields["confidence"] = None
    make_case(point, **fields)
    reviewer = make_reviewer()
    response = client_for(reviewer).post(CLAIM, {}, format="json")
    assert response.status_code == 200
    case = Case.objects.select_related("system", "intervention_point").get()
    expected = ClaimResponseSerializer({"case": claim_payload(case), "lease_expires_at": case.lease_expires_at}).data
    assert response.json() == expected
    assert claim_response(claim_payload(case), lease_expires_at=case.lease_expires_at) == expected


def test_claim_with_an_unknown_system_slug_is_400() -> None:
    make_point()
    response = client_for(make_reviewer()).post(CLAIM, {"system": "nope"}, format="json")
    assert response.status_code == 400 and "system" in response.json()


# --- Parser fast path --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, field",
    [
        ('{"input": {"note": "a\\u0000b"}}', "input.note"),
        ('{"input": {"x": NaN}}', "input.x"),
        ('{"input": {"x": -Infinity}}', "input.x"),
        ('{"input": {"x": 1e400}}', "input.x"),
        ('{"input": {"x": ' + "9" * 320 + ".5}}", "input.x"),
        ('{"input": {"x": ' + "9" * 250 + "e99}}", "input.x"),
        ('{"input": {"s": "\\ud800"}}', "input.s"),
    ],
)
def test_unstorable_values_are_still_refused_naming_the_field(raw: str, field: str) -> None:
    make_system_with_point()
    client = client_for(make_user("integration", systems=["credit-scoring"]))
    response = client.post(CASES, raw, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()


def test_plain_bodies_and_harmless_escapes_pass_the_parser() -> None:
    make_system_with_point()
    client = client_for(make_user("integration", systems=["credit-scoring"]))
    for index, text in enumerate(("Loan application", "caf\u00e9 \U0001f600", "1e5 is just text")):
        body = submission(external_id=f"ok-{index}", input={"text": text, "amount": 1.5e3})
        response = client.post(CASES, body, format="json")
        assert response.status_code == 201, response.json()
        assert Case.objects.get(pk=response.json()["id"]).input["text"] == text


# --- List filter -------------------------------------------------------------------------------


def test_list_accepts_offsets_beyond_what_postgresql_stores() -> None:
    make_system_with_point()
    integration = make_user("integration", systems=["credit-scoring"])
    ingest(integration, external_id="one")
    client = client_for(integration)
    # -20:09 is a valid ISO 8601 offset Python parses but PostgreSQL refuses: compared in UTC.
    response = client.get(CASES, {"received_before": "2003-02-17T22:47:41-20:09"})
    assert response.status_code == 200 and response.json()["results"] == []
    after = (timezone.now() - timedelta(days=1)).isoformat()
    assert len(client.get(CASES, {"received_after": after}).json()["results"]) == 1
    assert client.get(CASES, {"received_after": "0001-01-01T00:00:00+23:00"}).status_code == 400
