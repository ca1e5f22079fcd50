"""The agreement rollup (``AgreementPairDay``): ``live_agreement`` read through it equals the all-live figures.

The oracle is ``live_agreement`` with the rollup ignored (every day counted live,
as before the rollup existed). Random multi-review cases over several days,
points, systems, rounds and escalations; periods of whole days, with partial
edges, of one system or one point, by day, week and month. Each comparison is
the whole result (``==``: counts exact, floats bit-identical), and each checks
that the rollup was really read (only the edges counted live).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from quality import selectors
from quality.models import AgreementPairDay, AgreementRollupState
from quality.selectors import agreement_day_pairs, agreement_rollup_built_through, live_agreement
from quality.services.agreement import agreement_days_drop_before, agreement_days_rebuild
from reviews.models import Case, CaseStatus, Decision, InterventionPoint
from tests.quality.helpers import make_point, make_reviewer, make_system

pytestmark = pytest.mark.django_db

LABELS = ["approve", "reject", "refer"]
DAYS = 12  # cases received over the last DAYS days (UTC), today included


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def write_case(point: InterventionPoint, received_at: dt.datetime, rounds: list[dict[User, str | None]], *,
               required: int = 2, gold: bool = False, n: int = 0) -> Case:
    """A decided case with the given ratings per round (``None``: an escalation), written directly."""
    data = {"n": n, "at": received_at.isoformat()}
    case = Case.objects.create(
        system=point.system, intervention_point=point, external_id=f"r-{point.pk}-{n}-{received_at.timestamp()}",
        input=data, input_hash=hashlib.sha256(json.dumps(data).encode()).hexdigest(),
        prediction_label="approve", prediction_confidence=0.5, status=CaseStatus.DECIDED, resolution="reviewed",
        routed=True, routing_reasons=["confidence_below"], reviewers_required=required, received_at=received_at,
        decided_at=received_at + dt.timedelta(hours=1), is_gold=gold, gold_label="approve" if gold else None,
    )
    for round_, ratings in enumerate(rounds, start=1):
        for reviewer, label in ratings.items():
            add_decision(case, reviewer, label, round_=round_)
    return case


def add_decision(case: Case, reviewer: User, label: str | None, *, round_: int = 1,
                 adjudication: bool = False) -> Decision:
    return Decision.objects.create(
        case=case, reviewer=reviewer, round=round_, is_adjudication=adjudication,
        outcome="escalate" if label is None else ("approve" if label == "approve" else "override"),
        label=label, ai_shown=True, time_spent_ms=1000, system_id=case.system_id,
        prediction_label=case.prediction_label,
    )


def random_data(seed: int, *, cases: int = 90) -> dict[str, Any]:
    """Multi-review cases at random moments of the last ``DAYS`` days (and a few that must not count)."""
    rng = random.Random(seed)
    loans = make_point(reviewers_required=2)
    limits = make_point(loans.system, "limit-review", reviewers_required=3)
    other_system = make_system("fraud-check")
    fraud = make_point(other_system, "fraud-review", reviewers_required=2)
    points = [loans, limits, fraud]
    reviewers = [make_reviewer(f"rr{i}") for i in range(6)]
    rng.shuffle(reviewers)  # user ids not in name order
    now = timezone.now()
    start = midnight(today() - dt.timedelta(days=DAYS - 1))
    span = (now - start).total_seconds()
    for n in range(cases):
        point = rng.choice(points)
        received_at = start + dt.timedelta(seconds=rng.uniform(0, span))
        rounds = []
        for _ in range(rng.choice([1, 1, 1, 2])):
            raters = rng.sample(reviewers, rng.randint(1, 4))
            rounds.append({r: rng.choice([*LABELS, None]) if rng.random() < 0.15 else rng.choice(LABELS)
                           for r in raters})
        case = write_case(point, received_at, rounds, required=rng.choice([2, 3]), n=n)
        if rng.random() < 0.1:  # an adjudication is no rating
            add_decision(case, reviewers[0] if reviewers[0] not in rounds[0] else reviewers[-1], "reject",
                         round_=len(rounds) + 1, adjudication=True)
    # Never counted: a gold copy, a single-review case (both with two ratings).
    write_case(loans, now - dt.timedelta(days=2), [{reviewers[0]: "approve", reviewers[1]: "reject"}], gold=True,
               n=10_000)
    write_case(loans, now - dt.timedelta(days=3), [{reviewers[0]: "approve", reviewers[1]: "reject"}], required=1,
               n=10_001)
    return {"points": points, "reviewers": reviewers, "system": other_system, "now": now}


def full_build() -> int:
    """What a full KPI refresh does to the agreement rollup: every day from the first case through today."""
    first = Case.objects.order_by("received_at").values_list("received_at", flat=True).first()
    first_day = first.astimezone(dt.UTC).date() if first else today()
    agreement_days_drop_before(first_day)
    days = [first_day + dt.timedelta(days=i) for i in range((today() - first_day).days + 1)]
    return agreement_days_rebuild(days, built_through=today())


@contextmanager
def spied_live_ranges() -> Iterator[list[tuple[dt.datetime, dt.datetime]]]:
    """The ranges ``live_agreement`` counts live (the rest it read from the rollup)."""
    ranges: list[tuple[dt.datetime, dt.datetime]] = []
    live = selectors._live_pair_rows

    def spy(**window: Any) -> Any:
        ranges.append((window["since"], window["until"]))
        return live(**window)

    selectors._live_pair_rows = spy  # type: ignore[assignment]
    try:
        yield ranges
    finally:
        selectors._live_pair_rows = live  # type: ignore[assignment]


def all_live(**kwargs: Any) -> dict[str, Any]:
    """The oracle: ``live_agreement`` with every day counted live."""
    rollup_days = selectors._rollup_days
    selectors._rollup_days = lambda since, until: None  # type: ignore[assignment]
    try:
        with spied_live_ranges() as ranges:
            result = live_agreement(**kwargs)
        assert ranges == [(kwargs["since"], kwargs["until"])]
        return result
    finally:
        selectors._rollup_days = rollup_days  # type: ignore[assignment]


def through_rollup(**kwargs: Any) -> tuple[dict[str, Any], list[tuple[dt.datetime, dt.datetime]]]:
    with spied_live_ranges() as ranges:
        return live_agreement(**kwargs), ranges


def periods(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Periods to compare: whole days, partial edges, ending now or later, one system, one point."""
    now = data["now"]
    t = today()
    loans, limits, _fraud = data["points"]
    return [
        {"since": midnight(t - dt.timedelta(days=DAYS)), "until": midnight(t)},  # whole days only
        {"since": now - dt.timedelta(days=8, hours=5), "until": now},  # the default shape: partial first day, today
        {"since": now - dt.timedelta(days=10), "until": now, "period": "day"},
        {"since": now - dt.timedelta(days=11, minutes=7), "until": now - dt.timedelta(days=2, hours=3),
         "period": "month"},
        {"since": midnight(t - dt.timedelta(days=6)), "until": now + dt.timedelta(days=2)},  # after built_through
        {"since": now - dt.timedelta(days=9), "until": now, "system": "fraud-check", "period": "day"},
        {"since": now - dt.timedelta(days=9), "until": now, "system": "credit-scoring"},
        {"since": now - dt.timedelta(days=9), "until": now, "point": limits},
        {"since": midnight(t - dt.timedelta(days=5)), "until": midnight(t - dt.timedelta(days=1)), "point": loans,
         "period": "day"},
    ]


