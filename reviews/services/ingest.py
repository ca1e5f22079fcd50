"""Case ingestion: route each submitted AI output and store it with its history and audit trail.

The hot path of the portal. A single case costs one look-up (the intervention
point with its system, done by the caller's validation), one statement for the
case and its history row (on PostgreSQL one INSERT whose CTE copies the new row
into the history table; two INSERTs elsewhere), one INSERT for its audit events
(and one for the idempotency key when the request has one), in one transaction.
A batch costs a fixed number of statements for up to a thousand cases: on
PostgreSQL the ids are drawn from the sequence, the cases go in by ``COPY`` and
their history rows by one ``INSERT … SELECT`` from the rows just copied; elsewhere
multi-row INSERTs.

``data`` (an item of ``items``) is a validated submission, as produced by
``reviews.api.serializers.cases.CaseSubmissionValidator``::

    {"intervention_point": <InterventionPoint with .system>, "external_id": str,
     "input": dict, "prediction": {"label", "confidence", "model_version", "explanation"} | None,
     "subject": dict, "callback_url": str}

Refusals: a blocked (prohibited) system → ``CaseConflict(code="system_prohibited")``
(409); an integration posting to a system it is not linked to → 403
``system_not_linked`` (the system register is readable by every authenticated
role, so a 403 leaks nothing); an existing ``(system, external_id)`` →
``CaseConflict(code="duplicate", id=<existing>)`` (409), race-safe: the unique
constraint decides, and its ``IntegrityError`` is mapped after the atomic block
(a savepoint when nested) rolled back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import operator
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, connections, models, router, transaction
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from django.utils import timezone

from audit.canonical import canonical_json, sha256_hex
from audit.services import bulk_record_events
from hitl_portal.actors import Actor
from hitl_portal.errors import Forbidden
from hitl_portal.roles import INTEGRATION, user_role
from hitl_portal.sql import column_of, field_column
from reviews.models import (
    AISystem,
    Case,
    CaseStatus,
    IntegrationProfile,
    InterventionPoint,
    Resolution,
    SystemStatus,
)
from reviews.routing import BIOMETRIC_IDENTIFICATION, CaseInput, RoutingDecision, RoutingRules, blind_fraction, route
from reviews.selectors.cases import mark_without_decisions
from reviews.services.errors import CaseConflict
from reviews.services.kinds import auto_output, payload_digest, routing_rule_fields
from reviews.services.webhooks import webhooks_enqueue

DUPLICATE_CONSTRAINT = "case_unique_external_id_per_system"
# SQLite names the columns rather than the constraint.
_SQLITE_DUPLICATE_TEXT = "reviews_case.system_id, reviews_case.external_id"
# A lost race retries the batch this often (each retry re-screens the duplicates).
BATCH_ATTEMPTS = 3

MSG_DUPLICATE = "A case with this external_id already exists for this system."
MSG_PROHIBITED = "This system is blocked as a prohibited practice (Art. 5) and accepts no cases."
MSG_NOT_LINKED = "This integration is not linked to this system; it may post cases only to its linked systems."


class SystemNotLinked(Forbidden):
    """403: the integration is not linked to the case's system."""

    def __init__(self, detail: str = MSG_NOT_LINKED) -> None:
        super().__init__(detail, code="system_not_linked")


# --- Building a case -----------------------------------------------------------------


def rules_of(point: InterventionPoint) -> RoutingRules:
    """The routing engine's view of an intervention point (cached on the instance)."""
    cached = getattr(point, "_routing_rules", None)
    if cached is not None:
        return cached
    rules = RoutingRules(
        system=point.system.slug,
        stage=point.stage,
        confidence_below=point.confidence_below,
        always_review_labels=frozenset(point.always_review_labels or ()),
        high_stakes=tuple(point.high_stakes or ()),
        random_sample_rate=point.random_sample_rate,
        version=point.version,
        verify_identifications=point.system.is_remote_biometric,
        non_match_label=point.system.non_match_label or None,
        salt=point.sampling_salt,
        **routing_rule_fields(point),
    )
    point._routing_rules = rules  # type: ignore[attr-defined]
    return rules


def _routed(point: InterventionPoint, system: AISystem, external_id: str, case_input: dict[str, Any],
            prediction: dict[str, Any] | None,
            payload: dict[str, Any] | None) -> tuple[str | None, Any, RoutingDecision]:
    """The AI label, its confidence and ``point``'s routing decision for one submission (single and batch)."""
    label = prediction["label"] if prediction else None
    confidence = prediction.get("confidence") if prediction else None
    decision = route(
        rules_of(point),
        CaseInput(external_id=external_id, input=case_input, label=label, confidence=confidence, payload=payload),
        system_halted=system.status == SystemStatus.HALTED,
    )
    return label, confidence, decision


