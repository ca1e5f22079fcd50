"""Retention and lawful purging: keep logs at least six months, then erase personal data.

Art. 19 and Art. 26(6) require automatically generated logs of a high-risk system
to be kept at least six months; data protection requires personal data not to be
kept longer than needed. Each system therefore has a ``retention_days`` (never
below ``MIN_RETENTION_DAYS``, enforced by the database and here), and the nightly
``audit.purge_expired`` task erases what is older, unless a legal hold applies.

A purge never destroys evidence silently. It **first exports** what it removes
to ``MEDIA_ROOT/audit-exports/`` (a ``hitl-audit-export/1`` file: the stretch of
the chain holding the purged payloads, plus the erased case data and history
rows), records the file's SHA-256 in a ``PurgeRun`` and in the ``audit.purged``
event, and **then** erases, in the same transaction:

- the cases' ``input`` and ``subject`` (set to ``{}``, ``payload_purged_at`` set);
- the history rows of those cases and of their decisions;
- the payloads of their audit events (``payload = NULL``, the one change the
  append-only trigger allows): each payload's SHA-256 stays in the envelope, so the
  chain still verifies.

Only closed cases (decided or auto-accepted before the cutoff) are purged; one run
takes at most ``max_cases`` of them, oldest first, so memory and the transaction
stay bounded; the task repeats runs until nothing is left.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from audit.export import build_manifest, iter_event_lines, json_line, write_lines
from audit.models import AuditEvent
from audit.selectors import ExportRange, export_range
from audit.services import record_event
from records.models import PurgeRun
from records.selectors import active_legal_holds
from reviews.models import MIN_RETENTION_DAYS, AISystem, Case, CaseStatus, Decision
from reviews.services.systems import system_update

logger = logging.getLogger(__name__)

EXPORT_SUBDIR = "audit-exports"
ID_CHUNK = 500  # ids per IN (...) list: well inside every database's parameter limit
MAX_CASES_PER_RUN = 10_000
CASE_ARCHIVE_FIELDS = (
    "id", "external_id", "input_hash", "input", "subject", "received_at", "decided_at", "status", "resolution",
)


class PurgeRefused(Exception):
    """A purge that may not run: inside the retention period, or under a legal hold.

    ``code`` is ``retention_floor``, ``retention_period`` or ``legal_hold``; ``field``
    names the offending input for API error bodies.
    """

    def __init__(self, message: str, *, code: str, field: str = "cutoff") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


def retention_set(*, actor: Any, system: AISystem, days: Any, reason: str = "") -> AISystem:
    """Change a system's retention period; below six months (183 days) is refused with a 400 naming the field."""
    if isinstance(days, bool) or not isinstance(days, int):
        raise ValidationError({"retention_days": ["must be a whole number of days"]})
    if days < MIN_RETENTION_DAYS:
        raise ValidationError(
            {
                "retention_days": [
                    f"must be at least {MIN_RETENTION_DAYS} days: logs of a high-risk AI system are kept at least "
                    "six months (EU AI Act Art. 19, Art. 26(6))"
                ]
            }
        )
    return system_update(actor=actor, system=system, changes={"retention_days": days}, reason=reason)


def retention_cutoff(system: AISystem, *, now: dt.datetime | None = None) -> dt.datetime:
    """The earliest cutoff the system's retention allows: records older than this may be purged."""
    return (now or timezone.now()) - dt.timedelta(days=system.retention_days)


def purge_check(*, system: AISystem, cutoff: dt.datetime, now: dt.datetime | None = None) -> None:
    """Refuse a purge inside the six-month floor, inside the system's retention, or under a legal hold."""
    now = now or timezone.now()
    floor = now - dt.timedelta(days=MIN_RETENTION_DAYS)
    if cutoff > floor:
        raise PurgeRefused(
            f"Refused: records younger than six months ({MIN_RETENTION_DAYS} days) are never purged (EU AI Act "
            f"Art. 19, Art. 26(6)); the cutoff must be on or before {floor:%Y-%m-%d %H:%M} UTC, "
            f"not {cutoff:%Y-%m-%d %H:%M}.",
            code="retention_floor",
        )
    allowed = retention_cutoff(system, now=now)
    if cutoff > allowed:
        raise PurgeRefused(
            f"Refused: {system.slug} keeps records {system.retention_days} days; the cutoff must be on or "
            f"before {allowed:%Y-%m-%d %H:%M} UTC, not {cutoff:%Y-%m-%d %H:%M}.",
            code="retention_period",
        )
    holds = list(active_legal_holds(system=system)[:5])
    if holds:
        names = "; ".join(
            f"#{hold.pk} ({'all systems' if hold.system is None else hold.system.slug}"
            f"{', ' + hold.reference if hold.reference else ''}: {hold.reason[:80]})"
            for hold in holds
        )
        raise PurgeRefused(f"Refused: {system.slug} is under legal hold: {names}.", code="legal_hold",
                           field="system")


