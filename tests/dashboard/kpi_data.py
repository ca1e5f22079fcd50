"""Hand-built KPI data: cases and decisions written directly with known values.

Systems and intervention points go through their services; cases and decisions
are created as rows in the state the pipeline leaves them in (with their
history rows, as every save writes one), so each KPI of ``build_scenario`` is
known in advance. The expected figures are worked out in ``EXPECTED`` below
and in the tests' comments.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User

from reviews.models import AISystem, Case, CaseStatus, Decision, InterventionPoint, Resolution
from reviews.services.people import user_create
from reviews.services.systems import intervention_point_create, system_create
from tests.conftest import grant_ai_literacy

UTC = dt.UTC
LABELS = ["approve", "reject"]
DAY0 = dt.date(2026, 9, 30)
DAY1 = dt.date(2026, 10, 1)
DAY2 = dt.date(2026, 10, 2)
DAY3 = dt.date(2026, 10, 3)


def at(day: dt.date, hour: int = 10, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def make_point(system_slug: str = "credit", point_slug: str = "loan-review", *,
               labels: list[str] | None = None, **rules: Any) -> InterventionPoint:
    """A system (created once) and an intervention point on it."""
    system = AISystem.objects.filter(slug=system_slug).first() or system_create(
        actor=None, slug=system_slug, name=system_slug.replace("-", " ").title(), labels=labels or list(LABELS),
        declared_tier="high",
    )
    rules.setdefault("stage", "validation")
    return intervention_point_create(actor=None, system=system, slug=point_slug,
                                     name=point_slug.replace("-", " ").title(), **rules)


def make_reviewer(username: str, systems: list[str]) -> User:
    user, _ = user_create(actor=None, username=username, password="pass-word-123", role="reviewer",
                          systems=systems, validate=False)
    grant_ai_literacy(user)
    return user


_counter = {"n": 0}


def make_case(
    point: InterventionPoint,
    *,
    received_at: dt.datetime,
    routed: bool = True,
    ai: str | None = "approve",
    final: str | None = None,
    true: str | None = None,
    status: str | None = None,
    resolution: str | None = None,
    ttr_s: float | None = None,
    decided_at: dt.datetime | None = None,
    sla_breached: bool = False,
    is_gold: bool = False,
    gold_label: str | None = None,
    blind: bool = False,
    reviewers_required: int = 1,
    external_id: str | None = None,
) -> Case:
    """One case in a final or open state.

    Not routed → auto-accepted with the AI label, decided when received. Routed
    with ``ttr_s`` (or ``decided_at``) → decided (resolution ``reviewed`` unless
    given); routed without → ``status`` (queued by default).
    """
    _counter["n"] += 1
    if not routed:
        status = CaseStatus.AUTO_ACCEPTED
        resolution = Resolution.AUTO_ACCEPTED
        final = ai
        decided_at = received_at
    elif ttr_s is not None or decided_at is not None:
        decided_at = decided_at or received_at + dt.timedelta(seconds=ttr_s or 0)
        status = CaseStatus.DECIDED
        resolution = resolution or Resolution.REVIEWED
    else:
        status = status or CaseStatus.QUEUED
    return Case.objects.create(
        system=point.system,
        intervention_point=point,
        external_id=external_id or f"c-{_counter['n']}",
        input={"amount": 1000},
        prediction_label=ai,
        prediction_confidence=0.7 if ai is not None else None,
        status=status,
        routed=routed,
        routing_reasons=["confidence_below"] if routed else [],
        reviewers_required=reviewers_required,
        is_gold=is_gold,
        gold_label=gold_label,
        blind=blind,
        received_at=received_at,
        sla_breached=sla_breached,
        resolution=resolution,
        final_label=final,
        decided_at=decided_at,
        true_label=true,
        true_label_at=decided_at or received_at if true is not None else None,
    )


def decide(case: Case, reviewer: User, *, label: str | None, outcome: str | None = None, ai_shown: bool = True,
           spent_s: float = 30, adjudication: bool = False, round: int = 1) -> Decision:
    """A reviewer's decision; the outcome follows from the label unless given (as the service derives it)."""
    if outcome is None:
        outcome = "approve" if label == case.prediction_label else "override"
    return Decision.objects.create(
        case=case, reviewer=reviewer, round=round, outcome=outcome, label=label, rationale="checked",
        ai_shown=ai_shown, is_adjudication=adjudication, time_spent_ms=int(spent_s * 1000),
        decided_at=case.decided_at or case.received_at,
    )


@dataclass
class Scenario:
    system: AISystem
    point: InterventionPoint
    reviewers: dict[str, User]
    cases: dict[str, Case] = field(default_factory=dict)