def build_case(
    *,
    point: InterventionPoint,
    external_id: str,
    case_input: dict[str, Any],
    prediction: dict[str, Any] | None,
    now: dt.datetime,
    submitted_by: Any = None,
    subject: dict[str, Any] | None = None,
    callback_url: str = "",
    payload: dict[str, Any] | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[Case, RoutingDecision]:
    """An unsaved case routed by ``point``'s current rules, as ingestion (and the gold copies) build it.

    Routed: queued, with its SLA deadline and blind sampling (deterministic in the
    external id); not routed: auto-accepted with the AI label as final label.
    Generation and action cases carry ``payload`` (and optionally their own
    ``expires_at``, never later than the point's SLA).
    """
    system: AISystem = point.system
    label, confidence, decision = _routed(point, system, external_id, case_input, prediction, payload)
    case = Case(
        system=system,
        intervention_point=point,
        external_id=external_id,
        submitted_by=submitted_by if getattr(submitted_by, "pk", None) else None,
        input=case_input,
        input_hash=sha256_hex(canonical_json(case_input)),
        prediction_label=label,
        prediction_confidence=confidence,
        model_version=(prediction.get("model_version") or "") if prediction else "",
        explanation=prediction.get("explanation") if prediction else None,
        subject=subject or {},
        callback_url=callback_url or "",
        payload=payload,
        routed=decision.routed,
        routing_reasons=decision.reasons,
        rules_version=point.version,
        reviewers_required=point.reviewers_required,
        received_at=now,
    )
    if decision.routed:
        case.status = CaseStatus.QUEUED
        if BIOMETRIC_IDENTIFICATION in decision.reasons:
            # Art. 14(5): two separate verifications, even if the point was configured with fewer.
            case.reviewers_required = max(case.reviewers_required, 2)
        if point.sla_seconds:
            case.sla_deadline = now + dt.timedelta(seconds=point.sla_seconds)
        if expires_at is not None and (case.sla_deadline is None or expires_at < case.sla_deadline):
            # An agent's own deadline for its request (generation and action cases).
            case.sla_deadline = expires_at
        # Without a prediction there is nothing to show: answered with a label, as a blind case.
        # A generation or action case is never blind: its output is what is reviewed.
        case.blind = (label is None and payload is None) or (
            point.blind_review_rate > 0
            and blind_fraction(system.slug, external_id, salt=point.sampling_salt) < point.blind_review_rate
        )
    else:
        case.status = CaseStatus.AUTO_ACCEPTED
        case.resolution = Resolution.AUTO_ACCEPTED
        case.final_label = label
        case.decided_at = now
        if payload is not None:
            case.final_output = auto_output(case)
    return case, decision


def _build_case(*, actor: Actor, data: dict[str, Any], now: dt.datetime) -> tuple[Case, RoutingDecision]:
    """A submitted case (validated ``data``), built and attributed to the submitting integration."""
    case, decision = build_case(
        point=data["intervention_point"], external_id=data["external_id"], case_input=data["input"],
        prediction=data.get("prediction") or None, now=now, submitted_by=actor, subject=data.get("subject"),
        callback_url=data.get("callback_url") or "", payload=data.get("payload"),
        expires_at=data.get("expires_at"),
    )
    case._history_user = actor  # type: ignore[attr-defined]
    return case, decision


def _event_specs(case: Case, actor: Actor) -> list[dict[str, Any]]:
    """``case.created`` by the submitter, then the routing engine's verdict (actor: the system).

    Personal data (input, subject) is referred to by hash only.
    """
    prediction = (
        None
        if case.prediction_label is None
        else {"label": case.prediction_label, "confidence": case.prediction_confidence,
              "model_version": case.model_version}
    )
    label = str(case)
    created: dict[str, Any] = {
        "action": "case.created",
        "actor": actor,
        "obj": case,
        "object_label": label,
        "system_id": case.system_id,
        "case_id": case.pk,
        "data": {
            "external_id": case.external_id,
            "intervention_point": case.intervention_point.slug,
            "input_hash": case.input_hash,
            "prediction": prediction,
            "rules_version": case.rules_version,
        },
    }
    if case.payload is not None:
        created["data"].update(kind=case.intervention_point.kind, payload=payload_digest(case))
    verdict_data: dict[str, Any] = {"reasons": case.routing_reasons, "rules_version": case.rules_version}
    if case.routed:
        verdict_data.update(blind=case.blind, reviewers_required=case.reviewers_required,
                            sla_deadline=case.sla_deadline)
    else:
        verdict_data["final_label"] = case.final_label
    verdict = {
        "action": "case.routed" if case.routed else "case.auto_accepted",
        "actor": None,
        "obj": case,
        "object_label": label,
        "system_id": case.system_id,
        "case_id": case.pk,
        "data": verdict_data,
        "after": {"status": case.status},
    }
    return [created, verdict]


# --- Refusals ----------------------------------------------------------------------


def refusal_of(*, actor: Actor, point: InterventionPoint) -> Exception | None:
    """Why ``actor`` may not post a case to ``point`` right now (``None`` when it may)."""
    if point.system.status == SystemStatus.BLOCKED:
        return CaseConflict(MSG_PROHIBITED, code="system_prohibited")
    if actor is not None and user_role(actor) == INTEGRATION:
        linked = getattr(point, "linked_to_actor", None)
        if linked is None:
            linked = IntegrationProfile.systems.through.objects.filter(
                integrationprofile__user_id=actor.pk, aisystem_id=point.system_id
            ).exists()
        if not linked:
            return SystemNotLinked()
    return None


def is_duplicate_error(exc: IntegrityError) -> bool:
    text = str(exc)
    return DUPLICATE_CONSTRAINT in text or _SQLITE_DUPLICATE_TEXT in text


def _existing_id(system_id: int, external_id: str) -> int | None:
    return (
        Case.objects.filter(system_id=system_id, external_id=external_id).values_list("pk", flat=True).first()
    )


# --- Single case -------------------------------------------------------------------


def case_ingest(
    *, actor: Actor, data: dict[str, Any], on_created: Callable[[Case], None] | None = None
) -> Case:
    """Route and store one case (one transaction); see the module docstring for refusals.

    ``on_created(case)`` runs inside the transaction after everything is written
    (the API stores the idempotency key there, so key and case commit together).
    """
    point: InterventionPoint = data["intervention_point"]
    refusal = refusal_of(actor=actor, point=point)
    if refusal is not None:
        raise refusal
    try:
        return _case_ingest_atomic(actor=actor, data=data, on_created=on_created)
    except IntegrityError as exc:
        if not is_duplicate_error(exc):
            raise
        # The transaction (or savepoint) is rolled back; the winner has committed.
        existing = _existing_id(point.system_id, data["external_id"])
        raise CaseConflict(MSG_DUPLICATE, code="duplicate", id=existing) from exc


# --- Writing rows ----------------------------------------------------------------------
#
# Cases and their history rows are INSERTed with statements built once per process
# from the models' metadata: on the hot path the ORM's per-call compilation of a
# 40-column INSERT (and simple-history's per-row model instances) cost more than
# the statements themselves. Values still go through each field's own
# ``pre_save`` and ``get_db_prep_save``, exactly as ``Model.save`` does, and the
# history row carries the same prepared values as its case (simple-history's
# ``bulk_history_create`` semantics: history type "+", the acting user, one date).

@dataclass(frozen=True)
class InsertPlan:
    """An INSERT of every concrete column but an auto primary key, built once per model and database.

    Shared with ``reviews.services.decisions``, which writes decisions the same way.
    """

    into: str  # INSERT INTO t (cols)
    row: str  # (%s, ..., %s)
    unnest: str | None  # PostgreSQL: SELECT * FROM UNNEST((%s)::type[], ...)
    tail: str  # RETURNING pk, or ""
    returning: str  # RETURNING pk
    fields: list[models.Field]
    # Per field: how its value is prepared (``PREP_*``).
    prep: list[int]


# The attribute as is (see ``_PLAIN_FIELDS``).
PREP_PLAIN = 0
# PostgreSQL, a DateTimeField without auto_now(_add): ``None`` and aware datetimes as
# is (exactly what the field's preparation returns for them there), others prepared.
PREP_DATETIME = 1
# The field's own ``pre_save`` and ``get_db_prep_save``.
PREP_FIELD = 2



_plans: dict[tuple[str, type[models.Model]], InsertPlan] = {}

# Exactly these field classes store the attribute as is (their ``pre_save`` reads it
# and their ``get_db_prep_save`` only re-casts a value ``_build_case`` already typed);
# every other field (dates, JSON, ...) goes through its own preparation.
_PLAIN_FIELDS: frozenset[type[models.Field]] = frozenset((
    models.CharField, models.SlugField, models.URLField, models.TextField, models.IntegerField,
    models.BigIntegerField, models.PositiveIntegerField, models.PositiveSmallIntegerField,
    models.SmallIntegerField, models.FloatField, models.BooleanField, models.ForeignKey,
))


def insert_plan(model: type[models.Model], alias: str) -> InsertPlan:
    """The INSERT plan of ``model`` on database ``alias`` (built on first use)."""
    return _plan(model, alias)


def prepared_row(plan: InsertPlan, instance: models.Model, conn: Any, *, add: bool = True) -> list[Any]:
    """``instance``'s values for ``plan``'s columns, prepared as ``Model.save`` prepares them."""
    row: list[Any] = []
    for f, prep in zip(plan.fields, plan.prep, strict=True):
        if prep == PREP_PLAIN:
            row.append(getattr(instance, f.attname))
            continue
        if prep == PREP_DATETIME:
            value = getattr(instance, f.attname)
            if value is None or (isinstance(value, dt.datetime) and value.tzinfo is not None):
                row.append(value)
                continue
        row.append(f.get_db_prep_save(f.pre_save(instance, add), conn))
    return row


def _prep_mode(field: models.Field, conn: Any) -> int:
    if type(field) in _PLAIN_FIELDS:
        return PREP_PLAIN
    if (
        conn.vendor == "postgresql"
        and type(field) is models.DateTimeField
        and not (field.auto_now or field.auto_now_add)
    ):
        return PREP_DATETIME
    return PREP_FIELD


@dataclass(frozen=True)
class HistoryCopy:
    """``INSERT INTO <history table> (...) SELECT ...``: append ``FROM <rows> src`` (and a condition).

    Copies a model's rows as stored into its simple-history table: every tracked
    column from ``src``, the history's own columns (date, type, user, change
    reason) from parameters named in ``params``, in placeholder order. The history
    row thus holds exactly what the database holds, as simple-history's own row
    would.
    """

    sql: str
    params: list[str]


_history_copies: dict[tuple[str, type[models.Model]], HistoryCopy] = {}


def history_copy(model: type[models.Model], alias: str) -> HistoryCopy:
    """The ``HistoryCopy`` of ``model`` on database ``alias`` (built on first use)."""
    found = _history_copies.get((alias, model))
    if found is not None:
        return found
    qn = connections[alias].ops.quote_name
    history_plan = _plan(model.history.model, alias)  # type: ignore[attr-defined]
    columns = {f.attname: field_column(f) for f in model._meta.concrete_fields}
    select: list[str] = []
    params: list[str] = []
    for column in history_plan.fields:
        if column.attname in columns:
            select.append(f"src.{qn(columns[column.attname])}")
        else:
            select.append("%s")
            params.append(column.attname)
    found = HistoryCopy(sql=f"{history_plan.into.strip()} SELECT {', '.join(select)}", params=params)
    _history_copies[(alias, model)] = found
    return found


def _base_db_type(field: models.Field, conn: Any) -> str:
    """The column's type without its size (``varchar``, not ``varchar(80)``): the array cast of UNNEST."""
    db_type = field.db_type(conn)
    if db_type is None:  # only fields without a column (none are concrete)
        raise FieldDoesNotExist(f"{field} has no database type")
    return db_type.split("(")[0]


def _plan(model: type[models.Model], alias: str) -> InsertPlan:
    plan = _plans.get((alias, model))
    if plan is None:
        conn = connections[alias]
        qn = conn.ops.quote_name
        pk = model._meta.pk
        fields = [f for f in model._meta.concrete_fields if not (f is pk and isinstance(f, models.AutoField))]
        unnest = None
        if conn.vendor == "postgresql":
            # One array per column, as Django's own bulk_create does on PostgreSQL: a
            # thousand rows cost a few parameters, not forty thousand placeholders.
            db_types = [_base_db_type(f, conn) for f in fields]
            unnest = "SELECT * FROM UNNEST(" + ", ".join(f"(%s)::{t}[]" for t in db_types) + ")"
        plan = InsertPlan(
            into=f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(field_column(f)) for f in fields)}) ",
            row="(" + ", ".join(["%s"] * len(fields)) + ")",
            unnest=unnest,
            tail=f" RETURNING {qn(field_column(pk))}" if model is Case else "",
            returning=f" RETURNING {qn(field_column(pk))}",
            fields=fields,
            prep=[_prep_mode(f, conn) for f in fields],
        )
        _plans[(alias, model)] = plan
    return plan