def _chunks(values: Sequence[int], size: int = ID_CHUNK) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def purgeable_cases(system: AISystem, cutoff: dt.datetime) -> Any:
    """Closed cases of ``system`` decided before ``cutoff`` whose data is still held."""
    return Case.objects.filter(
        system=system,
        status__in=[CaseStatus.DECIDED, CaseStatus.AUTO_ACCEPTED],
        decided_at__lt=cutoff,
        payload_purged_at__isnull=True,
    )


def _history_models() -> tuple[Any, Any]:
    return Case.history.model, Decision.history.model


def _archive_lines(case_ids: list[int]) -> Iterator[str]:
    """The case data and history rows a purge erases, as ``case`` and ``history`` records."""
    historical_case, historical_decision = _history_models()
    for chunk in _chunks(case_ids):
        for values in Case.objects.filter(pk__in=chunk).order_by("pk").values(*CASE_ARCHIVE_FIELDS):
            yield json_line({"record": "case", **values})
    for model_name, model, lookup in (
        ("case", historical_case, "id__in"),
        ("decision", historical_decision, "case_id__in"),
    ):
        for chunk in _chunks(case_ids):
            for values in model.objects.filter(**{lookup: chunk}).order_by("history_id").values():
                yield json_line({"record": "history", "model": model_name, **values})


def _export_path(system: AISystem, cutoff: dt.datetime, now: dt.datetime) -> tuple[Path, str]:
    name = f"purge-{system.slug}-before-{cutoff:%Y%m%d}-at-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.jsonl"
    relative = f"{EXPORT_SUBDIR}/{name}"
    return Path(settings.MEDIA_ROOT) / relative, relative


