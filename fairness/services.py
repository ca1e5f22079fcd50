"""Writes of the fairness app: requesting, planning, counting, finishing and failing bias audits.

The flow (each step its own transaction; Celery only carries ids):

1. ``bias_audit_request`` stores a pending audit with the thresholds it will be
   judged against, records ``bias_audit.requested`` and enqueues
   ``fairness.run_bias_audit`` once the transaction commits.
2. ``bias_audit_start`` (that task) plans the chunks once (pending → running),
   the period cut into slices of received time (a UTC day each by default),
   and enqueues one ``fairness.audit_chunk`` per chunk on commit. Run again on a
   running audit, it re-enqueues only the chunks not done (a resume).
3. ``bias_audit_run_chunk`` (each chunk task) counts its slice with one SQL
   aggregate, upserts its ``BiasAuditChunk`` row and, if it was the last chunk,
   finishes the audit in the same transaction. The audit row lock serialises
   these short writes, so exactly one chunk sees "all done" and finishes it; a
   retried chunk rewrites the same counts, and once the audit is done or failed
   a late chunk changes nothing.
4. Finishing sums the chunks' counts, computes the metrics
   (``fairness.metrics``), records ``bias_audit.completed`` and, on a breach,
   files a bias incident and records ``bias_audit.flagged``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.services import record_event
from fairness.metrics import (
    compute_results,
    merge_counts,
    resolve_min_group_size,
    resolve_thresholds,
)
from fairness.models import AuditStatus, BiasAudit, BiasAuditChunk
from fairness.selectors import chunk_counts
from hitl_portal.actors import system_user
from hitl_portal.formatting import format_percent
from hitl_portal.queueing import enqueue
from reviews.models import AISystem, SystemStatus

logger = logging.getLogger(__name__)

DEFAULT_PERIOD = dt.timedelta(days=30)
MAX_PERIOD = dt.timedelta(days=3660)
MAX_CHUNKS = 400
ERROR_MAX = 2000
# An audit still open this long after it was requested lost its messages (e.g. a worker
# was killed and the broker only redelivers after its visibility timeout): resume it.
STALE_AFTER = dt.timedelta(hours=1)
# An open audit with no chunk counted for this long is resumed (beat, every few minutes):
# longer than a chunk's hard time limit (settings.CELERY_TASK_TIME_LIMIT, 6 minutes).
RESUME_AFTER = dt.timedelta(minutes=10)


def min_group_size_default() -> int:
    return int(settings.HITL_BIAS_MIN_GROUP_SIZE)


def chunk_seconds(period: dt.timedelta) -> int:
    """Length of a chunk's slice of received time: the setting (default a day), widened for long periods.

    A day of one system's cases counts in seconds; a period of years would
    make thousands of tasks, so the slice grows by whole multiples until the
    plan has at most ``MAX_CHUNKS`` chunks.
    """
    base = max(60, int(settings.HITL_BIAS_AUDIT_CHUNK_SECONDS))
    factor = max(1, math.ceil(period.total_seconds() / (base * MAX_CHUNKS)))
    return base * factor


def _history_user(actor: Any) -> Any:
    return actor if getattr(actor, "pk", None) is not None else system_user()


def _on_commit(callback: Callable[[], None]) -> None:
    transaction.on_commit(callback)


def _enqueue_run(audit_id: int) -> None:
    """Publish the audit's run; with the broker down, ``resume_stale_audits`` picks the audit up later."""
    from fairness.tasks import run_bias_audit

    enqueue(run_bias_audit, audit_id)


def _enqueue_chunks(audit_id: int, indexes: list[int]) -> None:
    from fairness.tasks import audit_chunk

    for index in indexes:
        if not enqueue(audit_chunk, audit_id, index):
            return  # the broker is down: the stale-audit resume re-enqueues every chunk not done


def _stamp(moment: dt.datetime) -> str:
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y%m%dT%H%M%S.%fZ" if moment.microsecond else "%Y%m%dT%H%M%SZ")


def chunk_key(received_from: dt.datetime, received_to: dt.datetime) -> str:
    """A chunk's stable name: its slice of received time, e.g. ``20261101T000000Z-20261102T000000Z``."""
    return f"{_stamp(received_from)}-{_stamp(received_to)}"


Slice = tuple[dt.datetime, dt.datetime]