def _execute_insert(plan: InsertPlan, rows: list[list[Any]], alias: str) -> list[Any]:
    """INSERT ``rows``; the new primary keys in row order when the plan returns them."""
    conn = connections[alias]
    ids: list[Any] = []
    if plan.unnest is not None and len(rows) > 1:
        batches = [(plan.into + plan.unnest + plan.tail, [list(column) for column in zip(*rows, strict=True)])]
    else:
        size = max(1, conn.ops.bulk_batch_size(plan.fields, rows))
        batches = [
            (plan.into + "VALUES " + ", ".join([plan.row] * len(chunk)) + plan.tail,
             [value for row in chunk for value in row])
            for chunk in (rows[start:start + size] for start in range(0, len(rows), size))
        ]
    with conn.cursor() as cursor:
        for sql, params in batches:
            cursor.execute(sql, params)
            if plan.tail:
                ids.extend(row[0] for row in cursor.fetchall())
    return ids


@functools.cache
def _historical_case() -> type[models.Model]:
    # ``Case.history`` builds a manager class on every access; the model never changes.
    return Case.history.model


@dataclass(frozen=True)
class _PgCasePlan:
    """PostgreSQL statements writing cases with their history rows (built once per process)."""

    # One case: INSERT it and copy the new row into the history table in one statement.
    insert_one: str
    # A batch: draw ids, COPY the cases, copy the rows just written into the history table.
    next_ids: str
    copy: str
    history_from_ids: str
    # The history columns filled from parameters (not from the case row), in placeholder order.
    history_params: list[str]