def build_scenario() -> Scenario:
    """The worked example: 14 non-gold cases over DAY1 and DAY2 (+ cases outside the period and gold items)."""
    point = make_point()
    r1, r2, r3 = (make_reviewer(name, ["credit"]) for name in ("r1", "r2", "r3"))
    s = Scenario(system=point.system, point=point, reviewers={"r1": r1, "r2": r2, "r3": r3})
    c = s.cases
    # Outside the period: routed on DAY0, decided on DAY2 (open at the start of the period).
    c["before"] = make_case(point, received_at=at(DAY0, 12), ai="approve", final="approve",
                            decided_at=at(DAY2, 8))
    decide(c["before"], r1, label="approve", spent_s=12)
    # DAY1 --------------------------------------------------------------------------------------------
    c["auto1"] = make_case(point, received_at=at(DAY1, 9), routed=False, ai="approve", true="approve")
    c["auto2"] = make_case(point, received_at=at(DAY1, 9, 5), routed=False, ai="approve", true="reject")
    c["auto3"] = make_case(point, received_at=at(DAY1, 9, 10), routed=False, ai="reject")
    c["rev1"] = make_case(point, received_at=at(DAY1, 10), ai="approve", final="approve", true="approve", ttr_s=60)
    decide(c["rev1"], r1, label="approve", spent_s=10)
    c["rev2"] = make_case(point, received_at=at(DAY1, 10, 5), ai="approve", final="reject", true="reject",
                          ttr_s=120)
    decide(c["rev2"], r2, label="reject", spent_s=5)
    c["rev3"] = make_case(point, received_at=at(DAY1, 10, 10), ai="reject", final="approve", true="approve",
                          ttr_s=30)
    decide(c["rev3"], r3, label="approve", spent_s=100)
    c["open1"] = make_case(point, received_at=at(DAY1, 11), ai="approve", status=CaseStatus.ESCALATED,
                           sla_breached=True)
    decide(c["open1"], r3, label=None, outcome="escalate", spent_s=300)
    c["sla1"] = make_case(point, received_at=at(DAY1, 11, 5), ai="approve", final=None, true="approve",
                          ttr_s=600, resolution=Resolution.SLA_FAIL_CLOSED, sla_breached=True)
    c["gold1"] = make_case(point, received_at=at(DAY1, 12), ai="approve", final="reject", ttr_s=20,
                           is_gold=True, gold_label="reject")
    decide(c["gold1"], r1, label="reject", spent_s=20)
    c["gold2"] = make_case(point, received_at=at(DAY1, 12, 5), ai="approve", final="reject", ttr_s=20,
                           is_gold=True, gold_label="approve")
    decide(c["gold2"], r2, label="reject", spent_s=15)
    # DAY2 --------------------------------------------------------------------------------------------
    c["4e1"] = make_case(point, received_at=at(DAY2, 10), ai="approve", final="approve", ttr_s=240,
                         reviewers_required=2)
    decide(c["4e1"], r1, label="approve", spent_s=30)
    decide(c["4e1"], r2, label="approve", spent_s=25)
    c["4e2"] = make_case(point, received_at=at(DAY2, 10, 5), ai="approve", final="reject", true="reject",
                         ttr_s=900, resolution=Resolution.ADJUDICATED, reviewers_required=2)
    decide(c["4e2"], r1, label="reject", spent_s=40)
    decide(c["4e2"], r2, label="approve", spent_s=35)
    decide(c["4e2"], r3, label="reject", spent_s=200, adjudication=True)
    c["4e3"] = make_case(point, received_at=at(DAY2, 10, 10), ai="approve", final="reject", ttr_s=300,
                         reviewers_required=2)
    decide(c["4e3"], r1, label="reject", spent_s=50)
    decide(c["4e3"], r2, label="reject", spent_s=45)
    c["blind1"] = make_case(point, received_at=at(DAY2, 11), ai="approve", final="approve", ttr_s=45, blind=True)
    decide(c["blind1"], r1, label="approve", ai_shown=False, spent_s=60)
    c["blind2"] = make_case(point, received_at=at(DAY2, 11, 5), ai="approve", final="reject", ttr_s=50, blind=True)
    decide(c["blind2"], r2, label="reject", ai_shown=False, spent_s=55)
    c["auto4"] = make_case(point, received_at=at(DAY2, 12), routed=False, ai="approve", true="approve")
    c["gold3"] = make_case(point, received_at=at(DAY2, 13), ai="approve", is_gold=True, gold_label="approve")
    # After the period.
    c["after"] = make_case(point, received_at=at(DAY3, 0, 0, 1), routed=False, ai="reject", true="approve")
    return s


# The scenario's KPIs over [DAY1, DAY3) for the system (derivations in tests/dashboard/test_kpis.py).
EXPECTED: dict[str, Any] = {
    "cases_total": 14,
    "auto_accepted": 4,
    "routed": 10,
    "reviewed": 9,
    "automation_rate": 4 / 14,
    "review_rate": 10 / 14,
    "override_rate": 6 / 9,
    "evaluated": 8,
    "accuracy_ai": 4 / 8,
    "accuracy_final": 6 / 8,
    "accuracy_lift": 0.25,
    "error_reduction_rate": 0.5,
    "agreement": {"percent": 2 / 3, "kappa": 0.4, "alpha": 4 / 9, "statistic": "cohen", "units": 3, "pairs": 3},
    "time_to_resolution_s": {"p50": 120.0, "p90": 900.0},
    "sla_breaches": 2,
    "queue_depth": 1,
}


