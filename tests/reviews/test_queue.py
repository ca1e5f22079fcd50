"""The claim queue service: order, eligibility, leases, release, expiry, the SQLite path."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from reviews.models import Case, CaseStatus, Decision, ReviewerProfile
from reviews.selectors.queue import claim_payload, live_claim_of, queue_overview, recent_decisions
from reviews.services.decisions import case_reopen, decision_record
from reviews.services.errors import ClaimConflict, ReviewerNotAllowed
from reviews.services.queue import (
    claim_by_conditional_update,
    claim_next,
    claim_release,
    claim_renew,
    escalated_case_ids,
    expire_leases,
    reviewer_scope,
)
from tests.reviews.queue_helpers import (
    expire_claim,
    make_case,
    make_cases,
    make_point,
    make_reviewer,
    make_system,
    make_user,
)

pytestmark = pytest.mark.django_db


def events(action: str, case: Case) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, case_id=case.pk).order_by("id"))


# --- Eligibility ----------------------------------------------------------------------


def test_claim_takes_earliest_sla_deadline_then_earliest_received() -> None:
    point = make_point()
    now = timezone.now()
    no_deadline = make_case(point, received_at=now - timedelta(hours=5), sla_deadline=None)
    late = make_case(point, received_at=now - timedelta(hours=4), sla_deadline=now + timedelta(hours=2))
    early_b = make_case(point, received_at=now - timedelta(minutes=1), sla_deadline=now + timedelta(hours=1))
    early_a = make_case(point, received_at=now - timedelta(minutes=2), sla_deadline=now + timedelta(hours=1))
    reviewer = make_reviewer()
    order = [claim_next(reviewer=reviewer).pk for _ in range(4)]
    assert order == [early_a.pk, early_b.pk, late.pk, no_deadline.pk]
    assert claim_next(reviewer=reviewer) is None


def test_claim_sets_lease_and_audits_with_reviewer_as_history_user(settings) -> None:
    settings.HITL_LEASE_SECONDS = 120
    case = make_case(make_point())
    reviewer = make_reviewer()
    claimed = claim_next(reviewer=reviewer)
    assert claimed.pk == case.pk
    case.refresh_from_db()
    assert case.status == CaseStatus.CLAIMED and case.claimed_by == reviewer
    assert case.lease_expires_at - case.claimed_at == timedelta(seconds=120)
    [event] = events("case.claimed", case)
    assert event.actor_id == reviewer.pk and event.actor_name == reviewer.username
    assert '"before":{"status":"queued"}' in event.payload
    assert case.history.first().history_user == reviewer
    assert live_claim_of(reviewer=reviewer) == case


def test_claim_payload_shows_prediction_unless_blind() -> None:
    point = make_point(guidelines="Read the payslip.")
    seen = make_case(point, label="reject", confidence=0.41, routing_reasons=["confidence_below", "random_sample"])
    blind = make_case(point, label="reject", blind=True, routing_reasons=["confidence_below", "random_sample"])
    payload = claim_payload(seen)
    assert payload["prediction"] == {"label": "reject", "confidence": 0.41, "model_version": "v3.1"}
    assert payload["labels"] == ["approve", "reject", "refer"]
    assert payload["guidelines"] == "Read the payslip."
    assert payload["input"] == {"amount": 25000, "text": "loan application"}
    assert payload["routing"] == {"routed": True, "reasons": ["confidence_below", "random_sample"],
                                  "rules_version": 1}
    hidden = claim_payload(blind)
    assert hidden["prediction"] is None
    # The reasons that would reveal the AI's output are left out for a blind reviewer.
    assert hidden["routing"]["reasons"] == ["random_sample"]
    assert "is_gold" not in payload and "gold_label" not in payload and "true_label" not in payload


def test_only_qualified_systems_and_filters() -> None:
    credit = make_system("credit-scoring")
    fraud = make_system("fraud-check")
    credit_point = make_point(credit, "loan-review")
    fraud_point = make_point(fraud, "txn-review")
    fraud_case = make_case(fraud_point)
    credit_case = make_case(credit_point)
    reviewer = make_reviewer(systems=[credit])
    assert claim_next(reviewer=reviewer, point=credit_point).pk == credit_case.pk
    assert claim_next(reviewer=reviewer) is None  # the fraud case is not theirs
    with pytest.raises(ReviewerNotAllowed) as exc:
        claim_next(reviewer=reviewer, system=fraud)
    assert exc.value.code_name == "not_qualified"
    both = make_reviewer(systems=[credit, fraud])
    assert claim_next(reviewer=both, system=fraud).pk == fraud_case.pk


def test_suspended_and_unqualified_reviewers_are_refused() -> None:
    make_case(make_point())
    with pytest.raises(ReviewerNotAllowed) as exc:
        claim_next(reviewer=make_reviewer(suspended=True))
    assert exc.value.code_name == "reviewer_suspended"
    with pytest.raises(ReviewerNotAllowed) as exc:
        claim_next(reviewer=make_reviewer(systems=[]))
    assert exc.value.code_name == "not_qualified"
    with pytest.raises(ReviewerNotAllowed) as exc:
        claim_next(reviewer=make_user("compliance_officer"))
    assert exc.value.code_name == "not_qualified"


def test_point_of_another_system_is_a_validation_error() -> None:
    credit = make_system("credit-scoring")
    other = make_point(make_system("fraud-check"), "txn-review")
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        reviewer_scope(make_reviewer(systems=[credit]), system=credit, point=other)
    assert "intervention_point" in exc.value.message_dict


def test_escalated_cases_only_for_adjudicators() -> None:
    case = make_case(make_point(), status=CaseStatus.ESCALATED)
    assert claim_next(reviewer=make_reviewer()) is None
    adjudicator = make_reviewer(adjudicator=True)
    assert claim_next(reviewer=adjudicator).pk == case.pk
    [event] = events("case.claimed", case)
    assert '"before":{"status":"escalated"}' in event.payload


def test_never_a_case_the_reviewer_already_decided_in_this_round() -> None:
    point = make_point(reviewers_required=2)
    case = make_case(point)
    first = make_reviewer()
    claim_next(reviewer=first)
    decision_record(reviewer=first, case=case, outcome="approve", label=None, rationale="")
    case.refresh_from_db()
    assert case.status == CaseStatus.QUEUED
    assert claim_next(reviewer=first) is None
    second = make_reviewer()
    assert claim_next(reviewer=second).pk == case.pk


def test_a_reopened_case_never_goes_to_an_earlier_decider() -> None:
    """Issue 12: an appeal is looked at afresh, by someone who did not decide the case before."""
    case = make_case(make_point())
    adjudicator = make_reviewer(adjudicator=True)
    claim_next(reviewer=adjudicator)
    decision_record(reviewer=adjudicator, case=case, outcome="approve", label=None, rationale="")
    case_reopen(actor=make_user("compliance_officer"), case=case, reason="Appeal by the applicant (Art. 86).")
    assert claim_next(reviewer=adjudicator) is None
    assert claim_next(reviewer=make_reviewer(adjudicator=True)).pk == case.pk


def test_never_a_case_under_another_live_claim() -> None:
    make_case(make_point())
    claim_next(reviewer=make_reviewer())
    assert claim_next(reviewer=make_reviewer()) is None


# --- Renew and release ----------------------------------------------------------------


def test_renew_extends_the_lease_and_is_audited(settings) -> None:
    case = make_case(make_point())
    reviewer = make_reviewer()
    claim_next(reviewer=reviewer)
    Case.objects.filter(pk=case.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=5))
    settings.HITL_LEASE_SECONDS = 600
    renewed = claim_renew(reviewer=reviewer, case=case)
    assert renewed.lease_expires_at > timezone.now() + timedelta(seconds=500)
    [event] = events("case.lease_renewed", case)
    assert event.actor_id == reviewer.pk


def test_renew_and_release_need_a_live_claim() -> None:
    case = make_case(make_point())
    holder = make_reviewer()
    other = make_reviewer()
    claim_next(reviewer=holder)
    with pytest.raises(ClaimConflict):
        claim_renew(reviewer=other, case=case)
    with pytest.raises(ClaimConflict):
        claim_release(reviewer=other, case=case)
    expire_claim(case)
    with pytest.raises(ClaimConflict):
        claim_renew(reviewer=holder, case=case)
    with pytest.raises(ClaimConflict):
        claim_release(reviewer=holder, case=case)


def test_a_suspended_holder_cannot_renew_but_can_release() -> None:
    case = make_case(make_point())
    holder = make_reviewer()
    claim_next(reviewer=holder)
    ReviewerProfile.objects.filter(user=holder).update(status="suspended")
    with pytest.raises(ReviewerNotAllowed) as exc:
        claim_renew(reviewer=holder, case=case)
    assert exc.value.code_name == "reviewer_suspended"
    assert claim_release(reviewer=holder, case=case).status == CaseStatus.QUEUED


def test_release_returns_the_case_to_the_queue() -> None:
    case = make_case(make_point())
    holder = make_reviewer()
    claim_next(reviewer=holder)
    released = claim_release(reviewer=holder, case=case)
    assert released.status == CaseStatus.QUEUED
    assert released.claimed_by is None and released.lease_expires_at is None
    [event] = events("case.released", case)
    assert event.actor_id == holder.pk and '"after":{"status":"queued"}' in event.payload
    assert claim_next(reviewer=make_reviewer()).pk == case.pk


def test_release_of_an_escalated_case_gives_it_back_escalated() -> None:
    case = make_case(make_point())
    reviewer = make_reviewer()
    claim_next(reviewer=reviewer)
    decision_record(reviewer=reviewer, case=case, outcome="escalate", label=None, rationale="Unclear documents.")
    adjudicator = make_reviewer(adjudicator=True)
    assert claim_next(reviewer=adjudicator).pk == case.pk
    assert claim_release(reviewer=adjudicator, case=case).status == CaseStatus.ESCALATED


# --- Lease expiry ---------------------------------------------------------------------


def test_sweeper_requeues_expired_leases_and_audits() -> None:
    point = make_point()
    expired, live = make_case(point), make_case(point)
    holder = make_reviewer()
    claim_next(reviewer=holder)
    claim_next(reviewer=holder)
    expire_claim(expired)
    assert expire_leases() == 1
    expired.refresh_from_db()
    live.refresh_from_db()
    assert expired.status == CaseStatus.QUEUED and expired.claimed_by is None
    assert live.status == CaseStatus.CLAIMED
    [event] = events("case.lease_expired", expired)
    assert event.actor_type == "system"
    assert '"detected_by":"sweeper"' in event.payload and holder.username in event.payload
    assert expired.history.first().history_user.username == "hitl-system"
    assert expire_leases() == 0  # idempotent


def test_sweeper_gives_escalated_cases_back_as_escalated() -> None:
    point = make_point(reviewers_required=2)
    case = make_case(point)
    for verdict in ("approve", "override"):
        reviewer = make_reviewer()
        claim_next(reviewer=reviewer)
        decision_record(reviewer=reviewer, case=case, outcome=verdict,
                        label="reject" if verdict == "override" else None, rationale="Income too low.")
    case.refresh_from_db()
    assert case.status == CaseStatus.ESCALATED
    adjudicator = make_reviewer(adjudicator=True)
    claim_next(reviewer=adjudicator)
    expire_claim(case)
    assert expire_leases(now=timezone.now()) == 1
    case.refresh_from_db()
    assert case.status == CaseStatus.ESCALATED


def test_expired_claim_is_taken_over_by_compare_and_set() -> None:
    case = make_case(make_point())
    first, second = make_reviewer(), make_reviewer()
    claim_next(reviewer=first)
    expire_claim(case)
    assert claim_next(reviewer=second).pk == case.pk
    case.refresh_from_db()
    assert case.claimed_by == second
    [expired] = events("case.lease_expired", case)
    assert '"detected_by":"claim"' in expired.payload and first.username in expired.payload
    assert len(events("case.claimed", case)) == 2
    # The former holder's lease is gone: renew, release and decide all refuse.
    with pytest.raises(ClaimConflict):
        decision_record(reviewer=first, case=case, outcome="approve", label=None, rationale="")


def test_non_adjudicator_hands_back_an_expired_escalated_claim() -> None:
    point = make_point()
    escalated = make_case(point, received_at=timezone.now() - timedelta(hours=2))
    queued = make_case(point)
    reviewer = make_reviewer()
    adjudicator = make_reviewer(adjudicator=True)
    Decision.objects.create(case=escalated, reviewer=reviewer, outcome="escalate", rationale="unclear")
    Case.objects.filter(pk=escalated.pk).update(
        status=CaseStatus.CLAIMED, claimed_by=adjudicator, claimed_at=timezone.now(),
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert escalated_case_ids([Case.objects.get(pk=escalated.pk)]) == {escalated.pk}
    other = make_reviewer()
    if connection.features.has_select_for_update_skip_locked:
        assert claim_next(reviewer=other).pk == queued.pk
        escalated.refresh_from_db()
        assert escalated.status == CaseStatus.ESCALATED
        assert len(events("case.lease_expired", escalated)) == 1
    else:
        # SQLite: the claimant passes it by and leaves it to the sweeper.
        assert claim_next(reviewer=other).pk == queued.pk
        assert expire_leases() == 1
        escalated.refresh_from_db()
        assert escalated.status == CaseStatus.ESCALATED


# --- The SQLite path: conditional UPDATE and its row count --------------------------------


def test_conditional_update_claims_and_writes_history_and_audit() -> None:
    case = make_case(make_point())
    reviewer = make_reviewer()
    claimed = claim_by_conditional_update(scope=reviewer_scope(reviewer))
    assert claimed.pk == case.pk
    case.refresh_from_db()
    assert case.status == CaseStatus.CLAIMED and case.claimed_by == reviewer
    assert case.history.first().history_user == reviewer
    assert case.history.first().status == CaseStatus.CLAIMED
    assert len(events("case.claimed", case)) == 1
    assert claim_by_conditional_update(scope=reviewer_scope(make_reviewer())) is None


def test_conditional_update_skips_a_candidate_taken_since_it_was_read(monkeypatch) -> None:
    point = make_point()
    first, second = make_cases(point, 2)
    winner, loser = make_reviewer(), make_reviewer()
    import reviews.services.queue as queue_module

    real = queue_module.claimable_cases

    def stale_read(**kwargs):
        # The loser reads the queue; the winner claims the head before the loser's UPDATE.
        candidates = real(**kwargs)
        if kwargs["reviewer_id"] == loser.pk and Case.objects.get(pk=first.pk).status == CaseStatus.QUEUED:
            rows = list(candidates)
            claim_by_conditional_update(scope=reviewer_scope(winner))
            return _Frozen(rows)
        return candidates

    class _Frozen(list):
        def select_related(self, *args):
            return self

    monkeypatch.setattr(queue_module, "claimable_cases", stale_read)
    got = claim_by_conditional_update(scope=reviewer_scope(loser))
    assert got.pk == second.pk
    assert Case.objects.get(pk=first.pk).claimed_by == winner
    assert Case.objects.get(pk=second.pk).claimed_by == loser


def test_conditional_update_takes_over_expired_claims() -> None:
    case = make_case(make_point())
    first, second = make_reviewer(), make_reviewer()
    claim_by_conditional_update(scope=reviewer_scope(first))
    assert claim_by_conditional_update(scope=reviewer_scope(second)) is None
    expire_claim(case)
    assert claim_by_conditional_update(scope=reviewer_scope(second)).pk == case.pk
    assert len(events("case.lease_expired", case)) == 1


# --- Reads -------------------------------------------------------------------------------


def test_queue_overview_counts_per_point() -> None:
    credit = make_system("credit-scoring")
    loans = make_point(credit, "loan-review")
    limits = make_point(credit, "limit-review")
    make_point(make_system("fraud-check"), "txn-review")
    old = make_case(loans, received_at=timezone.now() - timedelta(hours=3))
    make_case(loans)
    make_case(loans, status=CaseStatus.ESCALATED)
    reviewer = make_reviewer(systems=[credit])
    overview = {row["point"]: row for row in queue_overview(reviewer=reviewer)}
    assert set(overview) == {"loan-review", "limit-review"}
    assert overview["loan-review"]["claimable"] == 2
    assert overview["loan-review"]["oldest_received_at"] == old.received_at
    assert overview["limit-review"]["claimable"] == 0 and limits.slug == "limit-review"
    adjudicator = make_reviewer(systems=[credit], adjudicator=True)
    assert {r["point"]: r["claimable"] for r in queue_overview(reviewer=adjudicator)}["loan-review"] == 3
    assert queue_overview(reviewer=make_reviewer(suspended=True)) == []


def test_recent_decisions_are_only_the_reviewers_own() -> None:
    point = make_point(reviewers_required=2)
    case = make_case(point)
    mine, theirs = make_reviewer(), make_reviewer()
    for reviewer in (mine, theirs):
        claim_next(reviewer=reviewer)
        decision_record(reviewer=reviewer, case=case, outcome="approve", label=None, rationale="")
    assert [d.reviewer_id for d in recent_decisions(reviewer=mine)] == [mine.pk]


@pytest.mark.postgres
@pytest.mark.parametrize("by_point", [True, False])
def test_claim_queries_use_the_partial_index(by_point: bool) -> None:
    from django.test.utils import CaptureQueriesContext

    system = make_system()
    loans = make_point(system, "loan-review")
    make_cases(loans, 30)
    make_cases(make_point(system, "limit-review"), 30)
    reviewer = make_reviewer()
    with CaptureQueriesContext(connection) as captured:
        assert claim_next(reviewer=reviewer, point=loans if by_point else None) is not None
    case_reads = [
        q["sql"] for q in captured.captured_queries
        if q["sql"].lstrip("(").startswith(("SELECT", "WITH")) and 'FROM "reviews_case"' in q["sql"]
        and "ORDER BY" in q["sql"]
    ]
    # The locked claim (one statement: lock, lease, history row), plus (without a point) the
    # one query reading each point's queue head.
    assert len(case_reads) == (1 if by_point else 2)
    assert "FOR NO KEY UPDATE OF" in case_reads[-1] and "SKIP LOCKED" in case_reads[-1]
    with connection.cursor() as cursor:
        # 60 rows are read faster sequentially; the question is whether the index serves the query.
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in case_reads:
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "case_claimable_idx" in plan, plan
            # Read in index order and stopped at the head: no sort of the whole queue.
            assert "Sort" not in plan, plan


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement scope read is PostgreSQL's")
def test_the_scope_read_lists_the_points_the_claim_would_query(django_assert_num_queries) -> None:
    """The claim takes its point list from the scope statement: the same points, in the same order,
    of the systems the reviewer may claim now (a system closed for want of training is left out)."""
    from reviews.selectors.queue import points_in_queue_order

    credit, fraud, hr = make_system("credit-scoring"), make_system("fraud-check"), make_system("hr-screening")
    loans, limits = make_point(credit, "loan-review"), make_point(credit, "limit-review")
    txn = make_point(fraud, "txn-review")
    make_point(hr, "cv-review")
    make_point(make_system("not-mine"), "elsewhere")
    hr.required_trainings = ["hr_bias"]
    hr.save(update_fields=["required_trainings"])
    reviewer = make_reviewer(systems=[credit, fraud, hr])
    make_cases(limits, 2)
    make_cases(txn, 1)
    scope = reviewer_scope(reviewer)
    assert scope.system_ids == {credit.pk, fraud.pk}
    assert scope.point_ids(None) == sorted([loans.pk, limits.pk, txn.pk])
    assert scope.point_ids(credit.pk) == sorted([loans.pk, limits.pk])
    now = timezone.now()
    common = dict(reviewer_id=reviewer.pk, system_ids=scope.system_ids, adjudicator=False, now=now)
    for system_id in (None, credit.pk, fraud.pk):
        read = points_in_queue_order(**common, system_id=system_id)
        ids = scope.point_ids(system_id)
        with django_assert_num_queries(1 if len(ids) > 1 else 0):  # the queue heads only, when there is a choice
            given = points_in_queue_order(**common, system_id=system_id, point_ids=ids)
        assert given == read
    assert claim_next(reviewer=reviewer).intervention_point_id in {limits.pk, txn.pk}