_pg_plans: dict[str, _PgCasePlan] = {}


def _pg_plan(alias: str) -> _PgCasePlan:
    plan = _pg_plans.get(alias)
    if plan is not None:
        return plan
    conn = connections[alias]
    qn = conn.ops.quote_name
    case_plan = _plan(Case, alias)
    # Every history column the case has is copied from the case row as stored; the
    # history's own columns (date, type, user, reason) come as parameters.
    copy = history_copy(Case, alias)
    pk_column = column_of(Case)
    pk = qn(pk_column)
    table = qn(Case._meta.db_table)
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [Case._meta.db_table, pk_column])
        sequence = cursor.fetchone()[0]
    plan = _PgCasePlan(
        insert_one=(
            f"WITH new AS ({case_plan.into}VALUES {case_plan.row} RETURNING *), "
            f"hist AS ({copy.sql} FROM new src) "
            f"SELECT {pk} FROM new"
        ),
        next_ids=f"SELECT nextval('{sequence}') FROM generate_series(1, %s)",
        copy=(
            f"COPY {table} ({pk}, {', '.join(qn(field_column(f)) for f in case_plan.fields)}) FROM STDIN"
        ),
        history_from_ids=(
            f"{copy.sql} FROM {table} src WHERE src.{pk} = ANY(%s) ORDER BY src.{pk}"
        ),
        history_params=copy.params,
    )
    _pg_plans[alias] = plan
    return plan


