"""Test data for the incident register: cases and incidents made through the real services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from incidents.models import Incident
from incidents.services import incident_create
from reviews.models import AISystem, Case, InterventionPoint
from tests.reviews.factories import ingest, make_system_with_point


def make_case(
    external_id: str = "app-1", *, system: str = "credit-scoring", point: str = "loan-review", actor: Any = None,
    **kwargs: Any,
) -> Case:
    """A case ingested into ``system``/``point`` (both registered on first use; the point routes below 0.8)."""
    if not InterventionPoint.objects.filter(system__slug=system, slug=point).exists():
        make_system_with_point(system, point, confidence_below=0.8)
    return ingest(actor, system=system, point=point, external_id=external_id, **kwargs)


def file_incident(
    *, actor: Any, kind: str = "death", aware_at: dt.datetime, system: AISystem | None = None,
    case: Case | None = None, description: str = "A person was harmed.", title: str = "",
) -> Incident:
    """An incident filed through the service (on the credit-scoring system unless told)."""
    if system is None and case is None:
        system = AISystem.objects.filter(slug="credit-scoring").first() or make_case("seed-1").system
    return incident_create(actor=actor, system=system, kind=kind, aware_at=aware_at, description=description,
                           case=case, title=title)
