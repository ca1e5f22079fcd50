"""Daily reviewer quality snapshots: what a reviewer is shown of their own gold figures."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from quality.models import ReviewerQualitySnapshot
from quality.selectors import automation_bias, default_period, gold_figures, reviewer_agreement
from reviews.models import ReviewerProfile

SNAPSHOT_CHUNK = 200


def snapshot_reviewer_quality(*, now: dt.datetime | None = None) -> int:
    """Store today's figures of every reviewer (upsert: running it twice a day changes nothing new).

    Not audited: a snapshot is a derived figure, recomputable from the decisions,
    not a change of anyone's state. Returns how many snapshots were written.
    """
    now = now or timezone.now()
    day = timezone.localdate(now)
    since, until = default_period(until=now)
    written = 0
    last_id = 0
    while True:
        batch = list(ReviewerProfile.objects.filter(pk__gt=last_id).order_by("pk")[:SNAPSHOT_CHUNK])
        if not batch:
            return written
        with transaction.atomic():
            for profile in batch:
                gold = gold_figures(reviewer_id=profile.user_id, until=now)
                agreement = reviewer_agreement(reviewer_id=profile.user_id, since=since, until=until)
                bias = automation_bias(reviewer_id=profile.user_id, since=since, until=until)["overall"]
                ReviewerQualitySnapshot.objects.update_or_create(
                    reviewer_id=profile.user_id, day=day,
                    defaults={
                        "gold_answered": gold["gold_answered"], "gold_correct": gold["gold_correct"],
                        "gold_accuracy": gold["gold_accuracy"], "agreement": agreement["agreement"],
                        "figures": {"gold_window": gold["gold_window"], "agreement_pairs": agreement["pairs"],
                                    "automation_bias_gap": bias["automation_bias_gap"],
                                    "approval_rate": bias["approval_rate"],
                                    "rubber_stamp_flags": bias["rubber_stamp_flags"]},
                        "computed_at": now,
                    },
                )
                written += 1
        last_id = batch[-1].pk