def _insert_cases_with_history_pg(prepared: list[list[Any]], history: dict[str, Any], alias: str) -> list[int]:
    """PostgreSQL: write the cases and their history rows; the new ids in case order.

    ``COPY`` bypasses Django's cursor wrapper, so database errors (a duplicate
    ``external_id``) are mapped to Django's exceptions explicitly.
    """
    conn = connections[alias]
    plan = _pg_plan(alias)
    history_values = [history[name] for name in plan.history_params]
    with conn.cursor() as cursor:
        if len(prepared) == 1:
            cursor.execute(plan.insert_one, [*prepared[0], *history_values])
            return [cursor.fetchone()[0]]
        cursor.execute(plan.next_ids, [len(prepared)])
        ids = [row[0] for row in cursor.fetchall()]
        with conn.wrap_database_errors, cursor.copy(plan.copy) as copy:
            for pk, values in zip(ids, prepared, strict=True):
                copy.write_row([pk, *values])
        cursor.execute(plan.history_from_ids, [*history_values, ids])
    return ids


def _insert_cases_with_history(
    cases: list[Case], *, actor: Actor, now: dt.datetime, prepared: list[list[Any]] | None = None
) -> None:
    """INSERT the cases (setting their pks) and one "+" history row each.

    PostgreSQL: one statement for a single case, ``COPY`` plus two statements for
    a batch (``_insert_cases_with_history_pg``). Elsewhere: two multi-row INSERTs
    per chunk. ``prepared``: the cases' rows when the caller built them already
    (``case_ingest_batch``).
    """
    alias = router.db_for_write(Case)
    conn = connections[alias]
    case_plan = _plan(Case, alias)
    if prepared is None:
        prepared = [prepared_row(case_plan, case, conn) for case in cases]
    history_plan = _plan(_historical_case(), alias)
    history_date = _history_field_value(history_plan, "history_date", now, conn)
    user_id = getattr(actor, "pk", None)
    if conn.vendor == "postgresql":
        history = {"history_date": history_date, "history_change_reason": "", "history_type": "+",
                   "history_user_id": user_id}
        ids = _insert_cases_with_history_pg(prepared, history, alias)
        _mark_saved(cases, ids, alias)
        return
    ids = _execute_insert(case_plan, prepared, alias)
    _mark_saved(cases, ids, alias)
    position = {f.attname: index for index, f in enumerate(case_plan.fields)}
    history_rows = []
    for case, values in zip(cases, prepared, strict=True):
        extra = {"id": case.pk, "history_date": history_date, "history_change_reason": "", "history_type": "+",
                 "history_user_id": user_id}
        history_rows.append([
            values[position[f.attname]] if f.attname in position else extra[f.attname] for f in history_plan.fields
        ])
    _execute_insert(history_plan, history_rows, alias)


def _mark_saved(cases: list[Case], ids: list[Any], alias: str) -> None:
    for case, pk in zip(cases, ids, strict=True):
        case.pk = pk
        case._state.adding = False
        case._state.db = alias


def _history_field_value(plan: InsertPlan, attname: str, value: Any, conn: Any) -> Any:
    field = next(f for f in plan.fields if f.attname == attname)
    return field.get_db_prep_save(value, conn)


@transaction.atomic
def _case_ingest_atomic(*, actor: Actor, data: dict[str, Any], on_created: Callable[[Case], None] | None) -> Case:
    now = timezone.now()
    case, _ = _build_case(actor=actor, data=data, now=now)
    _insert_cases_with_history([case], actor=actor, now=now)
    mark_without_decisions(case)
    bulk_record_events(_event_specs(case, actor))
    if case.status == CaseStatus.AUTO_ACCEPTED:
        webhooks_enqueue(cases=[case])
    if on_created is not None:
        on_created(case)
    return case


# --- Batch -------------------------------------------------------------------------