def build_demo(*, now: dt.datetime, days: int = 30, per_day: int = 60, seed: int = 1) -> Scenario:
    """Realistic-looking data for the browser test and the screenshot: two systems, four reviewers.

    Per day about ``per_day`` cases; 30-45 % routed (fewer at weekends); reviewers
    override 10-20 %; a four-eyes share with some disagreement; blind and gold
    items; ground truth for most cases older than three days; a few SLA breaches
    and a live queue. Written with ``bulk_create`` (no per-row services).
    """
    import random

    rng = random.Random(seed)
    credit = make_point("credit", "loan-review", sla_seconds=3600)
    fraud = make_point("fraud", "tx-check", labels=["legit", "fraud"], reviewers_required=2, sla_seconds=1800)
    names = ["alice", "bob", "chen", "dana"]
    reviewers = {name: make_reviewer(name, ["credit", "fraud"]) for name in names}
    team = list(reviewers.values())
    today = now.astimezone(UTC).date()
    cases: list[Case] = []
    plans: list[tuple[int, list[tuple[User, str, bool, int]]]] = []
    for back in range(days - 1, -1, -1):
        day = today - dt.timedelta(days=back)
        weekend = day.weekday() >= 5
        volume = int(per_day * (0.55 if weekend else 1.0) * rng.uniform(0.85, 1.15))
        for _ in range(volume):
            point = credit if rng.random() < 0.65 else fraud
            labels = point.system.labels
            received = dt.datetime.combine(day, dt.time(rng.randrange(7, 20), rng.randrange(60)), tzinfo=UTC)
            if received >= now:
                received = now - dt.timedelta(minutes=rng.randrange(5, 300))
            ai = labels[0] if rng.random() < 0.7 else labels[1]
            truth = ai if rng.random() < (0.86 - back * 0.002) else next(x for x in labels if x != ai)
            known = back >= 3 and rng.random() < 0.7
            routed = rng.random() < (0.3 if weekend else 0.4)
            gold = routed and rng.random() < 0.04
            blind = routed and not gold and rng.random() < 0.1
            ratings: list[tuple[User, str, bool, int]] = []
            status, resolution, final, decided = CaseStatus.AUTO_ACCEPTED, Resolution.AUTO_ACCEPTED, ai, received
            breached = False
            if routed:
                age_h = (now - received).total_seconds() / 3600
                if age_h < rng.uniform(0.5, 30):
                    status, resolution, final, decided = CaseStatus.QUEUED, None, None, None
                else:
                    wait = rng.lognormvariate(5.6 - back * 0.01, 1.1)
                    breached = wait > point.sla_seconds
                    decided = received + dt.timedelta(seconds=wait)
                    status, resolution = CaseStatus.DECIDED, Resolution.REVIEWED
                    # A reviewer finds the truth most of the time, a little more often when the AI is hidden.
                    def verdict(hidden: bool) -> str:
                        p_right = 0.93 if hidden else 0.9
                        return truth if rng.random() < p_right else next(x for x in labels if x != truth)
                    chosen = rng.sample(team, point.reviewers_required)
                    for reviewer in chosen:
                        ratings.append((reviewer, verdict(blind), not blind, int(rng.lognormvariate(3.4, 0.6) * 1000)))
                    final = ratings[0][1]
                    if len({r[1] for r in ratings}) > 1:
                        resolution = Resolution.ADJUDICATED
                        final = truth if rng.random() < 0.9 else ratings[0][1]
            cases.append(Case(
                system=point.system, intervention_point=point, external_id=f"demo-{len(cases)}",
                input={"amount": rng.randrange(100, 50000)}, prediction_label=ai,
                prediction_confidence=round(rng.uniform(0.4, 0.99), 2), status=status, routed=routed,
                routing_reasons=["confidence_below"] if routed else [], reviewers_required=point.reviewers_required,
                is_gold=gold, gold_label=truth if gold else None, blind=blind, received_at=received,
                sla_breached=breached, resolution=resolution, final_label=final, decided_at=decided,
                true_label=truth if known and status != CaseStatus.QUEUED else None,
                true_label_at=now if known and status != CaseStatus.QUEUED else None,
            ))
            plans.append((len(cases) - 1, ratings))
    Case.objects.bulk_create(cases, batch_size=1000)
    decisions = []
    for index, ratings in plans:
        case = cases[index]
        for reviewer, label, shown, spent in ratings:
            decisions.append(Decision(
                case=case, reviewer=reviewer, round=1, outcome="approve" if label == case.prediction_label
                else "override", label=label, rationale="" if label == case.prediction_label else "checked",
                ai_shown=shown, time_spent_ms=spent, decided_at=case.decided_at or case.received_at,
            ))
    Decision.objects.bulk_create(decisions, batch_size=1000)
    return Scenario(system=credit.system, point=credit, reviewers=reviewers)
