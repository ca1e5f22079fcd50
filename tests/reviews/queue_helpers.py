"""Test data for the queue, decision and SLA tests.

Systems and intervention points go through their services, as in production.
Routed cases are written directly in the state ingestion leaves them in (queued,
routed, SLA deadline from the point), so these tests depend only on the services
they exercise; users are created through ``reviews.services.people``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from reviews.models import AISystem, Case, CaseStatus, InterventionPoint, ReviewerProfile
from reviews.services.people import user_create
from reviews.services.systems import intervention_point_create, system_create
from tests.conftest import grant_ai_literacy
from tests.token_helpers import new_token_key

LABELS = ["approve", "reject", "refer"]

_counter = {"n": 0}


def _next(prefix: str) -> str:
    _counter["n"] += 1
    return f"{prefix}{_counter['n']}"


def make_system(slug: str = "credit-scoring", **fields: Any) -> AISystem:
    existing = AISystem.objects.filter(slug=slug).first()
    if existing is not None:
        return existing
    fields.setdefault("declared_tier", "high")
    fields.setdefault("annex_iii_area", "5b")
    return system_create(actor=None, slug=slug, name=slug.replace("-", " ").title(),
                         labels=fields.pop("labels", list(LABELS)), **fields)


def make_point(system: AISystem | None = None, slug: str = "loan-review", **rules: Any) -> InterventionPoint:
    """An intervention point (validation stage unless told) on ``system`` (credit scoring by default)."""
    system = system or make_system()
    rules.setdefault("stage", "validation")
    rules.setdefault("confidence_below", 0.8)
    rules.setdefault("guidelines", "Check the income against the documents.")
    return intervention_point_create(actor=None, system=system, slug=slug, name=slug.title(), **rules)


def case_fields(
    point: InterventionPoint,
    *,
    external_id: str | None = None,
    label: str | None = "approve",
    confidence: float | None = 0.6,
    blind: bool = False,
    received_at: datetime | None = None,
    sla_deadline: datetime | str | None = "auto",
    callback_url: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """The fields of a routed, queued case as ingestion writes them."""
    data = {"amount": 25000, "text": "loan application"}
    received = received_at or timezone.now()
    if sla_deadline == "auto":
        sla_deadline = received + timedelta(seconds=point.sla_seconds) if point.sla_seconds else None
    fields: dict[str, Any] = dict(
        system=point.system,
        intervention_point=point,
        external_id=external_id or _next("ext-"),
        input=data,
        input_hash=hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest(),
        prediction_label=label,
        prediction_confidence=confidence if label is not None else None,
        model_version="v3.1" if label is not None else "",
        subject={"gender": "f"},
        callback_url=callback_url,
        status=CaseStatus.QUEUED,
        routed=True,
        routing_reasons=["confidence_below"] if label is not None else ["labeling"],
        rules_version=point.version,
        reviewers_required=point.reviewers_required,
        blind=blind,
        received_at=received,
        sla_deadline=sla_deadline,
    )
    fields.update(extra)
    return fields


def make_case(point: InterventionPoint, **kwargs: Any) -> Case:
    return Case.objects.create(**case_fields(point, **kwargs))


def make_cases(point: InterventionPoint, count: int, **kwargs: Any) -> list[Case]:
    """Many queued cases at once (received one millisecond apart, in id order)."""
    start = timezone.now() - timedelta(hours=1)
    rows = [
        Case(**case_fields(point, received_at=start + timedelta(milliseconds=i), **kwargs)) for i in range(count)
    ]
    return Case.objects.bulk_create(rows)


def make_user(
    role: str, username: str | None = None, *, systems: list[str] | None = None, trained: bool = True
) -> User:
    """A user with one role (``admin`` = superuser), created through the people service.

    Reviewers hold the AI-literacy training systems require by default unless ``trained=False``.
    """
    name = username or _next(role)
    if role == "admin":
        return User.objects.create_superuser(username=name, password="pass-word-123", email=f"{name}@ex.org")
    user, _ = user_create(actor=None, username=name, password="pass-word-123", role=role,
                          systems=systems or [], validate=False)
    if role == "reviewer" and trained:
        grant_ai_literacy(user)
    return user


def make_reviewer(
    username: str | None = None, *, systems: list[AISystem] | None = None, adjudicator: bool = False,
    suspended: bool = False, trained: bool = True,
) -> User:
    """An active reviewer qualified for ``systems`` (the credit-scoring system by default)."""
    slugs = [s.slug for s in (systems if systems is not None else [make_system()])]
    user = make_user("reviewer", username, systems=slugs, trained=trained)
    if adjudicator or suspended:
        ReviewerProfile.objects.filter(user=user).update(
            adjudicator=adjudicator, status="suspended" if suspended else "active"
        )
    return user


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {new_token_key(user)}")
    client.user = user  # type: ignore[attr-defined]
    return client


def expire_claim(case: Case) -> None:
    """Age a live claim past its lease (as time passing would)."""
    Case.objects.filter(pk=case.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
