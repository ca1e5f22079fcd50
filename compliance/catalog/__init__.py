"""The requirements catalog as versioned data, and the one function that loads a version.

Each version is a package (``compliance.catalog.v2026_1``) holding plain data.
``load_catalog`` writes it into the catalog tables; a data migration calls it
with the migration's historical models, and tests whose database gets flushed
(live-server and transactional tests) call it again through a fixture.
Loading is idempotent: a version already present is left as it is.
"""

from __future__ import annotations

from datetime import date
from types import ModuleType
from typing import Any

from django.apps import apps as global_apps
from django.db import transaction


def _day(value: str) -> date:
    """A catalog date; every one is required (the date columns are NOT NULL), so "" is an error."""
    return date.fromisoformat(value)


def _expand(pattern: str, refs: list[str]) -> list[str]:
    """``AIA-14.*`` names every row of Art. 14; any other pattern names exactly one row."""
    if pattern.endswith(".*"):
        prefix = pattern[:-1]
        found = [ref for ref in refs if ref.startswith(prefix)]
    else:
        found = [pattern] if pattern in refs else []
    if not found:
        raise ValueError(f"crosswalk names an unknown catalog row: {pattern!r}")
    return found


def load_catalog(package: ModuleType | None = None, *, apps: Any = None, make_current: bool = True) -> Any:
    """Load one catalog version (by default the newest shipped) and return its ``CatalogVersion``.

    ``apps`` is a migration's app registry (historical models); the live registry otherwise.
    """
    if package is None:
        from compliance.catalog import v2026_1

        package = v2026_1
    registry = apps or global_apps
    CatalogVersion = registry.get_model("compliance", "CatalogVersion")
    Milestone = registry.get_model("compliance", "Milestone")
    Requirement = registry.get_model("compliance", "Requirement")

    meta = package.VERSION
    with transaction.atomic():
        existing = CatalogVersion.objects.filter(version=meta["version"]).first()
        if existing is not None:
            if make_current and not existing.is_current:
                CatalogVersion.objects.filter(is_current=True).update(is_current=False)
                existing.is_current = True
                existing.save(update_fields=["is_current"])
            return existing
        if make_current:
            CatalogVersion.objects.filter(is_current=True).update(is_current=False)
        catalog = CatalogVersion.objects.create(
            version=meta["version"], title=meta["title"], published_on=_day(meta["published_on"]),
            sources=meta["sources"], notes=meta["notes"], date_basis=meta["date_basis"], is_current=make_current,
        )
        milestones = {
            item["key"]: Milestone.objects.create(
                catalog=catalog, key=item["key"], title=item["title"], applies=item["applies"],
                original_date=_day(item["original"]), amended_date=_day(item["amended"]),
                amendment_note=item["amendment_note"],
            )
            for item in package.MILESTONES
        }
        annex_i = milestones.get("annex-i-regime")
        rows = [*package.EU_AI_ACT, *package.NIST_AI_RMF, *package.ISO_42001]
        frameworks = (
            ["EU_AI_ACT"] * len(package.EU_AI_ACT)
            + ["NIST_AI_RMF"] * len(package.NIST_AI_RMF)
            + ["ISO_42001"] * len(package.ISO_42001)
        )
        requirements = []
        for position, (row, framework) in enumerate(zip(rows, frameworks, strict=True), start=1):
            milestone = milestones.get(row["milestone"]) if row["milestone"] else None
            # The Art. 6(1) product route has its own dates only for duties of high-risk systems.
            product_route = annex_i if row["annex_i"] and milestone is not None and milestone != annex_i else None
            requirements.append(Requirement(
                catalog=catalog, ref=row["ref"], framework=framework, group=row["group"], level=row["level"],
                title=row["title"], summary=row["summary"], duty_holder=row["duty"], applies_to=row["tiers"],
                conditions=row["conditions"], evidence_kind=row["evidence"], position=position,
                milestone=milestone,
                applies_from_original=milestone.original_date if milestone else None,
                applies_from_amended=milestone.amended_date if milestone else None,
                annex_i_milestone=product_route,
                annex_i_from_original=product_route.original_date if product_route else None,
                annex_i_from_amended=product_route.amended_date if product_route else None,
            ))
        created = {r.ref: r for r in Requirement.objects.bulk_create(requirements)}
        if any(r.pk is None for r in created.values()):  # backends that return no ids on bulk insert
            created = {r.ref: r for r in Requirement.objects.filter(catalog=catalog)}
        refs = list(created)
        pairs: set[tuple[int, int]] = set()
        for source, targets in package.CROSSWALK:
            for left in _expand(source, refs):
                for pattern in targets:
                    for right in _expand(pattern, refs):
                        if left != right:
                            a, b = created[left].pk, created[right].pk
                            pairs.update({(a, b), (b, a)})
        Through = Requirement.related.through
        Through.objects.bulk_create([
            Through(from_requirement_id=a, to_requirement_id=b) for a, b in sorted(pairs)
        ])
    return catalog