@transaction.atomic
def case_ingest_batch(
    *,
    actor: Actor,
    items: Sequence[dict[str, Any]],
    on_created: Callable[[list[Case]], None] | None = None,
) -> list[Case]:
    """Route and store many validated cases, all or nothing, with bulk INSERTs.

    One INSERT for the cases, one for their history rows, one for their audit
    events, one webhook enqueue for the auto-accepted ones. Any refusal (see the
    module docstring) raises and stores nothing; ``case_ingest_screened`` screens
    items first so that each is accepted or rejected on its own.
    """
    for data in items:
        refusal = refusal_of(actor=actor, point=data["intervention_point"])
        if refusal is not None:
            raise refusal
    now = timezone.now()
    cases, prepared = _batch_cases(actor=actor, items=items, now=now)
    if cases:
        try:
            # A savepoint, so the duplicate's id can still be read in this transaction.
            with transaction.atomic():
                _insert_cases_with_history(cases, actor=actor, now=now, prepared=prepared)
        except IntegrityError as exc:
            if not is_duplicate_error(exc):
                raise
            first = _first_existing(cases)
            raise CaseConflict(MSG_DUPLICATE, code="duplicate", id=first) from exc
        specs: list[dict[str, Any]] = []
        for case in cases:
            mark_without_decisions(case)
            specs.extend(_event_specs(case, actor))
        bulk_record_events(specs)
        accepted = [case for case in cases if case.status == CaseStatus.AUTO_ACCEPTED]
        if accepted:
            webhooks_enqueue(cases=accepted)
    if on_created is not None:
        on_created(cases)
    return cases


# --- Batch: cases built from their values ------------------------------------------------
#
# A thousand ``Case(**fields)`` (keyword arguments, defaults, related-object descriptors)
# and reading each back field by field into its row were a third of a batch request's
# CPU. The batch sets each case's attribute values once, in a plain dict, exactly as
# ``build_case`` sets them (a test holds the two equal, field by field and row by row),
# prepares the row from that dict, and makes the instance the callers get by filling its
# ``__dict__`` and relation cache: the state ``Model.__init__`` leaves, without its
# per-field work. Should a ``pre_init``/``post_init`` receiver ever listen to ``Case``,
# the batch builds its cases through ``build_case`` again, so no receiver is skipped.


@dataclass(frozen=True)
class _CaseTemplate:
    """What ``Case(**fields)`` puts in every field the caller does not pass (built once per process)."""

    # attname -> default, for the fields whose default is a constant (or absent: None, "").
    constant: dict[str, Any]
    # Fields with a callable default (``dict``, ``timezone.now``): called per case when unset.
    per_case: tuple[models.Field, ...]


@functools.cache
def _case_template() -> _CaseTemplate:
    constant: dict[str, Any] = {}
    per_case: list[models.Field] = []
    for f in Case._meta.concrete_fields:
        if f.has_default() and callable(f.default):
            per_case.append(f)
        else:
            constant[f.attname] = f.get_default()
    return _CaseTemplate(constant=constant, per_case=tuple(per_case))


@dataclass(frozen=True)
class _RowPlan:
    """How ``prepared_row`` reads each column, resolved once per plan for a values dict.

    ``plain``: the columns taken as they are (one ``itemgetter`` call for all of them);
    ``fixups``: (position, field, mode) of the others, prepared as ``prepared_row`` does.
    ``pre_save`` is skipped only for fields whose ``pre_save`` just reads the attribute.
    """

    getter: Callable[[dict[str, Any]], tuple[Any, ...]]
    fixups: tuple[tuple[int, models.Field, int], ...]


# The field reads its value as is in ``pre_save``: the value in the dict is what it would read.
_PREP_VALUE = 3
_READING_PRE_SAVES = frozenset((models.Field.pre_save, models.DateField.pre_save, models.DateTimeField.pre_save))


_row_plans: dict[str, _RowPlan] = {}


def _row_plan(alias: str) -> _RowPlan:
    found = _row_plans.get(alias)
    if found is not None:
        return found
    plan = _plan(Case, alias)
    fixups: list[tuple[int, models.Field, int]] = []
    for index, (f, prep) in enumerate(zip(plan.fields, plan.prep, strict=True)):
        if prep == PREP_PLAIN:
            continue
        reads = (
            type(f).pre_save in _READING_PRE_SAVES
            and not getattr(f, "auto_now", False) and not getattr(f, "auto_now_add", False)
        )
        fixups.append((index, f, prep if prep == PREP_DATETIME else (_PREP_VALUE if reads else PREP_FIELD)))
    found = _RowPlan(getter=operator.itemgetter(*(f.attname for f in plan.fields)), fixups=tuple(fixups))
    _row_plans[alias] = found
    return found


def _row_from_values(row_plan: _RowPlan, case: Case, conn: Any) -> list[Any]:
    """``prepared_row(plan, case, conn)``, read from ``case.__dict__`` (no descriptor per field)."""
    row = list(row_plan.getter(case.__dict__))
    for index, f, prep in row_plan.fixups:
        value = row[index]
        if prep == PREP_DATETIME:
            if value is None or (isinstance(value, dt.datetime) and value.tzinfo is not None):
                continue
            row[index] = f.get_db_prep_save(value, conn)
        elif prep == _PREP_VALUE:
            row[index] = f.get_db_prep_save(value, conn)
        else:
            row[index] = f.get_db_prep_save(f.pre_save(case, True), conn)
    return row


