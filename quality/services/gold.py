"""Gold items: creating them (API, CSV, admin) and serving copies of them unannounced.

A gold item's *master* is a ``Case`` with ``is_gold=True`` and its ``gold_label``;
``claimable_cases`` keeps it out of every queue. To measure a reviewer, a *copy*
is made for that reviewer only (``GoldServing``): a new gold ``Case`` with its
own id and unguessable external id, routed by the intervention point's current
rules, blind-sampled and given an SLA deadline exactly as ingestion treats a
real case. So the claim API, the case GET and the workbench page show a copy
as they show any case; the copy's decision is scored against ``gold_label``.

Mixing (``gold_claim``, called by ``reviews.services.queue.claim_next``):

1. a reviewer's own open copies (a calibration session's items, or an
   unannounced copy they released or whose lease expired) come first;
2. otherwise, with probability ``gold_rate`` of the intervention point the
   ordinary claim would serve, a copy of an active gold item of that point the
   reviewer was never served is made and claimed at once. Gold is mixed only
   into a queue that has real work: a claim on an empty queue still gets
   nothing, so a claim that succeeds where the queue showed no work never
   gives a gold item away.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any, TypedDict

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.services import bulk_record_events, record_event
from quality.models import CalibrationSession, GoldItem, GoldServing, GoldSource
from reviews.models import CLAIMABLE_STATUSES, Case, CaseStatus, InterventionPoint, SystemStatus
from reviews.selectors.queue import claimable_cases, points_in_queue_order
from reviews.services.ingest import build_case
from reviews.services.queue import ReviewerScope, claim_first_of, claimed_event, lease_seconds

CLAIM_FIELDS = ["status", "claimed_by", "claimed_at", "lease_expires_at"]
# Own open copies tried per claim (compare-and-set; only the owner competes for them).
OWN_COPY_CANDIDATES = 3
CSV_MAX_ROWS = 5000
CSV_COLUMNS = (
    "system", "intervention_point", "input", "prediction_label", "prediction_confidence", "model_version",
    "gold_label", "external_id", "note",
)

MSG_NOT_ROUTED = (
    "With this prediction the intervention point's current rules would auto-accept the case, so it would never "
    "reach a reviewer: a gold item must look like a routed case."
)


def new_external_id() -> str:
    """An unguessable external id (a UUID, as many integrations use): never ``gold-…`` or a counter."""
    return str(uuid.uuid4())


def _prediction_data(case: Case) -> dict[str, Any] | None:
    if case.prediction_label is None:
        return None
    return {"label": case.prediction_label, "confidence": case.prediction_confidence,
            "model_version": case.model_version}


# --- Creating gold items ---------------------------------------------------------------------


def _validate_gold_label(point: InterventionPoint, gold_label: Any) -> str:
    if gold_label is None or gold_label == "":
        raise ValidationError({"gold_label": ["This field is required."]})
    if not isinstance(gold_label, str) or gold_label not in point.system.labels:
        raise ValidationError({"gold_label": [f"Not one of the system's labels ({', '.join(point.system.labels)})."]})
    return gold_label


@transaction.atomic
def gold_item_create(
    *,
    actor: Any,
    point: InterventionPoint,
    input: dict[str, Any],
    prediction: dict[str, Any] | None,
    gold_label: str,
    external_id: str | None = None,
    source: str = GoldSource.API,
    note: str = "",
) -> GoldItem:
    """Create a gold item: its master case (queued, never served itself) and its register row.

    ``prediction`` is ``{"label", "confidence", "model_version"}`` (``None`` only at a
    labeling point). Refused (400 on ``prediction``) when the point's current rules would
    auto-accept it; a blocked system takes no gold items either. No callback, no subject:
    gold items measure reviewers and never reach an integration or a case KPI.
    """
    system = point.system
    if system.status == SystemStatus.BLOCKED:
        raise ValidationError({"system": ["This system is blocked as a prohibited practice and takes no cases."]})
    gold_label = _validate_gold_label(point, gold_label)
    external_id = external_id or new_external_id()
    if Case.objects.filter(system=system, external_id=external_id).exists():
        raise ValidationError({"external_id": ["A case with this external_id already exists for this system."]})
    now = timezone.now()
    case, decision = build_case(point=point, external_id=external_id, case_input=input, prediction=prediction,
                                now=now, submitted_by=actor)
    if not decision.routed:
        raise ValidationError({"prediction": [MSG_NOT_ROUTED]})
    # The master is never served itself (only per-reviewer copies are): no SLA clock, never blind.
    case.sla_deadline = None
    case.blind = False
    case.is_gold = True
    case.gold_label = gold_label
    case._history_user = actor  # type: ignore[attr-defined]
    try:
        with transaction.atomic():
            case.save()
    except IntegrityError as exc:  # lost a race for the external id
        raise ValidationError({"external_id": ["A case with this external_id already exists for this system."]}) \
            from exc
    item = GoldItem(case=case, source=source, note=note or "", created_by=actor if getattr(actor, "pk", None) else None,
                    created_at=now)
    item._history_user = actor  # type: ignore[attr-defined]
    item.save()
    record_event(
        "gold.created", actor=actor, obj=item, case_id=case.pk, system_id=system.pk,
        data={
            "kind": "item", "gold_item": item.pk, "case": case.pk, "intervention_point": point.slug,
            "input_hash": case.input_hash, "prediction": _prediction_data(case), "gold_label": gold_label,
            "reasons": case.routing_reasons, "rules_version": case.rules_version, "source": source,
        },
    )
    return item


@dataclass
class ImportResult:
    """What a CSV import did: the items created, or the errors per line (nothing created then)."""

    created: list[GoldItem] = field(default_factory=list)
    errors: dict[int, dict[str, list[str]]] = field(default_factory=dict)


def _row_to_submission(row: dict[str, str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A CSV row as a case submission (``input`` is JSON text; prediction columns flat)."""
    errors: dict[str, list[str]] = {}
    raw: dict[str, Any] = {"system": (row.get("system") or "").strip(),
                           "intervention_point": (row.get("intervention_point") or "").strip()}
    text = row.get("input") or ""
    try:
        raw["input"] = json.loads(text) if text.strip() else None
    except ValueError:
        errors["input"] = ["Must be a JSON object."]
    if raw.get("input") is None and "input" not in errors:
        errors["input"] = ["This field is required."]
    label = (row.get("prediction_label") or "").strip()
    if label:
        prediction: dict[str, Any] = {"label": label}
        confidence = (row.get("prediction_confidence") or "").strip()
        if confidence:
            try:
                prediction["confidence"] = float(confidence)
            except ValueError:
                errors["confidence"] = ["Must be a number."]
        version = (row.get("model_version") or "").strip()
        if version:
            prediction["model_version"] = version
        raw["prediction"] = prediction
    external_id = (row.get("external_id") or "").strip()
    raw["external_id"] = external_id or new_external_id()
    return raw, errors