def plan_slices(period_from: dt.datetime, period_to: dt.datetime, *, seconds: int) -> list[Slice]:
    """Cut ``[period_from, period_to)`` at UTC multiples of ``seconds`` (midnights for a day).

    Aligned cuts give the same slices to every audit of a day, and planning
    reads no data at all: each slice is one range of the (system, received_at)
    index, so a chunk reads only its own system's cases.
    """
    step = dt.timedelta(seconds=seconds)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    slices = []
    start = period_from
    while start < period_to:
        boundary = epoch + step * ((start - epoch) // step + 1)
        end = min(boundary, period_to)
        slices.append((start, end))
        start = end
    return slices


def _plan_slice(audit: BiasAudit, index: int) -> Slice:
    low, high = audit.plan[index]
    return dt.datetime.fromisoformat(low), dt.datetime.fromisoformat(high)


@transaction.atomic
def bias_audit_request(
    *,
    actor: Any,
    system: AISystem,
    attribute: str,
    period_from: dt.datetime | None = None,
    period_to: dt.datetime | None = None,
) -> BiasAudit:
    """Request an audit of ``system`` by ``attribute`` over ``[period_from, period_to)`` (default: last 30 days).

    The attribute must be one of the system's protected attributes and the system
    needs a positive label (selection rates are rates of it). Audited as
    ``bias_audit.requested``; the work is enqueued only once this commits.
    """
    now = timezone.now()
    period_to = period_to or now
    period_from = period_from or period_to - DEFAULT_PERIOD
    errors: dict[str, list[str]] = {}
    attributes = [a for a in (system.protected_attributes or []) if isinstance(a, str)]
    if attribute not in attributes:
        listed = ", ".join(attributes) if attributes else "none are declared"
        errors["attribute"] = [f"Must be one of the system's protected attributes ({listed})."]
    if not system.positive_label:
        errors["system"] = [f"AI system {system.slug!r} has no positive_label: set it before auditing selection rates."]
    if period_from >= period_to:
        errors["to"] = ["Must be later than from."]
    elif period_to - period_from > MAX_PERIOD:
        errors["from"] = [f"The period may span at most {MAX_PERIOD.days} days."]
    if errors:
        raise ValidationError(errors)
    thresholds = resolve_thresholds(system.bias_thresholds)
    audit = BiasAudit(
        system=system,
        attribute=attribute,
        period_from=period_from,
        period_to=period_to,
        status=AuditStatus.PENDING,
        requested_by=actor if getattr(actor, "pk", None) is not None else None,
        positive_label=system.positive_label,
        thresholds=thresholds,
        min_group_size=resolve_min_group_size(system.bias_thresholds, min_group_size_default()),
        chunk_seconds=chunk_seconds(period_to - period_from),
        requested_at=now,
    )
    audit.full_clean()
    audit._history_user = _history_user(actor)  # type: ignore[attr-defined]
    audit.save()
    record_event(
        "bias_audit.requested",
        actor=actor,
        obj=audit,
        system_id=system.pk,
        data={
            "system": system.slug,
            "attribute": attribute,
            "from": period_from,
            "to": period_to,
            "positive_label": audit.positive_label,
            "thresholds": thresholds,
            "min_group_size": audit.min_group_size,
        },
        after={"status": audit.status},
    )
    _on_commit(partial(_enqueue_run, audit.pk))
    return audit


@transaction.atomic
def bias_audit_start(*, audit_id: int) -> list[int]:
    """Plan a pending audit into chunks and enqueue them; on a running one, re-enqueue the chunks not done.

    Returns the indexes (in the plan) of the chunks enqueued: none for a done
    or failed audit, whose work is over. The plan is made once and stored, so a
    resumed audit counts exactly the slices it started with.
    """
    audit = BiasAudit.objects.select_for_update().select_related("system").filter(pk=audit_id).first()
    if audit is None or audit.status in (AuditStatus.DONE, AuditStatus.FAILED):
        return []
    if audit.status == AuditStatus.PENDING:
        slices = plan_slices(audit.period_from, audit.period_to, seconds=audit.chunk_seconds)
        audit.plan = [[low.isoformat(), high.isoformat()] for low, high in slices]
        audit.chunks_total = len(slices)
        audit.status = AuditStatus.RUNNING
        audit.started_at = timezone.now()
        audit._history_user = system_user()  # type: ignore[attr-defined]
        audit.save(update_fields=["plan", "chunks_total", "status", "started_at", "updated_at"])
        to_run = list(range(len(slices)))
    else:
        done = set(audit.chunks.values_list("key", flat=True))
        to_run = [i for i in range(len(audit.plan)) if chunk_key(*_plan_slice(audit, i)) not in done]
        if not to_run:
            # Every chunk is counted but nobody finished it (a crash between the two): finish now.
            _finish(audit)
            return []
    _on_commit(partial(_enqueue_chunks, audit.pk, list(to_run)))
    return to_run


def bias_audit_run_chunk(*, audit_id: int, index: int) -> BiasAuditChunk | None:
    """Count chunk ``index`` of the plan, upsert its row and, when it is the last one, finish the audit.

    The aggregate runs before any lock is taken (it is the long part); the
    write then takes the audit row lock for a moment. Nothing happens for an
    audit that is not running (done, failed or deleted): a late or repeated
    chunk cannot change a finished audit.
    """
    audit = BiasAudit.objects.filter(pk=audit_id).first()
    if audit is None or audit.status != AuditStatus.RUNNING:
        return None
    if not 0 <= index < len(audit.plan):
        raise ValueError(f"bias audit {audit_id} has no chunk {index} (its plan has {len(audit.plan)})")
    received_from, received_to = _plan_slice(audit, index)
    key = chunk_key(received_from, received_to)
    counts = chunk_counts(audit, received_from=received_from, received_to=received_to)
    with transaction.atomic():
        audit = BiasAudit.objects.select_for_update().select_related("system").get(pk=audit_id)
        if audit.status != AuditStatus.RUNNING:
            return None
        chunk = BiasAuditChunk(
            audit=audit,
            key=key,
            received_from=received_from,
            received_to=received_to,
            counts=counts,
            cases=sum(row[-1] for row in counts),
            done_at=timezone.now(),
        )
        # The upsert: a retried chunk rewrites its own row (same key) instead of adding one;
        # ``done_at`` keeps the first completion.
        BiasAuditChunk.objects.bulk_create(
            [chunk],
            update_conflicts=True,
            unique_fields=["audit", "key"],
            update_fields=["received_from", "received_to", "counts", "cases"],
        )
        if audit.chunks.count() >= audit.chunks_total:
            _finish(audit)
    return BiasAuditChunk.objects.get(audit_id=audit_id, key=key)


def _finish(audit: BiasAudit) -> BiasAudit:
    """Sum the chunks, compute the metrics, store them; file an incident on a breach (caller holds the lock)."""
    chunks = list(audit.chunks.order_by("received_from").values_list("counts", flat=True))
    rows = merge_counts(chunks)
    results = compute_results(
        rows,
        positive_label=audit.positive_label,
        thresholds=audit.thresholds,
        min_group_size=audit.min_group_size,
    )
    now = timezone.now()
    audit.results = results
    audit.cases_counted = results["cases"]
    audit.flagged = bool(results["breaches"])
    audit.status = AuditStatus.DONE
    audit.finished_at = now
    audit._history_user = system_user()  # type: ignore[attr-defined]
    audit.save(update_fields=["results", "cases_counted", "flagged", "status", "finished_at", "updated_at"])
    summary = {
        "system": audit.system.slug,
        "attribute": audit.attribute,
        "cases": results["cases"],
        "chunks": audit.chunks_total,
        "groups": len(results["groups"]),
        "groups_compared": results["metrics"]["final"]["groups_compared"],
        "metrics": {
            kind: {key: block[key] for key in ("disparate_impact_ratio", "demographic_parity_difference",
                                               "equalized_odds_difference", "four_fifths_rule")}
            for kind, block in results["metrics"].items()
        },
        "flagged": audit.flagged,
    }
    record_event("bias_audit.completed", actor=None, obj=audit, system_id=audit.system_id, data=summary,
                 before={"status": AuditStatus.RUNNING}, after={"status": AuditStatus.DONE})
    if audit.flagged:
        _file_incident(audit, now=now)
    return audit


def _file_incident(audit: BiasAudit, *, now: dt.datetime) -> None:
    """A breach files a bias incident in the register and records ``bias_audit.flagged``."""
    from incidents.services import incident_create

    breaches = audit.results["breaches"]
    incident = incident_create(
        actor=None,
        system=audit.system,
        kind="bias",
        aware_at=now,
        description=incident_description(audit),
        source="bias_audit",
        source_ref=str(audit.pk),
        title=f"Bias audit #{audit.pk}: {audit.system.slug} by {audit.attribute}",
    )
    audit.incident = incident
    audit._history_user = system_user()  # type: ignore[attr-defined]
    audit.save(update_fields=["incident", "updated_at"])
    record_event(
        "bias_audit.flagged",
        actor=None,
        obj=audit,
        system_id=audit.system_id,
        data={"attribute": audit.attribute, "breaches": breaches, "incident": incident.pk},
        after={"flagged": True, "incident": incident.pk},
    )


def incident_description(audit: BiasAudit) -> str:
    """What the register shows: which metric breached which threshold, for which labels and groups."""
    results = audit.results
    lines = [
        f"Bias audit #{audit.pk} of {audit.system.name} ({audit.system.slug}) by {audit.attribute!r} over "
        f"{audit.period_from:%Y-%m-%d %H:%M} – {audit.period_to:%Y-%m-%d %H:%M} UTC "
        f"({results['cases']} cases, minimum group size {audit.min_group_size}) breached its thresholds:",
    ]
    names = {"ai": "AI labels", "final": "final (human-validated) labels"}
    for breach in results["breaches"]:
        block = results["metrics"][breach["labels"]]
        comparison = "below" if breach["direction"] == "below" else "above"
        line = (f"- {breach['metric'].replace('_', ' ')} of the {names[breach['labels']]}: "
                f"{breach['value']:.3f}, {comparison} the threshold {breach['threshold']:.3f}")
        if breach["metric"] != "equalized_odds_difference" and block.get("min_group") is not None:
            line += (f" (lowest selection rate: {block['min_group']!r} {format_percent(block['selection_rate_min'])}, "
                     f"highest: {block['max_group']!r} {format_percent(block['selection_rate_max'])})")
        lines.append(line + ".")
    lines.append("Investigate the groups' figures on the audit page; no individual case data is copied here.")
    return "\n".join(lines)


@transaction.atomic
def bias_audit_fail(*, audit_id: int, error: str) -> BiasAudit | None:
    """Mark an open audit failed with the error (a chunk gave up); a done audit is left alone."""
    audit = BiasAudit.objects.select_for_update().filter(pk=audit_id).first()
    if audit is None or audit.status not in (AuditStatus.PENDING, AuditStatus.RUNNING):
        return None
    before = audit.status
    audit.status = AuditStatus.FAILED
    audit.error = error[:ERROR_MAX]
    audit.finished_at = timezone.now()
    audit._history_user = system_user()  # type: ignore[attr-defined]
    audit.save(update_fields=["status", "error", "finished_at", "updated_at"])
    record_event(
        "bias_audit.failed",
        actor=None,
        obj=audit,
        system_id=audit.system_id,
        data={"attribute": audit.attribute, "error_sha256": hashlib.sha256(error.encode()).hexdigest()},
        before={"status": before},
        after={"status": AuditStatus.FAILED},
        reason=audit.error[:500],
    )
    return audit


def resume_stale_audits(*, now: dt.datetime | None = None) -> list[int]:
    """Re-run every open audit that made no progress for ``RESUME_AFTER``; returns their ids.

    A worker killed mid-chunk leaves its audit "running" with the chunk's message
    unacknowledged (Redis hands it out again only after the visibility timeout), and
    a message published while the broker was down never arrives. Progress is the
    last chunk counted (else the audit's last change); past ``RESUME_AFTER``, which is
    longer than a chunk's hard time limit, nothing is still working on it.
    ``bias_audit_start`` then enqueues only the chunks not done (idempotent upserts).
    """
    now = now or timezone.now()
    stale = (
        BiasAudit.objects.filter(status__in=[AuditStatus.PENDING, AuditStatus.RUNNING])
        .annotate(progress=Coalesce(Max("chunks__done_at"), "updated_at"))
        .filter(progress__lt=now - RESUME_AFTER)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    resumed = list(stale)
    for audit_id in resumed:
        logger.warning("bias audit %s made no progress since %s ago: resuming it", audit_id, RESUME_AFTER)
        _enqueue_run(audit_id)
    return resumed


def schedule_nightly_audits(*, now: dt.datetime | None = None) -> list[BiasAudit]:
    """Request an audit of every active system × protected attribute over the last 30 days.

    Skipped: systems without a positive label, and pairs with an audit still
    open (a slow audit is not stacked up night after night). Audits left open
    for over an hour are resumed (their chunk messages were lost).
    """
    now = now or timezone.now()
    for stale_id in BiasAudit.objects.filter(
        status__in=[AuditStatus.PENDING, AuditStatus.RUNNING], requested_at__lt=now - STALE_AFTER
    ).values_list("pk", flat=True):
        _enqueue_run(stale_id)
    open_pairs = set(
        BiasAudit.objects.filter(status__in=[AuditStatus.PENDING, AuditStatus.RUNNING])
        .values_list("system_id", "attribute")
    )
    requested: list[BiasAudit] = []
    for system in AISystem.objects.filter(status=SystemStatus.ACTIVE).order_by("slug"):
        if not system.positive_label:
            logger.info("nightly bias audits: %s has no positive_label, skipped", system.slug)
            continue
        for attribute in dict.fromkeys(a for a in (system.protected_attributes or []) if isinstance(a, str)):
            if (system.pk, attribute) in open_pairs:
                continue
            requested.append(bias_audit_request(
                actor=None, system=system, attribute=attribute, period_from=now - DEFAULT_PERIOD, period_to=now
            ))
    return requested
