"""Reads of obligations: per system, their progress, and the one obligation a ref names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404

from compliance.classification import SystemProfile, requirement_applies
from compliance.models import Obligation, ObligationEvidence, ObligationStatus, Requirement
from compliance.selectors.catalog import current_catalog
from reviews.models import AISystem

_REF_RE = re.compile(r"^[A-Za-z0-9._-]{1,40}$")


def obligation_list(*, system: AISystem, include_retired: bool = True) -> QuerySet[Obligation]:
    """The system's obligations in catalog order, with requirement, owner and evidence (fixed query count)."""
    rows = (
        Obligation.objects.filter(system=system)
        .select_related("requirement", "requirement__catalog", "owner")
        .prefetch_related(
            Prefetch("evidence", queryset=ObligationEvidence.objects.select_related("added_by").order_by("id")),
            Prefetch("requirement__related", queryset=Requirement.objects.order_by("position")),
        )
        .order_by("-applicable", "requirement__position", "id")
    )
    if not include_retired:
        rows = rows.filter(applicable=True)
    return rows


def obligation_get(*, system: AISystem, ref: str) -> Obligation:
    """The system's obligation for catalog row ``ref`` (the newest catalog row of that ref), or 404."""
    if not _REF_RE.match(ref):
        raise Http404("No such obligation.")
    found = obligation_list(system=system).filter(requirement__ref=ref).order_by("-requirement__catalog_id").first()
    if found is None:
        raise Http404("No such obligation.")
    return found


def obligation_get_by_pk(*, system: AISystem, pk: int) -> Obligation:
    found = obligation_list(system=system).filter(pk=pk).first()
    if found is None:
        raise Http404("No such obligation.")
    return found


@dataclass(frozen=True)
class Progress:
    """How far a system is: met / applicable, where not-applicable rows leave the denominator."""

    total: int
    open: int
    in_progress: int
    met: int
    not_applicable: int

    @property
    def relevant(self) -> int:
        return self.total - self.not_applicable

    @property
    def fraction(self) -> float | None:
        return self.met / self.relevant if self.relevant else None

    @property
    def percent(self) -> int | None:
        return None if self.fraction is None else round(self.fraction * 100)

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "open": self.open, "in_progress": self.in_progress, "met": self.met,
                "not_applicable": self.not_applicable, "fraction": self.fraction}


def _progress_from(row: Mapping[str, Any]) -> Progress:
    return Progress(total=row.get("total") or 0, open=row.get("open") or 0, in_progress=row.get("in_progress") or 0,
                    met=row.get("met") or 0, not_applicable=row.get("not_applicable") or 0)


_COUNTS = {
    "total": Count("id"),
    "open": Count("id", filter=Q(status=ObligationStatus.OPEN)),
    "in_progress": Count("id", filter=Q(status=ObligationStatus.IN_PROGRESS)),
    "met": Count("id", filter=Q(status=ObligationStatus.MET)),
    "not_applicable": Count("id", filter=Q(status=ObligationStatus.NOT_APPLICABLE)),
}


def obligations_progress(*, system: AISystem, framework: str = "") -> Progress:
    rows = Obligation.objects.filter(system=system, applicable=True)
    if framework:
        rows = rows.filter(requirement__framework=framework)
    return _progress_from(rows.aggregate(**_COUNTS))


def progress_by_system() -> dict[int, Progress]:
    """Progress of every system in one query (the registry list)."""
    rows = Obligation.objects.filter(applicable=True).values("system_id").annotate(**_COUNTS).order_by()
    return {row["system_id"]: _progress_from(row) for row in rows}


def pending_requirements(*, system: AISystem) -> list[Requirement]:
    """Catalog rows that apply to the system but have no obligation yet (a sync is due)."""
    catalog = current_catalog()
    profile = SystemProfile.from_system(system)
    have = set(Obligation.objects.filter(system=system, applicable=True, requirement__catalog=catalog)
               .values_list("requirement_id", flat=True))
    return [r for r in Requirement.objects.filter(catalog=catalog).order_by("position")
            if r.pk not in have and requirement_applies(r, profile)]
