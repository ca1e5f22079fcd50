"""Realistic demo traffic: cases posted and reviewed through the real services.

Used by ``manage.py demo_data --cases N``. It replays a month of operations on a
simulated clock (``django.utils.timezone.now`` is moved forward step by step), so
received times, decisions, history rows and audit events all carry consistent
times spread over the period, exactly as if the portal had been running. Nothing
is written around the services: ingestion, claims, decisions and ground truth go
through the same functions the API and the workbench call.

Planted on purpose, so that dashboards and audits have something real to find:
the credit-scoring model rejects applicants with ``gender = f`` more often than
equally qualified others (a disparity the human reviewers partly correct), and
about 60 % of credit and moderation cases later receive ground truth.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from django.contrib.auth.models import User
from django.utils import timezone

from reviews.api.serializers.cases import CaseSubmissionValidator
from reviews.models import Case, CaseStatus
from reviews.services.decisions import decision_record
from reviews.services.ingest import case_ingest
from reviews.services.outcomes import case_report_outcome
from reviews.services.queue import claim_next


class SimulatedClock:
    """A clock the services read through ``timezone.now`` while the demo replays a month."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = start

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += dt.timedelta(seconds=seconds)

    def set(self, moment: dt.datetime) -> None:
        self.current = max(self.current, moment)


@contextlib.contextmanager
def simulated_time(clock: SimulatedClock) -> Iterator[SimulatedClock]:
    with mock.patch("django.utils.timezone.now", clock.now):
        yield clock


@dataclass
class TrafficReport:
    ingested: int = 0
    auto_accepted: int = 0
    decisions: int = 0
    outcomes: int = 0
    left_in_queue: int = 0
    per_system: dict[str, int] = field(default_factory=dict)


def _credit_case(rng: random.Random, n: int) -> tuple[dict[str, Any], str, dict[str, str]]:
    gender = rng.choices(["f", "m", "x"], weights=[48, 48, 4])[0]
    age_band = rng.choice(["18-24", "25-34", "35-44", "45-54", "55+"])
    amount = int(rng.lognormvariate(9.0, 0.8))
    income = int(rng.lognormvariate(7.9, 0.4))
    years = rng.randint(0, 25)
    # The truth depends on the finances only, never on gender.
    score = income * 12 / max(amount, 1) + years * 0.05 + rng.gauss(0, 0.4)
    truth = "approve" if score > 0.9 else "reject"
    # The model is right most of the time, but wrongly rejects women more often.
    ai = truth
    if rng.random() < 0.08:
        ai = "reject" if truth == "approve" else "approve"
    if gender == "f" and truth == "approve" and rng.random() < 0.22:
        ai = "reject"
    confidence = round(rng.uniform(0.55, 0.99) if ai == truth else rng.uniform(0.5, 0.85), 3)
    body = {
        "system": "credit-scoring",
        "intervention_point": "loan-review",
        "external_id": f"app-{100000 + n}",
        "input": {
            "amount": amount,
            "monthly_income": income,
            "employment_years": years,
            "purpose": rng.choice(["car", "renovation", "education", "debt consolidation", "business"]),
            "text": f"Application for {amount} EUR over {rng.choice([12, 24, 36, 60])} months.",
        },
        "prediction": {"label": ai, "confidence": confidence, "model_version": rng.choice(["v3.1", "v3.2"])},
        "subject": {"gender": gender, "age_band": age_band},
    }
    return body, truth, {"gender": gender}


MODERATION_TEXTS = {
    "allow": ["Great recipe, thanks for sharing!", "Does anyone know when the store opens?", "Lovely photo."],
    "remove": [
        "Buy followers now at a discount!!!",
        "You are worthless and everyone hates you.",
        "Click here for free money.",
    ],
    "age_restrict": ["Graphic footage from the accident scene.", "Review of a horror film with gore."],
}


def _moderation_case(rng: random.Random, n: int) -> tuple[dict[str, Any], str, dict[str, str]]:
    truth = rng.choices(["allow", "remove", "age_restrict"], weights=[70, 20, 10])[0]
    ai = truth if rng.random() < 0.88 else rng.choice([x for x in MODERATION_TEXTS if x != truth])
    confidence = round(rng.uniform(0.5, 0.99) if ai == truth else rng.uniform(0.35, 0.8), 3)
    body = {
        "system": "content-moderation",
        "intervention_point": "flagged-content",
        "external_id": f"post-{500000 + n}",
        "input": {"text": rng.choice(MODERATION_TEXTS[truth]), "reports": rng.randint(1, 12),
                  "language": rng.choice(["en", "de", "fr"])},
        "prediction": {"label": ai, "confidence": confidence, "model_version": "mod-2.4"},
    }
    return body, truth, {}


def _biometric_case(rng: random.Random, n: int) -> tuple[dict[str, Any], str, dict[str, str]]:
    truth = "match" if rng.random() < 0.3 else "no_match"
    similarity = rng.uniform(0.8, 0.99) if truth == "match" else rng.uniform(0.4, 0.9)
    ai = "match" if similarity > 0.82 else "no_match"
    body = {
        "system": "remote-biometric-id",
        "intervention_point": "match-verification",
        "external_id": f"probe-{900000 + n}",
        "input": {"probe_image": f"probe-{n}.jpg", "reference_database": "watchlist-2026-11",
                  "candidate_id": f"cand-{rng.randint(1000, 9999)}", "similarity": round(similarity, 4),
                  "camera": rng.choice(["gate-a", "gate-b", "hall-2"])},
        "prediction": {"label": ai, "confidence": round(similarity, 3), "model_version": "face-7.0"},
    }
    return body, truth, {}


