"""Many reviewers at once, on PostgreSQL, with real threads and real transactions.

Each thread has its own database connection; a barrier starts them together.
Nothing here measures time: the assertions are about who got which case.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from reviews.models import Case, CaseStatus, Decision, Resolution
from reviews.services.decisions import decision_record
from reviews.services.errors import ClaimConflict
from reviews.services.queue import claim_next, expire_leases
from tests.reviews.queue_helpers import make_cases, make_point, make_reviewer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REVIEWERS = 20


def run_together(workers: list[Callable[[], None]]) -> list[BaseException]:
    """Start every worker at the same moment; return what they raised."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []
    lock = threading.Lock()

    def wrap(work: Callable[[], None]) -> None:
        try:
            barrier.wait()
            work()
        except BaseException as exc:  # collected and reported by the test
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrap, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_twenty_reviewers_claim_500_cases_each_exactly_once() -> None:
    point = make_point()
    cases = make_cases(point, 500)
    reviewers = [make_reviewer(f"rev{i}") for i in range(REVIEWERS)]
    claims: dict[int, list[int]] = defaultdict(list)
    lock = threading.Lock()

    def reviewer_loop(reviewer: Any) -> Callable[[], None]:
        def work() -> None:
            # Leases outlive the test: a case handed out twice would show up twice here.
            while (case := claim_next(reviewer=reviewer)) is not None:
                with lock:
                    claims[case.pk].append(reviewer.pk)

        return work

    errors = run_together([reviewer_loop(r) for r in reviewers])
    assert errors == []
    assert set(claims) == {c.pk for c in cases}
    doubles = {pk: holders for pk, holders in claims.items() if len(holders) != 1}
    assert doubles == {}
    rows = Case.objects.filter(pk__in=claims).values_list("pk", "status", "claimed_by_id")
    assert all(status == CaseStatus.CLAIMED and holder == claims[pk][0] for pk, status, holder in rows)
    assert AuditEvent.objects.filter(action="case.claimed").count() == 500
    # Work was shared: more than one reviewer got cases.
    assert len({holders[0] for holders in claims.values()}) > 1


def test_four_eyes_under_concurrency_two_distinct_reviewers_per_case() -> None:
    point = make_point(reviewers_required=2)
    cases = make_cases(point, 150, label="approve")
    reviewers = [make_reviewer(f"rev{i}") for i in range(REVIEWERS)]
    holders: dict[int, int] = {}
    violations: list[tuple[int, int, int]] = []
    lock = threading.Lock()

    def reviewer_loop(reviewer: Any) -> Callable[[], None]:
        def work() -> None:
            for _ in range(100_000):
                case = claim_next(reviewer=reviewer)
                if case is None:
                    # Nothing for me now; a case another reviewer holds may still come back for a second
                    # look, so stop only once every case is decided.
                    if not Case.objects.exclude(status=CaseStatus.DECIDED).exists():
                        return
                    time.sleep(0.002)
                    continue
                with lock:
                    # Marked only after the claim committed and cleared before the decision commits,
                    # so an overlap seen here is a real double hand-out, never a timing artefact.
                    if case.pk in holders:
                        violations.append((case.pk, holders[case.pk], reviewer.pk))
                    holders[case.pk] = reviewer.pk
                with lock:
                    holders.pop(case.pk, None)
                decision_record(reviewer=reviewer, case=case, outcome="approve", label=None, rationale="")
            raise AssertionError("the queue never drained")

        return work

    errors = run_together([reviewer_loop(r) for r in reviewers])
    assert errors == []
    assert violations == []
    per_case = defaultdict(list)
    for case_id, reviewer_id in Decision.objects.values_list("case_id", "reviewer_id"):
        per_case[case_id].append(reviewer_id)
    assert set(per_case) == {c.pk for c in cases}
    assert all(len(ids) == 2 and len(set(ids)) == 2 for ids in per_case.values())
    assert Case.objects.filter(status=CaseStatus.DECIDED, resolution=Resolution.REVIEWED).count() == 150
    assert AuditEvent.objects.filter(action="case.decided").count() == 150
    assert AuditEvent.objects.filter(action="decision.recorded").count() == 300


def test_expired_leases_go_to_exactly_one_new_holder_while_the_sweeper_runs() -> None:
    point = make_point()
    cases = make_cases(point, 120)
    gone = make_reviewer("gone")
    past = timezone.now() - timedelta(minutes=1)
    Case.objects.filter(pk__in=[c.pk for c in cases]).update(
        status=CaseStatus.CLAIMED, claimed_by=gone, claimed_at=past - timedelta(minutes=5), lease_expires_at=past
    )
    reviewers = [make_reviewer(f"rev{i}") for i in range(10)]
    claims: Counter[int] = Counter()
    lock = threading.Lock()
    sweeping = threading.Event()

    def reviewer_loop(reviewer: Any) -> Callable[[], None]:
        def work() -> None:
            while True:
                # Checked before claiming: a None seen after the sweeper finished means the queue is empty
                # (while it runs, rows it holds locked are skipped, so None may only mean "busy").
                sweeper_done = sweeping.is_set()
                case = claim_next(reviewer=reviewer)
                if case is None:
                    if sweeper_done:
                        return
                    continue
                with lock:
                    claims[case.pk] += 1

        return work

    def sweeper() -> None:
        for _ in range(20):
            expire_leases()
        sweeping.set()

    errors = run_together([*(reviewer_loop(r) for r in reviewers), sweeper])
    assert errors == []
    assert sweeping.is_set()
    assert set(claims) == {c.pk for c in cases}
    assert set(claims.values()) == {1}
    expired = Counter(AuditEvent.objects.filter(action="case.lease_expired").values_list("case_id", flat=True))
    # Each expiry recorded once: by the sweeper or by the claim that took it over, never both.
    assert set(expired) == {c.pk for c in cases} and set(expired.values()) == {1}
    assert not Case.objects.filter(claimed_by=gone).exists()


def test_the_old_holder_cannot_decide_after_a_takeover() -> None:
    point = make_point()
    [case] = make_cases(point, 1)
    old, new = make_reviewer("old"), make_reviewer("new")
    assert claim_next(reviewer=old).pk == case.pk
    Case.objects.filter(pk=case.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    outcomes: dict[str, Any] = {}

    def take_over() -> None:
        outcomes["new"] = claim_next(reviewer=new)

    assert run_together([take_over]) == []
    assert outcomes["new"].pk == case.pk
    with pytest.raises(ClaimConflict):
        decision_record(reviewer=old, case=case, outcome="approve", label=None, rationale="")
    assert decision_record(reviewer=new, case=case, outcome="approve", label=None, rationale="").status == "decided"
