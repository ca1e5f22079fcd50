"""Test data for the quality tests: systems, points, reviewers, gold items, decided cases.

Systems, points, users and gold items go through their services, as in production;
multi-review cases are decided through the queue and decision services.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from quality.models import GoldItem
from quality.services.gold import gold_item_create
from reviews.models import Case, CaseStatus, Decision, InterventionPoint
from reviews.services.decisions import decision_record
from reviews.services.queue import claim_next
from tests.reviews.queue_helpers import (
    client_for,
    make_case,
    make_point,
    make_reviewer,
    make_system,
    make_user,
)

__all__ = [
    "answer_gold",
    "client_for",
    "decide",
    "decided_multi_case",
    "example_rows",
    "gold_item",
    "ground_truth",
    "make_case",
    "make_point",
    "make_reviewer",
    "make_system",
    "make_user",
    "page_client",
    "set_gold_dice",
    "write_decisions",
]

GOLD_INPUT = {"amount": 25000, "text": "loan application"}


def gold_item(point: InterventionPoint, *, gold_label: str = "reject", label: str | None = "approve",
              confidence: float | None = 0.6, actor: Any = None, **kwargs: Any) -> GoldItem:
    """A gold item at ``point`` (routed by its confidence rule by default)."""
    prediction = None if label is None else {"label": label, "confidence": confidence, "model_version": "v3.1"}
    return gold_item_create(actor=actor, point=point, input=dict(kwargs.pop("input", GOLD_INPUT)),
                            prediction=prediction, gold_label=gold_label, **kwargs)


def decide(reviewer: User, case: Case, label: str, *, rationale: str = "checked") -> Case:
    """Decide a case the reviewer holds, with ``label`` (approve when it is the AI's, else override)."""
    case.refresh_from_db()
    if case.blind or case.prediction_label is None:
        return decision_record(reviewer=reviewer, case=case, outcome=None, label=label, rationale=rationale)
    if label == case.prediction_label:
        return decision_record(reviewer=reviewer, case=case, outcome="approve", label=None, rationale="")
    return decision_record(reviewer=reviewer, case=case, outcome="override", label=label, rationale=rationale)


def decided_multi_case(point: InterventionPoint, reviewers: Iterable[User], labels: Iterable[str],
                       **case_kwargs: Any) -> Case:
    """A multi-review case decided (or escalated) by the reviewers with their labels, through the services."""
    case = make_case(point, **case_kwargs)
    for reviewer, label in zip(reviewers, labels, strict=True):
        claimed = claim_next(reviewer=reviewer, point=point)
        assert claimed is not None and claimed.pk == case.pk, (claimed, case)
        decide(reviewer, claimed, label)
    return case


def write_decisions(point: InterventionPoint, ratings: list[dict[User, str | None]], *,
                    ai_shown: bool = True, time_spent_ms: int = 10_000) -> list[Case]:
    """Decided multi-review cases written directly (fast; for statistics tests only)."""
    cases = []
    now = timezone.now()
    for unit in ratings:
        data = {"n": len(cases)}
        case = Case.objects.create(
            system=point.system, intervention_point=point, external_id=f"w-{point.pk}-{len(cases)}-{now.timestamp()}",
            input=data, input_hash=hashlib.sha256(json.dumps(data).encode()).hexdigest(),
            prediction_label="approve", prediction_confidence=0.5, status=CaseStatus.DECIDED, resolution="reviewed",
            routed=True, routing_reasons=["confidence_below"], reviewers_required=len(unit),
            received_at=now - timedelta(hours=1), decided_at=now,
        )
        for reviewer, label in unit.items():
            Decision.objects.create(
                case=case, reviewer=reviewer, round=1, outcome="escalate" if label is None else (
                    "approve" if label == "approve" else "override"),
                label=label, ai_shown=ai_shown, time_spent_ms=time_spent_ms,
                system_id=case.system_id, prediction_label=case.prediction_label,
            )
        cases.append(case)
    return cases


def set_gold_dice(monkeypatch: Any, value: float) -> None:
    """Fix the gold mixing dice (``random.random()`` in the gold service) for a test."""

    class Dice:
        @staticmethod
        def random() -> float:
            return value

    monkeypatch.setattr("quality.services.gold.random", Dice)


def page_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def answer_gold(monkeypatch: Any, reviewer: User, point: InterventionPoint, labels: Iterable[str],
                gold_label: str = "reject") -> list[Case]:
    """Serve the reviewer one new gold copy per label (through ``claim_next``) and answer it with that label.

    The point needs ``gold_rate`` > 0 and one real queued case (gold is mixed only into real work).
    """
    set_gold_dice(monkeypatch, 0.0)
    copies = []
    for label in labels:
        gold_item(point, gold_label=gold_label)
        copy = claim_next(reviewer=reviewer, point=point)
        assert copy is not None and copy.is_gold, copy
        copies.append(decide(reviewer, copy, label))
    set_gold_dice(monkeypatch, 0.999999)
    return copies


def ground_truth(point: InterventionPoint, rows: list[tuple[float, bool]], *, gold: bool = False) -> None:
    """Cases with ground truth: ``(confidence, AI label correct)`` each."""
    now = timezone.now()
    start = Case.objects.count()
    Case.objects.bulk_create([
        Case(system=point.system, intervention_point=point, external_id=f"gt-{start + i}", input={"i": i},
             input_hash=hashlib.sha256(str(i).encode()).hexdigest(), prediction_label="approve",
             prediction_confidence=confidence, status=CaseStatus.AUTO_ACCEPTED, resolution="auto_accepted",
             final_label="approve", decided_at=now, true_label="approve" if correct else "reject", is_gold=gold,
             gold_label="approve" if gold else None)
        for i, (confidence, correct) in enumerate(rows)
    ])


def example_rows() -> list[tuple[float, bool]]:
    # 100 cases; wrong AI labels concentrate at low confidence, one confident mistake at 0.905.
    rows = [((i + 0.5) / 100, not (i < 60 and i % 2 == 0)) for i in range(100)]
    rows[90] = (0.905, False)
    return rows