GENERATORS = {
    "credit-scoring": (_credit_case, 55),
    "content-moderation": (_moderation_case, 35),
    "remote-biometric-id": (_biometric_case, 10),
}


def _answer(rng: random.Random, truth: str, ai_label: str | None, labels: list[str], accuracy: float) -> str:
    if rng.random() < accuracy:
        return truth
    return rng.choice([label for label in labels if label != truth] or labels)


def _decide(
    rng: random.Random, clock: SimulatedClock, reviewer: User, case: Case, truth: str, *, accuracy: float
) -> None:
    clock.advance(rng.uniform(6, 80))
    labels = list(case.system.labels)
    answer = _answer(rng, truth, case.prediction_label, labels, accuracy)
    no_ai = case.blind or case.prediction_label is None
    if no_ai:
        decision_record(reviewer=reviewer, case=case, outcome=None, label=answer,
                        rationale="" if answer == case.prediction_label else "Checked against the documents.")
    elif rng.random() < 0.02 and not case.decisions.exists():
        decision_record(reviewer=reviewer, case=case, outcome="escalate", label=None,
                        rationale="Unclear case; needs a senior reviewer.")
    elif answer == case.prediction_label:
        decision_record(reviewer=reviewer, case=case, outcome="approve", label=None, rationale="")
    else:
        decision_record(reviewer=reviewer, case=case, outcome="override", label=answer,
                        rationale=f"The evidence supports '{answer}', not '{case.prediction_label}'.")


def post_demo_traffic(
    *, integration: User, reviewers: list[User], adjudicator: User, cases: int = 2000, days: int = 30,
    seed: int = 7, leave_open: int = 25,
) -> TrafficReport:
    """Replay ``days`` of traffic ending now: ingest ``cases`` and work the queue day by day."""
    rng = random.Random(seed)
    report = TrafficReport()
    end = timezone.now()
    clock = SimulatedClock(end - dt.timedelta(days=days))
    truths: dict[int, str] = {}
    awaiting_outcome: set[int] = set()
    validator = CaseSubmissionValidator(actor=integration)
    names = list(GENERATORS)
    weights = [GENERATORS[name][1] for name in names]
    per_day = max(1, cases // days)
    accuracy = {reviewer.pk: 0.9 + 0.02 * index for index, reviewer in enumerate(reviewers)}
    accuracy[adjudicator.pk] = 0.97
    n = 0
    with simulated_time(clock):
        for day in range(days):
            day_start = end - dt.timedelta(days=days - day)
            clock.set(day_start + dt.timedelta(hours=8))
            todays = per_day if day < days - 1 else cases - n
            for _ in range(max(0, todays)):
                if n >= cases:
                    break
                clock.advance(rng.uniform(5, 60))
                system = rng.choices(names, weights=weights)[0]
                body, truth, _ = GENERATORS[system][0](rng, n)
                n += 1
                data, errors = validator.validate(body)
                if errors:
                    raise ValueError(f"demo submission rejected: {errors}")
                case = case_ingest(actor=integration, data=data)
                truths[case.pk] = truth
                if system != "remote-biometric-id":
                    awaiting_outcome.add(case.pk)
                report.ingested += 1
                report.per_system[system] = report.per_system.get(system, 0) + 1
                if case.status == CaseStatus.AUTO_ACCEPTED:
                    report.auto_accepted += 1
            last_day = day == days - 1
            # Reviewers work the queue in the afternoon (on the last day they leave some for the demo).
            clock.set(day_start + dt.timedelta(hours=15))
            report.decisions += _work_queue(rng, clock, reviewers, adjudicator, truths, accuracy,
                                            keep=leave_open if last_day else 0)
            # Ground truth arrives for about 60 % of the settled credit and moderation cases.
            settled = Case.objects.filter(
                pk__in=list(awaiting_outcome), status__in=[CaseStatus.DECIDED, CaseStatus.AUTO_ACCEPTED]
            ).select_related("system")
            for case in settled:
                awaiting_outcome.discard(case.pk)
                if rng.random() < 0.6:
                    clock.advance(rng.uniform(1, 30))
                    case_report_outcome(actor=integration, case=case, true_label=truths[case.pk])
                    report.outcomes += 1
    report.left_in_queue = Case.objects.filter(status__in=[CaseStatus.QUEUED, CaseStatus.ESCALATED]).count()
    return report


def _work_queue(
    rng: random.Random, clock: SimulatedClock, reviewers: list[User], adjudicator: User, truths: dict[int, str],
    accuracy: dict[int, float], *, keep: int,
) -> int:
    decided = 0
    open_cases = Case.objects.filter(status__in=[CaseStatus.QUEUED, CaseStatus.ESCALATED]).count()
    budget = max(0, open_cases * 3 - keep)  # multi-review cases need several claims
    workers = [*reviewers, adjudicator]
    idle = 0
    while budget > 0 and idle < len(workers):
        if Case.objects.filter(status__in=[CaseStatus.QUEUED, CaseStatus.ESCALATED]).count() <= keep:
            break
        reviewer = rng.choice(workers)
        clock.advance(rng.uniform(2, 20))
        case = claim_next(reviewer=reviewer)
        if case is None:
            idle += 1
            continue
        idle = 0
        budget -= 1
        truth = truths.get(case.pk) or (case.gold_label or case.prediction_label or case.system.labels[0])
        _decide(rng, clock, reviewer, case, truth, accuracy=accuracy.get(reviewer.pk, 0.9))
        decided += 1
    return decided