def gold_items_import_csv(*, actor: Any, text: str) -> ImportResult:
    """Import gold items from CSV text (header row with ``CSV_COLUMNS``; extra columns refused).

    All or nothing: every row is validated first; when any row is wrong nothing
    is created and the errors are returned per line (line 2 is the first data row).
    """
    from reviews.api.serializers.cases import CaseSubmissionValidator

    result = ImportResult()
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in (reader.fieldnames or [])]
    missing = [name for name in ("system", "intervention_point", "input", "gold_label") if name not in header]
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if missing or unknown:
        problems = [f"missing column(s): {', '.join(missing)}"] if missing else []
        problems += [f"unknown column(s): {', '.join(unknown)}"] if unknown else []
        result.errors[1] = {"header": problems}
        return result
    rows = list(reader)
    if not rows:
        result.errors[1] = {"file": ["No data rows."]}
        return result
    if len(rows) > CSV_MAX_ROWS:
        result.errors[1] = {"file": [f"At most {CSV_MAX_ROWS} rows per import."]}
        return result
    validator = CaseSubmissionValidator(actor=actor)
    prepared: list[tuple[int, dict[str, Any], dict[str, str]]] = []
    seen_ids: set[tuple[str, str]] = set()
    for line, row in enumerate(rows, start=2):
        row = {(k or "").strip(): (v or "") for k, v in row.items() if k is not None}
        raw, errors = _row_to_submission(row)
        data, field_errors = validator.validate(raw) if not errors else (None, None)
        errors.update(field_errors or {})
        if data is not None:
            point: InterventionPoint = data["intervention_point"]
            try:
                _validate_gold_label(point, (row.get("gold_label") or "").strip())
            except ValidationError as exc:
                errors.update(exc.message_dict)
            key = (point.system.slug, data["external_id"])
            if key in seen_ids:
                errors["external_id"] = ["Repeated in this file."]
            seen_ids.add(key)
        if errors:
            result.errors[line] = errors
        elif data is not None:
            prepared.append((line, data, row))
    if result.errors:
        return result
    try:
        with transaction.atomic():
            for line, data, row in prepared:
                try:
                    result.created.append(gold_item_create(
                        actor=actor, point=data["intervention_point"], input=data["input"],
                        prediction=data["prediction"], gold_label=row["gold_label"].strip(),
                        external_id=data["external_id"], source=GoldSource.CSV, note=(row.get("note") or "").strip(),
                    ))
                except ValidationError as exc:
                    result.errors[line] = exc.message_dict
            if result.errors:
                raise _RollBack()
    except _RollBack:
        result.created = []
    return result


