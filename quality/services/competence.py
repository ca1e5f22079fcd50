"""The competence lifecycle (Art. 4 AI literacy, Art. 26(2) competence, training and authority).

A reviewer is suspended automatically, through ``reviews.services.people.reviewer_update``
(audited as ``reviewer.suspended`` with the reason), when

- a required training (``HITL_REQUIRED_TRAINING_KINDS``, default AI literacy) has
  expired: the reviewer has records of that kind and none is valid today (a record
  without ``expires_at`` never expires). A reviewer with no record of a kind is not
  suspended for it (the register may be filled in later); the quality page shows it;
- their gold accuracy over their last N gold answers (``HITL_COMPETENCE_WINDOW``,
  20) is below ``HITL_COMPETENCE_MIN_ACCURACY`` (0.8). Only a full window counts,
  and after a reinstatement only answers given since then: a compliance officer's
  reinstatement is not undone at the next claim by the very answers that caused it.

Checked by the beat task ``quality.enforce_competence`` and at every claim; a pass is kept on
the profile (``competence_verdict``) until the reviewer's next gold answer, so most claims read
a flag instead of the gold answers.
Reinstatement is a compliance officer's act (``PATCH /api/v1/reviewers/{username}/``
or the reviewer quality page), audited as ``reviewer.reinstated``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from hitl_portal.actors import system_user
from quality.selectors import gold_answers
from quality.services import config
from reviews.models import ReviewerProfile, ReviewerStatus
from reviews.services.errors import ReviewerNotAllowed
from reviews.services.people import reviewer_update

ENFORCE_CHUNK = 200


@dataclass(frozen=True)
class CompetenceFinding:
    """Why a reviewer may not review any more."""

    code: str  # "training_expired" | "gold_accuracy"
    reason: str


def _gold_since(profile: ReviewerProfile) -> dt.datetime | None:
    """Answers before a reinstatement no longer count against the reviewer."""
    if profile.status == ReviewerStatus.ACTIVE and profile.status_changed_at is not None:
        return profile.status_changed_at
    return None


def competence_findings(profile: ReviewerProfile, *, now: dt.datetime | None = None) -> list[CompetenceFinding]:
    """What stands against the reviewer now (empty when they may review)."""
    now = now or timezone.now()
    findings: list[CompetenceFinding] = []
    # Missing or expired training is not a suspension: it gates the system's queue at claim time
    # (403 training_required, reviews.services.queue.reviewer_scope) until the record is renewed.
    window = config.competence_window()
    minimum = config.competence_min_accuracy()
    answers = gold_answers(reviewer_id=profile.user_id, limit=window, since=_gold_since(profile))
    if window > 0 and len(answers) >= window:
        correct = sum(1 for answer in answers if answer.correct)
        accuracy = correct / len(answers)
        if accuracy < minimum:
            findings.append(CompetenceFinding(
                "gold_accuracy",
                f"Gold accuracy {accuracy:.0%} over the last {len(answers)} gold answers is below {minimum:.0%}.",
            ))
    return findings


def _suspend(profile: ReviewerProfile, findings: list[CompetenceFinding], *, actor: Any) -> ReviewerProfile:
    reason = "Automatic suspension: " + " ".join(f.reason for f in findings)
    return reviewer_update(actor=actor, profile=profile, status=ReviewerStatus.SUSPENDED, reason=reason)


def verdict_key() -> str:
    """The rules a stored verdict was reached under: a change of window or threshold voids it."""
    return f"ok:{config.competence_window()}:{config.competence_min_accuracy()}"


def store_verdict(profile: ReviewerProfile, key: str) -> None:
    """Keep "passed" on the profile, unless it changed since it was read (a gold answer recorded
    meanwhile clears the verdict and moves ``updated_at``: then nothing is stored)."""
    ReviewerProfile.objects.filter(pk=profile.pk, updated_at=profile.updated_at).update(competence_verdict=key)
    profile.competence_verdict = key


def enforce_at_claim(*, profile: ReviewerProfile) -> None:
    """Suspend an active reviewer who no longer meets the competence rules, then refuse the claim (403).

    The suspension commits on its own (it is the outcome of the check, not a side
    effect of a claim that failed), and the 403 says why.
    """
    if profile.status != ReviewerStatus.ACTIVE:
        return
    key = verdict_key()
    if profile.competence_verdict == key:
        return  # passed under these rules, and no gold answer since (it clears the verdict)
    findings = competence_findings(profile)
    if not findings:
        store_verdict(profile, key)
        return
    with transaction.atomic():
        profile = _suspend(profile, findings, actor=system_user())
    raise ReviewerNotAllowed(
        f"Your reviewer account is suspended. Reason: {profile.status_reason}", code="reviewer_suspended"
    )


def enforce_competence(*, now: dt.datetime | None = None) -> int:
    """Suspend every active reviewer who no longer meets the competence rules; returns how many.

    Idempotent (a suspended reviewer is not looked at again), each suspension its
    own short transaction, acting as the system.
    """
    now = now or timezone.now()
    actor = system_user()
    suspended = 0
    last_id = 0
    while True:
        batch = list(
            ReviewerProfile.objects.filter(status=ReviewerStatus.ACTIVE, pk__gt=last_id).order_by("pk")[:ENFORCE_CHUNK]
        )
        if not batch:
            return suspended
        key = verdict_key()
        for profile in batch:
            findings = competence_findings(profile, now=now)
            if not findings and profile.competence_verdict != key:
                store_verdict(profile, key)
            if findings:
                with transaction.atomic():
                    _suspend(profile, findings, actor=actor)
                suspended += 1
        last_id = batch[-1].pk