def _case_of(
    *, actor: Actor, data: dict[str, Any], now: dt.datetime, template: _CaseTemplate, dbs: dict[int, str]
) -> tuple[Case, RoutingDecision]:
    """``_build_case(actor=actor, data=data, now=now)``, without ``Model.__init__``: the same values.

    Every line mirrors ``build_case``; ``tests/reviews/test_ingest_batch_rows.py`` compares
    the two on every kind of case (routed, auto-accepted, blind, biometric, halted, with
    and without prediction, payload, deadline, callback).
    """
    point: InterventionPoint = data["intervention_point"]
    system: AISystem = point.system
    external_id = data["external_id"]
    case_input = data["input"]
    prediction = data.get("prediction") or None
    payload = data.get("payload")
    expires_at = data.get("expires_at")
    label, confidence, decision = _routed(point, system, external_id, case_input, prediction, payload)
    submitted_by = actor if getattr(actor, "pk", None) else None
    explicit = {
        "system_id": system.pk,
        "intervention_point_id": point.pk,
        "external_id": external_id,
        "submitted_by_id": None if submitted_by is None else submitted_by.pk,
        "input": case_input,
        "input_hash": sha256_hex(canonical_json(case_input)),
        "prediction_label": label,
        "prediction_confidence": confidence,
        "model_version": (prediction.get("model_version") or "") if prediction else "",
        "explanation": prediction.get("explanation") if prediction else None,
        "subject": data.get("subject") or {},
        "callback_url": data.get("callback_url") or "",
        "payload": payload,
        "routed": decision.routed,
        "routing_reasons": decision.reasons,
        "rules_version": point.version,
        "reviewers_required": point.reviewers_required,
        "received_at": now,
    }
    values = {**template.constant, **explicit}
    for f in template.per_case:
        if f.attname not in explicit:
            values[f.attname] = f.get_default()
    if decision.routed:
        values["status"] = CaseStatus.QUEUED
        if BIOMETRIC_IDENTIFICATION in decision.reasons:
            # Art. 14(5): two separate verifications, even if the point was configured with fewer.
            values["reviewers_required"] = max(values["reviewers_required"], 2)
        if point.sla_seconds:
            values["sla_deadline"] = now + dt.timedelta(seconds=point.sla_seconds)
        if expires_at is not None and (values["sla_deadline"] is None or expires_at < values["sla_deadline"]):
            # An agent's own deadline for its request (generation and action cases).
            values["sla_deadline"] = expires_at
        # Without a prediction there is nothing to show: answered with a label, as a blind case.
        # A generation or action case is never blind: its output is what is reviewed.
        values["blind"] = (label is None and payload is None) or (
            point.blind_review_rate > 0
            and blind_fraction(system.slug, external_id, salt=point.sampling_salt) < point.blind_review_rate
        )
    else:
        values["status"] = CaseStatus.AUTO_ACCEPTED
        values["resolution"] = Resolution.AUTO_ACCEPTED
        values["final_label"] = label
        values["decided_at"] = now
    case = Case.__new__(Case)
    case.__dict__.update(values)
    state = ModelState()
    # What the related-object descriptors leave when ``Case(system=..., ...)`` is given objects:
    # the objects cached, and the database the router picks for the system (once per system here).
    state.fields_cache = {"system": system, "intervention_point": point, "submitted_by": submitted_by}
    db = dbs.get(id(system))
    if db is None:
        db = dbs[id(system)] = router.db_for_write(Case, instance=system)
    state.db = db
    case._state = state
    if not decision.routed and payload is not None:
        case.final_output = auto_output(case)
    case._history_user = actor  # type: ignore[attr-defined]
    return case, decision


def _batch_cases(
    *, actor: Actor, items: Sequence[dict[str, Any]], now: dt.datetime
) -> tuple[list[Case], list[list[Any]]]:
    """The batch's cases, routed and attributed, and their prepared rows (``_insert_cases_with_history``)."""
    alias = router.db_for_write(Case)
    conn = connections[alias]
    if pre_init.has_listeners(Case) or post_init.has_listeners(Case):
        cases = [_build_case(actor=actor, data=data, now=now)[0] for data in items]
        plan = _plan(Case, alias)
        return cases, [prepared_row(plan, case, conn) for case in cases]
    template = _case_template()
    row_plan = _row_plan(alias)
    dbs: dict[int, str] = {}
    cases = [_case_of(actor=actor, data=data, now=now, template=template, dbs=dbs)[0] for data in items]
    return cases, [_row_from_values(row_plan, case, conn) for case in cases]


def _first_existing(cases: list[Case]) -> int | None:
    by_system: dict[int, list[str]] = {}
    for case in cases:
        by_system.setdefault(case.system_id, []).append(case.external_id)
    for system_id, external_ids in by_system.items():
        found = Case.objects.filter(system_id=system_id, external_id__in=external_ids).values_list("pk", flat=True)
        first = found.first()
        if first is not None:
            return first
    return None