class _RollBack(Exception):
    """Undo a partly imported file (all or nothing)."""


# --- Copies for reviewers ------------------------------------------------------------------------


def _copy_case(item: GoldItem, *, reviewer: User, now: dt.datetime, calibration: bool) -> Case | None:
    """A fresh, unsaved copy of the item's master for one reviewer; ``None`` when current rules would not route it.

    An unannounced copy gets an SLA deadline as a case received now would; a
    calibration copy (announced, answered at the reviewer's pace) gets none, so the
    SLA sweeper never closes it unanswered.
    """
    master = item.case
    point = master.intervention_point
    prediction = _prediction_data(master)
    if prediction is not None and not prediction["model_version"]:
        # A copy must look like the point's real traffic: an empty model version would give it away.
        prediction["model_version"] = latest_model_version(point)
    copy, decision = build_case(point=point, external_id=new_external_id(), case_input=master.input,
                                prediction=prediction, now=now)
    if not decision.routed:
        return None
    copy.submitted_by_id = master.submitted_by_id
    copy.is_gold = True
    copy.gold_label = master.gold_label
    if calibration:
        copy.sla_deadline = None
    return copy


def latest_model_version(point: InterventionPoint) -> str:
    """The model version of the point's most recent real case ("" when it has none)."""
    return (
        Case.objects.filter(intervention_point=point, is_gold=False).exclude(model_version="")
        .order_by("-received_at", "-id").values_list("model_version", flat=True).first()
        or ""
    )


def _serving_event(serving: GoldServing, copy: Case, *, reviewer: User, actor: Any) -> dict[str, Any]:
    return dict(
        action="gold.created", actor=actor, obj=copy, case_id=copy.pk, system_id=copy.system_id,
        data={"kind": "serving", "gold_item": serving.item_id, "copy_of": serving.item.case_id,
              "reviewer": reviewer.get_username(), "session": serving.session_id, "blind": copy.blind,
              "reasons": copy.routing_reasons},
    )


