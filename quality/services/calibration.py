"""Calibration sessions: the same gold items for a group of reviewers, to measure their agreement."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.services import record_event
from quality.models import CalibrationSession, GoldItem
from quality.services.gold import calibration_copies_create
from reviews.models import ReviewerProfile, ReviewerStatus

MAX_ITEMS = 200
MAX_REVIEWERS = 50


@transaction.atomic
def calibration_session_create(
    *, actor: Any, name: str, items: list[GoldItem], reviewers: list[User], description: str = ""
) -> CalibrationSession:
    """Create a session and give every reviewer a copy of every item (served through their queue).

    Refused (400 naming the field) without a name, with fewer than two reviewers or
    no item, with a retired item, or with a reviewer who is not an active reviewer
    qualified for every item's system (they could never claim the copy).
    """
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["This field is required."]})
    items = list({item.pk: item for item in items}.values())
    reviewers = list({user.pk: user for user in reviewers}.values())
    if not items:
        raise ValidationError({"items": ["Pick at least one gold item."]})
    if len(items) > MAX_ITEMS:
        raise ValidationError({"items": [f"At most {MAX_ITEMS} items per session."]})
    if len(reviewers) < 2:
        raise ValidationError({"reviewers": ["Pick at least two reviewers: agreement needs two raters."]})
    if len(reviewers) > MAX_REVIEWERS:
        raise ValidationError({"reviewers": [f"At most {MAX_REVIEWERS} reviewers per session."]})
    items = list(
        GoldItem.objects.filter(pk__in=[i.pk for i in items])
        .select_related("case__system", "case__intervention_point__system")
        .order_by("pk")
    )
    retired = [str(item.pk) for item in items if not item.active]
    if retired:
        raise ValidationError({"items": [f"Retired gold item(s): {', '.join(retired)}."]})
    system_ids = {item.case.system_id for item in items}
    profiles = {
        p.user_id: p
        for p in ReviewerProfile.objects.filter(user_id__in=[u.pk for u in reviewers]).prefetch_related(
            "qualifications"
        )
    }
    problems = []
    for user in sorted(reviewers, key=lambda u: u.username):
        profile = profiles.get(user.pk)
        if profile is None:
            problems.append(f"{user.username} is not a reviewer")
        elif profile.status != ReviewerStatus.ACTIVE or not user.is_active:
            problems.append(f"{user.username} is suspended")
        elif not system_ids <= {s.pk for s in profile.qualifications.all()}:
            problems.append(f"{user.username} is not qualified for every item's system")
    if problems:
        raise ValidationError({"reviewers": problems})
    session = CalibrationSession(name=name[:200], description=description or "",
                                 created_by=actor if getattr(actor, "pk", None) else None)
    session._history_user = actor  # type: ignore[attr-defined]
    session.save()
    session.items.set(items)
    session.reviewers.set(reviewers)
    calibration_copies_create(session=session, items=items, reviewers=reviewers, actor=actor)
    record_event(
        "calibration.created", actor=actor, obj=session,
        data={"items": [item.pk for item in items], "reviewers": sorted(u.username for u in reviewers),
              "copies": len(items) * len(reviewers)},
    )
    return session