def purge_system(
    *,
    actor: Any,
    system: AISystem,
    cutoff: dt.datetime | None = None,
    now: dt.datetime | None = None,
    reason: str = "",
    max_cases: int = MAX_CASES_PER_RUN,
) -> PurgeRun | None:
    """Export, then erase, the personal data of ``system`` older than ``cutoff`` (one bounded run).

    ``cutoff`` defaults to what the system's retention allows; an earlier one may be
    given, a later one is refused (``PurgeRefused``), as is any purge under a legal
    hold. Returns the ``PurgeRun``, or None when nothing was left to purge.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # One purge of a system at a time, and no retention change in between.
        system = AISystem.objects.select_for_update().get(pk=system.pk)
        cutoff = cutoff or retention_cutoff(system, now=now)
        purge_check(system=system, cutoff=cutoff, now=now)
        case_ids = list(
            purgeable_cases(system, cutoff)
            .select_for_update(of=("self",))
            .order_by("pk")
            .values_list("pk", flat=True)[:max_cases]
        )
        if not case_ids:
            return None
        event_ids: set[int] = set()
        first_seq: int | None = None
        last_seq: int | None = None
        for chunk in _chunks(case_ids):
            rows = AuditEvent.objects.filter(
                case_id__in=chunk, seq__isnull=False, at__lt=cutoff, payload__isnull=False
            ).values_list("pk", "seq")
            for event_id, seq in rows:
                assert seq is not None  # seq__isnull=False above
                event_ids.add(event_id)
                first_seq = seq if first_seq is None else min(first_seq, seq)
                last_seq = seq if last_seq is None else max(last_seq, seq)
        historical_case, historical_decision = _history_models()
        history_rows = sum(
            historical_case.objects.filter(id__in=chunk).count()
            + historical_decision.objects.filter(case_id__in=chunk).count()
            for chunk in _chunks(case_ids)
        )
        rng = (
            export_range(from_seq=first_seq, to_seq=last_seq)
            if first_seq is not None
            else ExportRange(None, None, 0, requested={})
        )
        summary = {
            "system": system.slug,
            "cutoff": cutoff,
            "retention_days": system.retention_days,
            "cases": len(case_ids),
            "events": len(event_ids),
            "history_rows": history_rows,
        }
        manifest = build_manifest(rng, kind="purge", extra={"purge": {**summary, "payloads": "purged_only"}})
        path, relative = _export_path(system, cutoff, now)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("xb")  # a fresh name: never overwrite an earlier archive
        try:
            with handle:
                sha256, size = write_lines(_purge_archive(rng, manifest, event_ids, case_ids), handle)
            _erase(case_ids=case_ids, event_ids=sorted(event_ids), now=now)
            run = PurgeRun(
                system=system,
                cutoff=cutoff,
                retention_days=system.retention_days,
                reason=reason,
                started_at=now,
                finished_at=timezone.now(),
                by=actor if getattr(actor, "pk", None) else None,
                export_path=relative,
                export_sha256=sha256,
                export_bytes=size,
                first_seq=rng.first_seq,
                last_seq=rng.last_seq,
                cases_purged=len(case_ids),
                history_rows_deleted=history_rows,
                events_purged=len(event_ids),
            )
            run._history_user = actor  # type: ignore[attr-defined]
            run.save()
            record_event(
                "audit.purged",
                actor=actor,
                obj=run,
                system_id=system.pk,
                reason=reason or f"Retention of {system.retention_days} days expired.",
                data={
                    **summary,
                    "first_seq": rng.first_seq,
                    "last_seq": rng.last_seq,
                    "export_path": relative,
                    "export_sha256": sha256,
                    "export_bytes": size,
                },
            )
        except BaseException:
            # The erase is rolled back with the transaction; the export goes with it.
            path.unlink(missing_ok=True)
            raise
    logger.info("purged %s cases of %s before %s (export %s)", len(case_ids), system.slug, cutoff, relative)
    return run


def _purge_archive(rng: ExportRange, manifest: dict[str, Any], event_ids: set[int],
                   case_ids: list[int]) -> Iterator[str]:
    yield json_line(manifest)
    yield from iter_event_lines(rng, keep_payload=event_ids.__contains__)
    yield from _archive_lines(case_ids)


def _erase(*, case_ids: list[int], event_ids: list[int], now: dt.datetime) -> None:
    """The erasing half of a purge (its export is already written)."""
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        for chunk in _chunks(event_ids):
            # The one update the append-only trigger permits on a sealed event; the
            # model's queryset refuses update() on purpose, hence plain SQL.
            placeholders = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"UPDATE {table} SET payload = NULL WHERE id IN ({placeholders}) AND payload IS NOT NULL", list(chunk)
            )
    historical_case, historical_decision = _history_models()
    for chunk in _chunks(case_ids):
        # QuerySet.update() writes no history row, which is the point: the purge
        # removes personal data and history rows, and is itself recorded above.
        Case.objects.filter(pk__in=chunk).update(input={}, subject={}, payload_purged_at=now)
        historical_case.objects.filter(id__in=chunk).delete()
        historical_decision.objects.filter(case_id__in=chunk).delete()


def purge_expired(*, actor: Any = None, now: dt.datetime | None = None, budget_s: float = 120.0) -> dict[str, Any]:
    """Purge every system up to its retention, skipping systems under legal hold.

    Runs until nothing is left or ``budget_s`` has passed (``more`` is then True and
    the task queues itself again). Returns what happened, per system.
    """
    started = timezone.now()
    now = now or started
    report: dict[str, Any] = {"runs": 0, "cases": 0, "held": [], "more": False}
    for system in AISystem.objects.order_by("pk"):
        while True:
            if (timezone.now() - started).total_seconds() > budget_s:
                report["more"] = True
                return report
            try:
                run = purge_system(actor=actor, system=system, now=now)
            except PurgeRefused as refusal:
                if refusal.code == "legal_hold":
                    report["held"].append(system.slug)
                else:
                    logger.warning("purge of %s refused: %s", system.slug, refusal.message)
                break
            if run is None:
                break
            report["runs"] += 1
            report["cases"] += run.cases_purged
    return report


__all__ = [
    "PurgeRefused",
    "purge_check",
    "purge_expired",
    "purge_system",
    "purgeable_cases",
    "retention_cutoff",
    "retention_set",
]
