"""Realistic demo traffic: a month of cases, reviews and ground truth, written in bulk.

Used by ``manage.py demo_data --cases N``. The month ends at the moment the command
runs. Each case is routed by the real routing code (``_build_case``, as ingestion
does); what people then do is simulated in memory (claims within the point's SLA,
verdicts, four-eyes, disagreements and escalations settled by an adjudicator, ground
truth arriving later), and the result is written with a handful of bulk INSERTs:
the cases, their decisions, simple-history's rows for each (``bulk_history_create``:
"+" at creation, "~" for each later change, dated when it happened and by whom) and
every audit event the services would have recorded, through
``audit.services.bulk_record_events``, in the order they happened. The chain verifies
afterwards like any other. (Replaying the same month through the services one call
at a time took minutes on SQLite; this takes seconds.)

Left waiting at the end: the newest routed cases (received in the last few minutes,
so every SLA runs well past the first sweep of beat) for rev1..rev3, and a few
escalated cases for the adjudicators, each with the reviewer's verdict and reason.

Planted on purpose, so that dashboards and audits have something real to find:
the credit-scoring model rejects applicants with ``gender = f`` more often than
equally qualified others (a disparity the human reviewers partly correct), and
about 60 % of settled credit and moderation cases later receive ground truth.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import bulk_record_events
from reviews.models import Case, CaseStatus, Decision, DecisionOutcome, InterventionPoint, Resolution
from reviews.services.ingest import _build_case, _event_specs


@dataclass
class TrafficReport:
    ingested: int = 0
    auto_accepted: int = 0
    decisions: int = 0
    outcomes: int = 0
    left_in_queue: int = 0
    escalated_waiting: int = 0
    per_system: dict[str, int] = field(default_factory=dict)


def _credit_case(rng: random.Random, n: int) -> tuple[dict[str, Any], str]:
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
    return body, truth


MODERATION_TEXTS = {
    "allow": ["Great recipe, thanks for sharing!", "Does anyone know when the store opens?", "Lovely photo."],
    "remove": [
        "Buy followers now at a discount!!!",
        "You are worthless and everyone hates you.",
        "Click here for free money.",
    ],
    "age_restrict": ["Graphic footage from the accident scene.", "Review of a horror film with gore."],
}


def _moderation_case(rng: random.Random, n: int) -> tuple[dict[str, Any], str]:
    truth = rng.choices(["allow", "remove", "age_restrict"], weights=[70, 20, 10])[0]
    ai = truth if rng.random() < 0.88 else rng.choice([x for x in MODERATION_TEXTS if x != truth])
    confidence = round(rng.uniform(0.5, 0.99) if ai == truth else rng.uniform(0.35, 0.8), 3)
    body = {
        "external_id": f"post-{500000 + n}",
        "input": {"text": rng.choice(MODERATION_TEXTS[truth]), "reports": rng.randint(1, 12),
                  "language": rng.choice(["en", "de", "fr"])},
        "prediction": {"label": ai, "confidence": confidence, "model_version": "mod-2.4"},
    }
    return body, truth


def _biometric_case(rng: random.Random, n: int) -> tuple[dict[str, Any], str]:
    truth = "match" if rng.random() < 0.3 else "no_match"
    similarity = rng.uniform(0.8, 0.99) if truth == "match" else rng.uniform(0.4, 0.9)
    ai = "match" if similarity > 0.82 else "no_match"
    body = {
        "external_id": f"probe-{900000 + n}",
        "input": {"probe_image": f"probe-{n}.jpg", "reference_database": "watchlist-2026-11",
                  "candidate_id": f"cand-{rng.randint(1000, 9999)}", "similarity": round(similarity, 4),
                  "camera": rng.choice(["gate-a", "gate-b", "hall-2"])},
        "prediction": {"label": ai, "confidence": round(similarity, 3), "model_version": "face-7.0"},
    }
    return body, truth


GENERATORS = {
    "credit-scoring": (_credit_case, 55),
    "content-moderation": (_moderation_case, 35),
    "remote-biometric-id": (_biometric_case, 10),
}
# Systems whose integrations report ground truth later (never the biometric matches).
WITH_GROUND_TRUTH = {"credit-scoring", "content-moderation"}


def _answer(rng: random.Random, truth: str, labels: list[str], accuracy: float) -> str:
    if rng.random() < accuracy:
        return truth
    return rng.choice([label for label in labels if label != truth] or labels)


@dataclass
class _Writer:
    """Everything the month produced, collected in memory and written in bulk at the end."""

    events: list[tuple[dt.datetime, int, dict[str, Any]]] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    # (case, changed fields, when, by whom) in the order the changes happened
    case_changes: list[tuple[Case, dict[str, Any], dt.datetime, User]] = field(default_factory=list)

    def event(self, at: dt.datetime, spec: dict[str, Any]) -> None:
        self.events.append((at, len(self.events), {**spec, "at": at}))


class _Month:
    """Simulates people working the queue; reads nothing from the database."""

    def __init__(self, *, rng: random.Random, reviewers: list[User], adjudicators: list[User],
                 systems_of: dict[int, set[int]], writer: _Writer) -> None:
        self.rng = rng
        self.reviewers = reviewers
        self.adjudicators = adjudicators
        self.systems_of = systems_of
        self.writer = writer
        self.accuracy = {reviewer.pk: 0.9 + 0.02 * index for index, reviewer in enumerate(reviewers)}
        for adjudicator in adjudicators:
            self.accuracy[adjudicator.pk] = 0.97

    def eligible(self, case: Case, exclude: set[int]) -> list[User]:
        return [r for r in self.reviewers if case.system_id in self.systems_of.get(r.pk, set()) and r.pk not in exclude]

    def _verdict(self, case: Case, reviewer: User, truth: str, *, adjudication: bool,
                 may_escalate: bool, force_escalate: bool) -> tuple[str, str | None, str]:
        if force_escalate:
            return DecisionOutcome.ESCALATE, None, "Income documents contradict each other; needs a senior reviewer."
        labels = list(case.system.labels)
        answer = _answer(self.rng, truth, labels, self.accuracy.get(reviewer.pk, 0.9))
        if case.blind or case.prediction_label is None:
            # Served blind: the reviewer answers with a label, no approve/override.
            outcome = DecisionOutcome.APPROVE if answer == case.prediction_label else DecisionOutcome.OVERRIDE
            return outcome, answer, "" if answer == case.prediction_label else "Checked against the documents."
        if may_escalate and not adjudication and self.rng.random() < 0.02:
            return DecisionOutcome.ESCALATE, None, "Unclear case; needs a senior reviewer."
        if answer == case.prediction_label:
            return DecisionOutcome.APPROVE, answer, ""
        return DecisionOutcome.OVERRIDE, answer, f"The evidence supports '{answer}', not '{case.prediction_label}'."

    def decide(self, case: Case, reviewer: User, truth: str, at: dt.datetime, *, adjudication: bool = False,
               earlier: list[str] | None = None, may_escalate: bool = True,
               force_escalate: bool = False) -> tuple[str, str | None, dt.datetime]:
        """One claim and verdict; returns the outcome, the verdict label and when it was given."""
        claimed_at = at
        decided_at = claimed_at + dt.timedelta(seconds=self.rng.uniform(6, 80))
        outcome, label, rationale = self._verdict(case, reviewer, truth, adjudication=adjudication,
                                                  may_escalate=may_escalate, force_escalate=force_escalate)
        blind = case.blind or case.prediction_label is None
        decision = Decision(
            case=case, reviewer=reviewer, round=1, outcome=outcome,
            label=None if outcome == DecisionOutcome.APPROVE and not blind else label,
            rationale=rationale, ai_shown=not blind, is_adjudication=adjudication, claimed_at=claimed_at,
            time_spent_ms=int((decided_at - claimed_at) / dt.timedelta(milliseconds=1)), decided_at=decided_at,
            system_id=case.system_id, prediction_label=case.prediction_label,
        )
        if outcome == DecisionOutcome.APPROVE and not blind:
            decision.label = case.prediction_label
        decision._history_user = reviewer  # type: ignore[attr-defined]
        decision._history_date = decided_at  # type: ignore[attr-defined]
        self.writer.decisions.append(decision)
        from_status = CaseStatus.ESCALATED if adjudication else CaseStatus.QUEUED
        self.writer.event(claimed_at, dict(
            action="case.claimed", actor=reviewer, obj=case, case_id=case.pk, system_id=case.system_id,
            data={"lease_expires_at": claimed_at + dt.timedelta(minutes=5), "round": 1},
            before={"status": from_status}, after={"status": CaseStatus.CLAIMED},
        ))
        verdict = decision.label
        data: dict[str, Any] = {"outcome": outcome, "label": verdict, "round": 1, "ai_shown": decision.ai_shown,
                                "is_adjudication": adjudication, "time_spent_ms": decision.time_spent_ms}
        # What the case becomes (as decision_record decides it).
        verdicts = [*(earlier or []), verdict] if verdict is not None else []
        if adjudication:
            after, resolution, cause = CaseStatus.DECIDED, Resolution.ADJUDICATED, ""
        elif outcome == DecisionOutcome.ESCALATE:
            after, resolution, cause = CaseStatus.ESCALATED, None, "reviewer_escalated"
        elif len(set(verdicts)) > 1:
            after, resolution, cause = CaseStatus.ESCALATED, None, "disagreement"
        elif len(verdicts) >= case.reviewers_required:
            after, resolution, cause = CaseStatus.DECIDED, Resolution.REVIEWED, ""
        else:
            after, resolution, cause = CaseStatus.QUEUED, None, ""
        self.writer.event(decided_at, dict(
            action="decision.recorded", actor=reviewer, obj=decision, object_type="decision",
            object_label=f"decision on case {case.pk}", case_id=case.pk, system_id=case.system_id, data=data,
            before={"status": CaseStatus.CLAIMED}, after={"status": after},
        ))
        if resolution is not None:
            self.writer.event(decided_at, dict(
                action="case.decided", actor=reviewer, obj=case, case_id=case.pk, system_id=case.system_id,
                data={"resolution": resolution, "final_label": verdict, "round": 1,
                      "reviewers_required": case.reviewers_required},
                before={"status": CaseStatus.CLAIMED},
                after={"status": CaseStatus.DECIDED, "resolution": resolution, "final_label": verdict},
            ))
            changes = {"status": CaseStatus.DECIDED, "resolution": resolution, "final_label": verdict,
                       "decided_at": decided_at}
            self.writer.case_changes.append((case, changes, decided_at, reviewer))
        elif cause:
            self.writer.event(decided_at, dict(
                action="case.escalated", actor=reviewer, obj=case, case_id=case.pk, system_id=case.system_id,
                data={"cause": cause, "round": 1}, before={"status": CaseStatus.CLAIMED},
                after={"status": CaseStatus.ESCALATED},
            ))
            self.writer.case_changes.append((case, {"status": CaseStatus.ESCALATED}, decided_at, reviewer))
        return cause or after, verdict, decided_at

    def review(self, case: Case, truth: str, *, leave_escalated: bool = False) -> bool:
        """Work one routed case to its end (or, with ``leave_escalated``, escalate it and leave it waiting)."""
        sla = case.intervention_point.sla_seconds or 3600
        # Picked up within the SLA (the escalated ones left waiting were received minutes ago).
        delay = 5.0 if leave_escalated else self.rng.uniform(30, sla * 0.5)
        at = case.received_at + dt.timedelta(seconds=delay)
        deciders: set[int] = set()
        verdicts: list[str] = []
        for _ in range(case.reviewers_required):
            candidates = self.eligible(case, deciders)
            if not candidates:
                return False
            reviewer = self.rng.choice(candidates)
            deciders.add(reviewer.pk)
            state, verdict, decided_at = self.decide(
                case, reviewer, truth, at, earlier=verdicts, force_escalate=leave_escalated)
            if verdict is not None:
                verdicts.append(verdict)
            at = decided_at + dt.timedelta(seconds=self.rng.uniform(20, 120))
            if state in ("reviewer_escalated", "disagreement"):
                if leave_escalated:
                    return True
                # Never the person who escalated or decided before (issue 12's rule).
                adjudicators = [a for a in self.adjudicators if a.pk not in deciders]
                self.decide(case, self.rng.choice(adjudicators), truth, at, adjudication=True)
                return True
            if state == CaseStatus.DECIDED:
                return True
        return True


def post_demo_traffic(
    *, integration: User, reviewers: list[User], adjudicators: list[User], points: list[InterventionPoint],
    cases: int = 2000, days: int = 30, seed: int = 7, leave_open: int = 40, leave_escalated: int = 4,
) -> TrafficReport:
    """Write ``days`` of traffic ending now: ``cases`` cases, reviewed, some with ground truth later."""
    rng = random.Random(seed)
    report = TrafficReport()
    end = timezone.now()
    writer = _Writer()
    point_of = {point.system.slug: point for point in points}
    systems_of: dict[int, set[int]] = {}
    for person in [*reviewers, *adjudicators]:
        profile = person.reviewer_profile
        systems_of[person.pk] = set(profile.qualifications.values_list("pk", flat=True))
    month = _Month(rng=rng, reviewers=reviewers, adjudicators=adjudicators, systems_of=systems_of, writer=writer)
    names = list(GENERATORS)
    weights = [GENERATORS[name][1] for name in names]

    # Received times: spread over working hours of each day; the newest ``leave_open``
    # arrive in the last minutes before now and wait (their SLAs run long past beat's first sweep).
    leave_open = min(leave_open, cases // 10)
    history_cases = max(0, cases - leave_open)
    received: list[dt.datetime] = []
    for i in range(history_cases):
        day = min(days - 1, i * days // max(history_cases, 1))
        day_start = (end - dt.timedelta(days=days - day)).replace(hour=8, minute=0, second=0, microsecond=0)
        received.append(day_start + dt.timedelta(seconds=rng.uniform(0, 9 * 3600)))
    received = [moment if moment < end - dt.timedelta(hours=2) else end - dt.timedelta(hours=2, seconds=i)
                for i, moment in enumerate(sorted(received))]
    received += sorted(end - dt.timedelta(seconds=rng.uniform(20, 240)) for _ in range(cases - history_cases))

    built: list[tuple[Case, str, str]] = []
    for n, moment in enumerate(received):
        slug = rng.choices(names, weights=weights)[0]
        body, truth = GENERATORS[slug][0](rng, n)
        case, _ = _build_case(actor=integration, data={**body, "intervention_point": point_of[slug]}, now=moment)
        case._history_date = moment  # type: ignore[attr-defined]
        built.append((case, truth, slug))

    with transaction.atomic():
        all_cases = [case for case, _, _ in built]
        Case.objects.bulk_create(all_cases, batch_size=500)
        Case.history.bulk_history_create(all_cases, batch_size=500)
        for case, _truth, slug in built:
            report.ingested += 1
            report.per_system[slug] = report.per_system.get(slug, 0) + 1
            report.auto_accepted += case.status == CaseStatus.AUTO_ACCEPTED
            for spec in _event_specs(case, integration):
                writer.event(case.received_at, spec)

        for case, truth, _ in built[:history_cases]:
            if case.routed:
                month.review(case, truth)
        # Of the newest cases, the oldest few credit cases were escalated by a reviewer minutes
        # ago and wait for an adjudicator (never the reviewer who escalated); the rest wait for rev1..rev3.
        recent_credit = [(case, truth) for case, truth, slug in built[history_cases:]
                         if case.routed and slug == "credit-scoring"
                         and case.received_at <= end - dt.timedelta(seconds=90)]  # decided before now
        for case, truth in recent_credit[:leave_escalated]:
            month.review(case, truth, leave_escalated=True)

        # Apply the changes in the order they happened: the cases' rows end in their final state,
        # with a "~" history row per change, dated and attributed as it happened.
        snapshots: list[Case] = []
        for case, changes, when, who in sorted(writer.case_changes, key=lambda item: item[2]):
            for name, value in changes.items():
                setattr(case, name, value)
            snapshot = copy.copy(case)  # the row as it stood after this change
            snapshot._history_date = when  # type: ignore[attr-defined]
            snapshot._history_user = who  # type: ignore[attr-defined]
            snapshots.append(snapshot)
        Case.history.bulk_history_create(snapshots, update=True, batch_size=500)
        changed = {case.pk: case for case, _, _, _ in writer.case_changes}
        Case.objects.bulk_update(list(changed.values()), ["status", "resolution", "final_label", "decided_at"],
                                 batch_size=500)
        Decision.objects.bulk_create(writer.decisions, batch_size=500)
        Decision.history.bulk_history_create(writer.decisions, batch_size=500)
        report.decisions = len(writer.decisions)

        # Ground truth for about 60 % of the settled credit and moderation cases, a few days later.
        truths = []
        for case, truth, slug in built:
            if slug not in WITH_GROUND_TRUTH or case.status not in (CaseStatus.DECIDED, CaseStatus.AUTO_ACCEPTED):
                continue
            if rng.random() >= 0.6:
                continue
            at = (case.decided_at or case.received_at) + dt.timedelta(hours=rng.uniform(2, 96))
            if at >= end:
                continue
            case.true_label = truth
            case.true_label_at = at
            case._history_date = at  # type: ignore[attr-defined]
            case._history_user = integration  # type: ignore[attr-defined]
            truths.append(case)
            writer.event(at, dict(
                action="case.outcome_reported", actor=integration, obj=case, system_id=case.system_id,
                case_id=case.pk, before={"true_label": None}, after={"true_label": truth},
                data={"matches_ai": case.prediction_label == truth, "matches_final": case.final_label == truth},
            ))
        Case.objects.bulk_update(truths, ["true_label", "true_label_at"], batch_size=500)
        Case.history.bulk_history_create(truths, update=True, batch_size=500)
        report.outcomes = len(truths)

        # Every audit event, in the order things happened (the chain is sealed in that order).
        specs = [spec for _, _, spec in sorted(writer.events, key=lambda item: (item[0], item[1]))]
        for spec in specs:
            obj = spec.get("obj")
            if obj is not None and spec.get("object_id") is None:
                spec["object_id"] = obj.pk
        for start in range(0, len(specs), 2000):
            bulk_record_events(specs[start:start + 2000])

    report.left_in_queue = Case.objects.filter(status__in=[CaseStatus.QUEUED, CaseStatus.ESCALATED]).count()
    report.escalated_waiting = Case.objects.filter(status=CaseStatus.ESCALATED).count()
    return report
