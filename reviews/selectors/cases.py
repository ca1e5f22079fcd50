"""Reads of cases: the contract's representations, the filtered list, ingest look-ups."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connections, router
from django.db.models import Prefetch, QuerySet

from hitl_portal.actors import Actor
from hitl_portal.roles import REVIEWER, user_role
from hitl_portal.sql import RowShape, load_row, row_shape
from reviews.models import AISystem, Case, Decision, IntegrationProfile, InterventionPoint
from reviews.selectors.visibility import cases_visible_to


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _prediction(case: Case) -> dict[str, Any] | None:
    if case.prediction_label is None:
        return None
    body = {
        "label": case.prediction_label,
        "confidence": case.prediction_confidence,
        "model_version": case.model_version,
    }
    # Only when the model sent one: representations of cases without stay as they were.
    if case.explanation:
        body["explanation"] = case.explanation
    return body


def case_routing(case: Case) -> dict[str, Any]:
    return {"routed": case.routed, "reasons": list(case.routing_reasons), "rules_version": case.rules_version}


def case_ingest_response(case: Case) -> dict[str, Any]:
    """The 201 body of ``POST /cases/`` (also an accepted batch item, with its ``external_id``)."""
    return {
        "id": case.pk,
        "external_id": case.external_id,
        "status": case.status,
        "routing": case_routing(case),
        "final_label": case.final_label,
    }


def _decisions_of(case: Case) -> list[Decision]:
    cache = getattr(case, "_prefetched_objects_cache", {})
    if "decisions" in cache:
        return list(cache["decisions"])
    return list(case.decisions.select_related("reviewer").order_by("decided_at", "id"))


@functools.cache
def _no_decisions() -> QuerySet[Decision]:
    # One shared empty queryset: evaluating it never queries, and nothing mutates it.
    return Decision.objects.none()


def mark_without_decisions(case: Case) -> None:
    """Tell ``case_representation`` that a just-created case has no decisions (saves a query)."""
    case._prefetched_objects_cache = {"decisions": _no_decisions()}  # type: ignore[attr-defined]


def case_representation(case: Case, *, viewer: Any = None) -> dict[str, Any]:
    """The contract's "Case representation (GET)".

    ``viewer=None`` is the full view (webhooks, integrations, officers). A reviewer
    sees only their own decision, never ``true_label``, and no prediction on a case
    served blind (the AI's answer would defeat the blind review), and neither the
    external id nor the received time (a reviewer never needs them, and a gold copy
    made at claim time would give itself away by them). Gold markers are never
    shown to anyone here. Uses prefetched decisions when present
    (``case_queryset``), else one query.
    """
    as_reviewer = viewer is not None and user_role(viewer) == REVIEWER
    decisions = _decisions_of(case)
    if as_reviewer:
        decisions = [d for d in decisions if d.reviewer_id == viewer.pk]
    body: dict[str, Any] = {
        "id": case.pk,
        "external_id": None if as_reviewer else case.external_id,
        "system": case.system.slug,
        "intervention_point": case.intervention_point.slug,
        "status": case.status,
        "received_at": None if as_reviewer else _iso(case.received_at),
        "prediction": None if (as_reviewer and case.blind) else _prediction(case),
        "routing": case_routing(case),
        "final_label": case.final_label,
        "resolution": case.resolution,
        "decided_at": _iso(case.decided_at),
        "sla_deadline": _iso(case.sla_deadline),
        "reviewers_required": case.reviewers_required,
        "decisions": [
            {
                "reviewer": d.reviewer.get_username(),
                "outcome": d.outcome,
                "label": d.label,
                "rationale": d.rationale,
                "decided_at": _iso(d.decided_at),
                "form_values": d.form_values or {},
            }
            for d in decisions
        ],
    }
    if not as_reviewer:
        body["true_label"] = case.true_label
    kind = case.intervention_point.kind
    body["kind"] = kind
    if case.payload is not None:
        # Generation and action cases (reviews.services.kinds).
        body[kind] = case.payload
        body["final_output"] = case.final_output
        body["expires_at"] = body["sla_deadline"]
        for view, decision in zip(body["decisions"], decisions, strict=True):
            if decision.category:
                view["category"] = decision.category
    return body


def case_queryset() -> QuerySet[Case]:
    """Cases with what ``case_representation`` reads, in a fixed number of queries."""
    return Case.objects.select_related("system", "intervention_point").prefetch_related(
        Prefetch("decisions", queryset=Decision.objects.select_related("reviewer").order_by("decided_at", "id"))
    )


def case_list(
    *,
    user: Any,
    system: str | None = None,
    status: str | None = None,
    received_after: dt.datetime | None = None,
    received_before: dt.datetime | None = None,
) -> QuerySet[Case]:
    """The cases ``user`` may see, filtered; ``received_after`` inclusive, ``received_before`` exclusive."""
    cases = cases_visible_to(user, queryset=case_queryset())
    if system:
        cases = cases.filter(system__slug=system)
    if status:
        cases = cases.filter(status=status)
    if received_after is not None:
        cases = cases.filter(received_at__gte=received_after)
    if received_before is not None:
        cases = cases.filter(received_at__lt=received_before)
    return cases


def case_get(*, user: Any, pk: int) -> Case | None:
    """One case ``user`` may see, ready for ``case_representation``; ``None`` when not visible."""
    return cases_visible_to(user, queryset=case_queryset()).filter(pk=pk).first()


# --- Ingest look-ups -------------------------------------------------------------------
#
# The hot path of ingestion looks up (system, intervention point) once per request.
# The ORM spends far longer compiling that join (with the integration-link EXISTS)
# than PostgreSQL spends running it, so the statement is built once per process
# from the models' metadata, and rows become model instances through the same
# database converters the ORM applies.


@dataclass(frozen=True)
class _LoadPlan:
    sql_head: str
    shape: RowShape


_plans: dict[str, _LoadPlan] = {}


def _load_plan(alias: str) -> _LoadPlan:
    plan = _plans.get(alias)
    if plan is not None:
        return plan
    conn = connections[alias]
    qn = conn.ops.quote_name
    shape = row_shape(alias, (InterventionPoint, "p"), (AISystem, "s"))
    link = IntegrationProfile.systems.through
    link_system = qn(link._meta.get_field("aisystem").column)
    link_profile = qn(link._meta.get_field("integrationprofile").column)
    profile_user = qn(IntegrationProfile._meta.get_field("user").column)
    linked = (
        f"EXISTS (SELECT 1 FROM {qn(link._meta.db_table)} l "
        f"INNER JOIN {qn(IntegrationProfile._meta.db_table)} ip ON ip.{qn('id')} = l.{link_profile} "
        f"WHERE l.{link_system} = s.{qn('id')} AND ip.{profile_user} = %s)"
    )
    sql_head = (
        f"SELECT {shape.columns}, {linked} "
        f"FROM {qn(InterventionPoint._meta.db_table)} p "
        f"INNER JOIN {qn(AISystem._meta.db_table)} s "
        f"ON s.{qn('id')} = p.{qn(InterventionPoint._meta.get_field('system').column)} WHERE "
    )
    plan = _LoadPlan(sql_head=sql_head, shape=shape)
    _plans[alias] = plan
    return plan


def ingest_targets(*, actor: Actor, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], InterventionPoint]:
    """Intervention points (with their system) for ``(system slug, point slug)`` pairs, in one query.

    Each point carries ``linked_to_actor``: whether ``actor`` is an integration
    linked to the point's system (it may post cases only there); the caller
    decides whether that matters for the actor's role.
    """
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    alias = router.db_for_read(InterventionPoint)
    plan = _load_plan(alias)
    qn = connections[alias].ops.quote_name
    condition = " OR ".join([f"(s.{qn('slug')} = %s AND p.{qn('slug')} = %s)"] * len(wanted))
    params: list[Any] = [getattr(actor, "pk", None)]
    for system_slug, point_slug in wanted:
        params += [system_slug, point_slug]
    with connections[alias].cursor() as cursor:
        cursor.execute(plan.sql_head + condition, params)
        rows = cursor.fetchall()
    found: dict[tuple[str, str], InterventionPoint] = {}
    for raw in rows:
        (point, system), extra = load_row(plan.shape, alias, raw)
        assert isinstance(point, InterventionPoint) and isinstance(system, AISystem)
        point.system = system
        point.linked_to_actor = bool(extra[-1])  # type: ignore[attr-defined]
        found[(system.slug, point.slug)] = point
    return found