def assert_same_through_rollup(data: dict[str, Any]) -> None:
    built_through = agreement_rollup_built_through()
    assert built_through is not None
    for kwargs in periods(data):
        expected = all_live(**kwargs)
        result, live_ranges = through_rollup(**kwargs)
        assert result == expected, kwargs
        # The rollup was read: only what it cannot hold was counted live, a partial day at
        # either edge and the days after built_through or yesterday (today is always live).
        live_from = midnight(min(built_through, today() - dt.timedelta(days=1)) + dt.timedelta(days=1))
        assert len(live_ranges) <= 2, (kwargs, live_ranges)
        for start, end in live_ranges:
            assert end - start < dt.timedelta(days=1) or start == live_from, (kwargs, live_ranges)


def rated_case_before_today() -> Case:
    """A case counted in the agreement (a unit of two ratings or more), received before today."""
    units = (Decision.objects.filter(is_adjudication=False, label__isnull=False, case__reviewers_required__gte=2,
                                     case__is_gold=False, case__received_at__lt=midnight(today()))
             .exclude(outcome="escalate").values("case_id", "round").annotate(n=Count("id")).filter(n__gte=2)
             .order_by("case_id"))
    return Case.objects.get(pk=units[0]["case_id"])


def rollup_rows() -> list[tuple]:
    return sorted(AgreementPairDay.objects.values_list(
        "day", "system_id", "intervention_point_id", "rater_a_id", "rater_b_id", "label_a", "label_b", "unit_size",
        "count"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_after_a_full_build_every_period_reads_the_same_figures(seed) -> None:
    data = random_data(seed)
    assert full_build() > 0
    assert agreement_rollup_built_through() == today()
    rows = rollup_rows()
    assert all(rater_a < rater_b and size >= 2 and count > 0 for _d, _s, _p, rater_a, rater_b, _la, _lb, size, count
               in rows)
    assert_same_through_rollup(data)
    assert live_agreement(since=data["now"] - dt.timedelta(days=DAYS + 1), until=data["now"])["overall"]["units"] > 20


def test_the_rows_add_up_to_the_live_pair_counts_of_every_day() -> None:
    data = random_data(7)
    full_build()
    for offset in range(DAYS):
        day = today() - dt.timedelta(days=offset)
        days, raters = selectors._live_pair_rows(since=midnight(day), until=midnight(day + dt.timedelta(days=1)),
                                                 system_id=None, point_id=None)
        from_rollup = selectors._rollup_pair_rows(first=day, last=day, system_id=None, point_id=None)
        assert summed(from_rollup[0]) == summed((p, selectors._as_date(d), a, b, s, n) for p, d, a, b, s, n in days)
        assert summed(from_rollup[1]) == summed(raters)
        assert all(n > 0 for n in summed(raters).values())
    assert data


def summed(rows: Any) -> Counter:
    """Rows ``(*key, count)`` added up per key (the live rows repeat a key once per kind of unit)."""
    total: Counter = Counter()
    for *key, count in rows:
        total[tuple(key)] += count
    return total


def test_a_day_recomputed_after_a_late_decision_or_a_deletion_reads_the_same_again() -> None:
    data = random_data(11)
    full_build()
    loans = data["points"][0]
    a, b, c = data["reviewers"][:3]
    five_days_ago = data["now"] - dt.timedelta(days=5)
    case = write_case(loans, five_days_ago, [{a: "approve", b: "reject"}], n=20_000)
    late_day = five_days_ago.astimezone(dt.UTC).date()
    agreement_days_rebuild([late_day])
    assert_same_through_rollup(data)
    # A late decision (a third rating) on it: stale until its day is rebuilt.
    add_decision(case, c, "approve")
    kwargs = {"since": midnight(today() - dt.timedelta(days=DAYS)), "until": midnight(today())}
    assert through_rollup(**kwargs)[0] != all_live(**kwargs)
    agreement_days_rebuild([late_day])
    assert_same_through_rollup(data)
    # A case deleted: its pairs go with its day's rebuild.
    victim = rated_case_before_today()
    victim_day = victim.received_at.astimezone(dt.UTC).date()
    victim.delete()
    assert through_rollup(**kwargs)[0] != all_live(**kwargs)
    agreement_days_rebuild([victim_day])
    assert_same_through_rollup(data)


def test_without_a_state_everything_is_live_and_only_the_rebuild_sets_it() -> None:
    data = random_data(5, cases=30)
    assert agreement_rollup_built_through() is None
    kwargs = {"since": data["now"] - dt.timedelta(days=DAYS), "until": data["now"]}
    result, ranges = through_rollup(**kwargs)
    assert ranges == [(kwargs["since"], kwargs["until"])]
    agreement_days_rebuild([today() - dt.timedelta(days=1)])  # days without built_through: still no state
    assert agreement_rollup_built_through() is None
    full_build()
    assert AgreementRollupState.objects.count() == 1
    assert through_rollup(**kwargs)[0] == result
    # Rows of days before the first case go with a full build; the days are rebuilt idempotently.
    before = rollup_rows()
    ghost = AgreementPairDay.objects.first()
    assert ghost is not None
    AgreementPairDay.objects.create(day=today() - dt.timedelta(days=400), system_id=ghost.system_id,
                                    intervention_point_id=ghost.intervention_point_id, rater_a_id=ghost.rater_a_id,
                                    rater_b_id=ghost.rater_b_id, label_a="x", label_b="y", unit_size=2, count=1)
    full_build()
    assert rollup_rows() == before


def test_today_is_counted_live_even_when_the_period_ends_later() -> None:
    # Today's rows are as of the last refresh; a case received since is counted all the same.
    data = random_data(9, cases=30)
    full_build()
    kwargs = {"since": midnight(today() - dt.timedelta(days=DAYS)), "until": midnight(today() + dt.timedelta(days=2))}
    before = all_live(**kwargs)
    a, b = data["reviewers"][:2]
    write_case(data["points"][0], timezone.now() - dt.timedelta(seconds=1), [{a: "approve", b: "reject"}], n=50_000)
    result, ranges = through_rollup(**kwargs)
    assert result == all_live(**kwargs) != before
    assert ranges == [(midnight(today()), kwargs["until"])]


def test_another_time_zone_is_computed_live() -> None:
    data = random_data(3, cases=20)
    full_build()
    kwargs = {"since": data["now"] - dt.timedelta(days=DAYS), "until": data["now"]}
    with timezone.override("Europe/Berlin"):
        _result, ranges = through_rollup(**kwargs)
    assert ranges == [(kwargs["since"], kwargs["until"])]


def test_the_rebuild_in_chunks_gives_the_rows_of_one_count(monkeypatch) -> None:
    from quality.services import agreement

    random_data(13)
    full_build()
    whole = rollup_rows()
    monkeypatch.setattr(agreement, "CHUNK_DAYS", 2)
    full_build()
    assert rollup_rows() == whole
    counted = agreement_day_pairs(since=midnight(today() - dt.timedelta(days=DAYS)),
                                  until=midnight(today() + dt.timedelta(days=1)))
    assert sorted((*key, n) for key, n in counted.items()) == whole


@pytest.mark.postgres
def test_the_rebuild_puts_the_transactions_settings_back() -> None:
    random_data(17, cases=10)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '5MB'")
        cursor.execute("SELECT current_setting('jit')")
        jit = cursor.fetchone()[0]
        assert full_build() > 0
        cursor.execute("SELECT current_setting('work_mem'), current_setting('jit')")
        assert cursor.fetchone() == ("5MB", jit)