def serve_copy_claimed(*, item: GoldItem, reviewer: User, now: dt.datetime | None = None) -> Case | None:
    """Make an unannounced copy of ``item`` for ``reviewer`` and lease it to them at once.

    ``None`` when the point's current rules would not route the item, or when a
    concurrent claim of the same reviewer got this item first (the unique serving).
    """
    now = now or timezone.now()
    item = GoldItem.objects.select_related("case__system", "case__intervention_point__system").get(pk=item.pk)
    copy = _copy_case(item, reviewer=reviewer, now=now, calibration=False)
    if copy is None:
        return None
    try:
        with transaction.atomic():
            copy.status = CaseStatus.CLAIMED
            copy.claimed_by = reviewer
            copy.claimed_at = now
            copy.lease_expires_at = now + dt.timedelta(seconds=lease_seconds())
            copy._history_user = reviewer  # type: ignore[attr-defined]
            copy.save()
            serving = GoldServing.objects.create(item=item, case=copy, reviewer=reviewer, created_at=now)
            bulk_record_events([
                _serving_event(serving, copy, reviewer=reviewer, actor=None),
                claimed_event(copy, reviewer=reviewer, from_status=CaseStatus.QUEUED),
            ])
    except IntegrityError:
        return None
    return copy


def calibration_copies_create(*, session: CalibrationSession, items: list[GoldItem], reviewers: list[User],
                              actor: Any) -> list[GoldServing]:
    """Every reviewer gets a copy of every item (queued for them only); called in the session's transaction."""
    now = timezone.now()
    pairs: list[tuple[GoldItem, User, Case]] = []
    for reviewer in reviewers:
        for item in items:
            copy = _copy_case(item, reviewer=reviewer, now=now, calibration=True)
            if copy is None:
                raise ValidationError({"items": [f"Gold item {item.pk}: {MSG_NOT_ROUTED}"]})
            pairs.append((item, reviewer, copy))
    cases = Case.objects.bulk_create([copy for _, _, copy in pairs])
    # bulk_create writes no history: the history rows are written explicitly.
    Case.history.bulk_history_create(cases, default_user=actor if getattr(actor, "pk", None) else None)
    servings = GoldServing.objects.bulk_create([
        GoldServing(item=item, case=copy, reviewer=reviewer, session=session, created_at=now)
        for item, reviewer, copy in pairs
    ])
    for serving, (item, _, _) in zip(servings, pairs, strict=True):
        serving.item = item
    bulk_record_events([
        _serving_event(serving, copy, reviewer=reviewer, actor=actor)
        for serving, (_, reviewer, copy) in zip(servings, pairs, strict=True)
    ])
    return servings


# --- The claim hook ----------------------------------------------------------------------------------