# --- Pausing the cyclic garbage collector ----------------------------------------------
#
# A batch allocates a few hundred thousand containers (cases, rows, audit specs and
# payloads) that all stay reachable until the response is sent. The cyclic collector
# runs every 700 allocations and walks the young ones each time (and the whole heap
# when enough survive), finding nothing to free: measured in-process, about a fifth
# of a batch request's CPU, half of which this pause saves. Reference counting still
# frees everything as usual while it is off; only cycles wait for the end of the batch.
# Pauses nest and may overlap across threads: the collector comes back on when the last
# one ends, and only if it was on when the first began. Under a threaded server with
# batches overlapping without a gap the collector would never come back, and cycles would
# pile up: so a pause that ends while others still hold it collects once if the last
# collection is older than ``COLLECT_EVERY_S``.

COLLECT_EVERY_S = 2.0
_pause_lock = threading.Lock()
_pauses = 0
_was_enabled = False
_collected_at = 0.0


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Switch the cyclic garbage collector off for the block (see above)."""
    global _pauses, _was_enabled, _collected_at
    with _pause_lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
            _collected_at = time.monotonic()
        _pauses += 1
    try:
        yield
    finally:
        collect = False
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0:
                if _was_enabled:
                    gc.enable()
            elif _was_enabled and time.monotonic() - _collected_at >= COLLECT_EVERY_S:
                _collected_at = time.monotonic()
                collect = True
        if collect:
            gc.collect()


@dataclass
class BatchItem:
    """One item of a batch: its validated ``data`` or its ``error``; after ingestion, its ``case``."""

    external_id: str | None
    data: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    case: Case | None = None
    # For an item rejected as a duplicate of an earlier item of the same batch.
    duplicate_of: int | None = field(default=None, repr=False)


def _screen(*, actor: Actor, items: list[BatchItem]) -> list[BatchItem]:
    """Reject items that would be refused (prohibited, not linked, duplicate); return the rest in order."""
    seen: dict[tuple[int, str], int] = {}
    candidates: list[tuple[BatchItem, tuple[int, str]]] = []
    for index, item in enumerate(items):
        if item.data is None or item.error is not None:
            continue
        point: InterventionPoint = item.data["intervention_point"]
        refusal = refusal_of(actor=actor, point=point)
        if refusal is not None:
            code = getattr(refusal, "code_name", "refused")
            item.error = {"system": [str(refusal.detail)], "code": code}  # type: ignore[attr-defined]
            continue
        key = (point.system_id, item.data["external_id"])
        if key in seen:
            item.duplicate_of = seen[key]
            item.error = {"external_id": [f"Duplicate of item {seen[key]} of this batch."], "code": "duplicate"}
            continue
        seen[key] = index
        candidates.append((item, key))
    existing = _existing_ids(list(seen))
    kept: list[BatchItem] = []
    for item, key in candidates:
        if key in existing:
            item.error = {"external_id": [MSG_DUPLICATE], "code": "duplicate", "id": existing[key]}
        else:
            kept.append(item)
    return kept


def _existing_ids(keys: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Existing cases for ``(system id, external id)`` pairs: one query per system in the batch."""
    by_system: dict[int, list[str]] = {}
    for system_id, external_id in keys:
        by_system.setdefault(system_id, []).append(external_id)
    found: dict[tuple[int, str], int] = {}
    for system_id, external_ids in by_system.items():
        rows = Case.objects.filter(system_id=system_id, external_id__in=external_ids).values_list("external_id", "pk")
        for external_id, pk in rows:
            found[(system_id, external_id)] = pk
    return found


def case_ingest_screened(
    *,
    actor: Actor,
    items: list[BatchItem],
    on_created: Callable[[list[BatchItem]], None] | None = None,
) -> list[BatchItem]:
    """The batch endpoint: each item accepted or rejected on its own, results in input order.

    Items already carrying an ``error`` (validation) stay rejected; the others are
    screened (prohibited system, not linked, duplicate in the batch or in the
    database) and the rest stored by ``case_ingest_batch`` in one transaction.
    Losing a race for an ``external_id`` to a concurrent request re-screens and
    retries, so an accepted item is never lost because another item collided.
    ``on_created(items)`` runs inside that transaction with the final results.
    """
    with collector_paused():
        return _ingest_screened(actor=actor, items=items, on_created=on_created)


def _ingest_screened(
    *, actor: Actor, items: list[BatchItem], on_created: Callable[[list[BatchItem]], None] | None
) -> list[BatchItem]:
    for attempt in range(BATCH_ATTEMPTS):
        for item in items:
            if item.error is not None and item.error.get("code") == "duplicate":
                item.error = None  # re-screened below
                item.duplicate_of = None
        accepted = _screen(actor=actor, items=items)

        def finish(cases: list[Case], accepted: list[BatchItem] = accepted) -> None:
            for item, case in zip(accepted, cases, strict=True):
                item.case = case
            for item in items:
                if item.duplicate_of is not None and item.error is not None:
                    first = items[item.duplicate_of].case
                    if first is not None:
                        item.error["id"] = first.pk
            if on_created is not None:
                on_created(items)

        try:
            case_ingest_batch(actor=actor, items=[item.data for item in accepted if item.data], on_created=finish)
        except CaseConflict as exc:
            if exc.code_name != "duplicate" or attempt == BATCH_ATTEMPTS - 1:
                raise
            for item in accepted:
                item.case = None
            continue
        return items
    return items
