"""Reads of the requirements catalog: the current version, its rows, the regulatory calendar."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from compliance.models import CatalogVersion, Framework, Milestone, Requirement

_REF_RE = re.compile(r"^[A-Za-z0-9.*_-]{1,40}$")


def current_catalog() -> CatalogVersion:
    """The catalog version obligations are generated from (loaded by migration ``0003``)."""
    catalog = CatalogVersion.objects.filter(is_current=True).first()
    if catalog is None:
        raise RuntimeError("no current requirements catalog: run the migrations (compliance 0003 loads it)")
    return catalog


def requirement_list(*, catalog: CatalogVersion | None = None, framework: str = "") -> QuerySet[Requirement]:
    """Rows of a catalog version (the current one by default), in catalog order, with their crosswalk."""
    catalog = catalog or current_catalog()
    rows = (
        Requirement.objects.filter(catalog=catalog)
        .select_related("milestone", "annex_i_milestone")
        .prefetch_related(Prefetch("related", queryset=Requirement.objects.order_by("position")))
        .order_by("position")
    )
    if framework:
        rows = rows.filter(framework=framework)
    return rows


def requirement_get(*, ref: str, catalog: CatalogVersion | None = None) -> Requirement:
    if not _REF_RE.match(ref):
        raise Http404("No such requirement.")
    row = requirement_list(catalog=catalog).filter(ref=ref).first()
    if row is None:
        raise Http404("No such requirement.")
    return row


@dataclass
class CalendarEntry:
    """One date of application with both date sets and the catalog rows it brings in."""

    milestone: Milestone
    requirements: list[Requirement] = field(default_factory=list)
    # High-risk duties that apply from this date to Annex I products (Art. 6(1) route).
    product_route: list[Requirement] = field(default_factory=list)

    @property
    def original(self) -> date:
        return self.milestone.original_date

    @property
    def amended(self) -> date:
        return self.milestone.amended_date

    @property
    def moved(self) -> bool:
        return self.original != self.amended

    def date_for(self, basis: str) -> date:
        return self.amended if basis == "amended" else self.original


def calendar(*, catalog: CatalogVersion | None = None) -> list[CalendarEntry]:
    """Milestones in date order, each with the EU rows that apply from it.

    A high-risk duty is listed under the Annex III regime and again, for Annex I
    products (Art. 6(1)), under that route's later dates.
    """
    catalog = catalog or current_catalog()
    entries = {m.pk: CalendarEntry(m) for m in Milestone.objects.filter(catalog=catalog)}
    rows = Requirement.objects.filter(catalog=catalog, framework=Framework.EU_AI_ACT).order_by("position")
    for row in rows:
        if row.milestone_id:
            entries[row.milestone_id].requirements.append(row)
        if row.annex_i_milestone_id and row.applies_to:
            entries[row.annex_i_milestone_id].product_route.append(row)
    return sorted(entries.values(), key=lambda e: (e.original, e.milestone.key))