def _gold_outlook(scope: ReviewerScope, *, system_id: int | None,
                  point_id: int | None) -> tuple[dict[int, float], bool]:
    """Whether gold has any part in this claim, in one statement: the gold rates of the points in
    scope that serve gold (``gold_rate > 0``), and whether the reviewer has an open gold copy.

    Most claims meet neither (no point serves gold, no copy open) and go straight to the queue.
    """
    qn = connection.ops.quote_name
    point_table, case_table = qn(InterventionPoint._meta.db_table), qn(Case._meta.db_table)
    serving = GoldServing._meta
    system_ids = sorted(scope.system_ids)
    statuses = [str(status) for status in CLAIMABLE_STATUSES]
    where = [f"p.{qn('gold_rate')} > 0", f"p.{qn('system_id')} IN ({', '.join(['%s'] * len(system_ids))})"]
    params: list[Any] = [scope.reviewer.pk, *statuses, *system_ids]
    if system_id is not None:
        where.append(f"p.{qn('system_id')} = %s")
        params.append(system_id)
    if point_id is not None:
        where.append(f"p.{qn('id')} = %s")
        params.append(point_id)
    sql = (
        f"SELECT p.{qn('id')}, p.{qn('gold_rate')}, EXISTS (SELECT 1 FROM {qn(serving.db_table)} g "
        f"INNER JOIN {case_table} c ON c.{qn('id')} = g.{qn(serving.get_field('case').column)} "
        f"WHERE g.{qn(serving.get_field('reviewer').column)} = %s "
        f"AND c.{qn('status')} IN ({', '.join(['%s'] * len(statuses))})) "
        f"FROM (SELECT 1) AS one LEFT JOIN {point_table} p ON {' AND '.join(where)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    rates = {row[0]: float(row[1]) for row in rows if row[0] is not None}
    return rates, bool(rows and rows[0][2])


def _claim_own_copy(scope: ReviewerScope, *, system_id: int | None, point_id: int | None,
                    now: dt.datetime) -> Case | None:
    """Lease the reviewer's oldest open copy (compare-and-set: only its owner may take it)."""
    reviewer = scope.reviewer
    candidates = list(
        claimable_cases(reviewer_id=reviewer.pk, system_ids=scope.system_ids, adjudicator=scope.adjudicator,
                        now=now, system_id=system_id, point_id=point_id)
        .filter(is_gold=True, gold_serving__reviewer_id=reviewer.pk)
        .select_related("system", "intervention_point", "claimed_by")
        .order_by("received_at", "id")[:OWN_COPY_CANDIDATES]
    )
    if not candidates:
        return None
    with transaction.atomic():
        # The queue's own compare-and-set: only the copy's owner reaches it (claimable_cases).
        return claim_first_of(scope, candidates, now=now)


class _QueueArgs(TypedDict):
    """The keyword arguments shared by the queue selectors' calls in ``_head_point``."""

    reviewer_id: int
    system_ids: frozenset[int]
    adjudicator: bool
    now: dt.datetime


def _head_point(scope: ReviewerScope, *, system_id: int | None, point_id: int | None,
                now: dt.datetime) -> int | None:
    """The intervention point whose queue the ordinary claim would serve (with real work), if any."""
    reviewer = scope.reviewer
    common = _QueueArgs(reviewer_id=reviewer.pk, system_ids=scope.system_ids, adjudicator=scope.adjudicator, now=now)
    if point_id is not None:
        return point_id if claimable_cases(**common, point_id=point_id).exists() else None
    if connection.features.supports_slicing_ordering_in_compound:
        points = points_in_queue_order(**common, system_id=system_id, point_ids=scope.point_ids(system_id))
        if len(points) == 1 and not claimable_cases(**common, point_id=points[0]).exists():
            return None
        return points[0] if points else None
    return claimable_cases(**common, system_id=system_id).values_list("intervention_point_id", flat=True).first()


def _unserved_item(reviewer: User, point_id: int) -> GoldItem | None:
    """A random active gold item of the point this reviewer was never served."""
    served = GoldServing.objects.filter(reviewer_id=reviewer.pk).values("item_id")
    return (
        GoldItem.objects.filter(active=True, case__intervention_point_id=point_id)
        .exclude(pk__in=served)
        .order_by("?")
        .first()
    )


def gold_claim(
    *, scope: ReviewerScope, system_id: int | None = None, point_id: int | None = None,
    rng: random.Random | None = None,
) -> Case | None:
    """The gold part of a claim: the reviewer's own open copy, or a new copy at the point's ``gold_rate``.

    ``None`` means: claim ordinary work. ``rng`` lets tests fix the dice.
    """
    now = timezone.now()
    rates, open_copy = _gold_outlook(scope, system_id=system_id, point_id=point_id)
    if open_copy:
        own = _claim_own_copy(scope, system_id=system_id, point_id=point_id, now=now)
        if own is not None:
            return own
    if not rates:
        return None
    dice = (rng or random).random()
    if dice >= max(rates.values()):
        return None  # no point's rate reaches this roll: skip finding the head point
    head = _head_point(scope, system_id=system_id, point_id=point_id, now=now)
    if head is None or dice >= rates.get(head, 0.0):
        return None
    for _ in range(3):
        item = _unserved_item(scope.reviewer, head)
        if item is None:
            return None
        case = serve_copy_claimed(item=item, reviewer=scope.reviewer, now=now)
        if case is not None:
            return case  # system and intervention point are loaded (the claim payload needs them)
    return None
