"""The requirements catalog as loaded by the data migration: rows, dates, crosswalk, loader."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from compliance.catalog import load_catalog, v2026_1
from compliance.classification import CONDITION_KEYS, TIERS
from compliance.models import CatalogVersion, Framework, Milestone, Requirement
from compliance.selectors.catalog import calendar, current_catalog

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def rows(framework: str) -> list[Requirement]:
    return list(Requirement.objects.filter(catalog=current_catalog(), framework=framework).order_by("position"))


def related(ref: str) -> set[str]:
    return {r.ref for r in Requirement.objects.get(catalog=current_catalog(), ref=ref).related.all()}


def test_the_migration_loaded_one_current_version() -> None:
    catalog = current_catalog()
    assert catalog.version == "2026.1"
    assert CatalogVersion.objects.filter(is_current=True).count() == 1
    assert catalog.date_basis == "amended"


def test_eu_rows_cover_the_articles_at_paragraph_and_point_level() -> None:
    refs = {r.ref for r in rows(Framework.EU_AI_ACT)}
    for ref in ["AIA-4", "AIA-5.1.a", "AIA-5.1.h", "AIA-6.3", "AIA-6.4", "AIA-9.2.d", "AIA-10.2.f", "AIA-11.1",
                "AIA-ANNEXIV.2.g", "AIA-12.3", "AIA-13.3.d", "AIA-14.4.b", "AIA-14.4.e", "AIA-14.5", "AIA-15.3",
                "AIA-17.1", "AIA-19.1", "AIA-26.2", "AIA-26.5", "AIA-27.1", "AIA-43.2", "AIA-49.2", "AIA-50.1",
                "AIA-50.4", "AIA-72.1", "AIA-73.3", "AIA-73.4", "AIA-86.1"]:
        assert ref in refs, ref
    assert all(re.match(r"^AIA-(\d+|ANNEXIV)(\.[0-9a-z]+)*$", ref) for ref in refs)


def test_every_eu_row_has_a_duty_holder_and_both_date_sets() -> None:
    for requirement in rows(Framework.EU_AI_ACT):
        assert requirement.duty_holder in ("provider", "deployer", "both"), requirement.ref
        assert requirement.applies_from_original is not None, requirement.ref
        assert requirement.applies_from_amended is not None, requirement.ref
        assert set(requirement.applies_to) <= set(TIERS), requirement.ref
        assert set(requirement.conditions) <= CONDITION_KEYS, requirement.ref


def test_dates_are_data_with_the_reported_amendments() -> None:
    fria = Requirement.objects.get(catalog=current_catalog(), ref="AIA-27.1")
    assert (fria.applies_from_original, fria.applies_from_amended) == (date(2026, 8, 2), date(2027, 12, 2))
    oversight = Requirement.objects.get(catalog=current_catalog(), ref="AIA-14.4.e")
    assert (oversight.annex_i_from_original, oversight.annex_i_from_amended) == (date(2027, 8, 2), date(2028, 8, 2))
    literacy = Requirement.objects.get(catalog=current_catalog(), ref="AIA-4")
    assert literacy.applies_from_original == literacy.applies_from_amended == date(2025, 2, 2)
    assert literacy.duty_holder == "both"
    assert Milestone.objects.get(catalog=current_catalog(), key="annex-iii-regime").amendment_note


def test_no_date_is_hard_coded_outside_the_catalog_data() -> None:
    pattern = re.compile(r"\b20\d\d-\d\d-\d\d\b|\bdate\(\s*20\d\d")
    offenders = []
    for path in (ROOT / "compliance").rglob("*.py"):
        if "catalog" in path.parts or "migrations" in path.parts:
            continue
        if pattern.search(path.read_text(encoding="utf-8")):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_nist_functions_categories_and_oversight_subcategories() -> None:
    nist = rows(Framework.NIST_AI_RMF)
    assert sum(1 for r in nist if r.level == "function") == 4
    assert sum(1 for r in nist if r.level == "category") == 19  # GOVERN 6, MAP 5, MEASURE 4, MANAGE 4
    subcategories = [r for r in nist if r.level == "subcategory"]
    assert len(subcategories) == 15
    assert all(r.applies_to == ["high"] for r in subcategories)


def test_iso_42001_annex_a_controls() -> None:
    iso = {r.ref: r for r in rows(Framework.ISO_42001)}
    assert iso["ISO42001-A.9.4"].title == "Intended use of the AI system"
    assert iso["ISO42001-A.6.2.8"].evidence_kind == "audit_chain"
    assert sum(1 for r in iso.values() if r.level == "objective") == 9


def test_crosswalk_follows_the_nist_table_and_is_symmetric() -> None:
    assert related("NIST-MANAGE-2.4") >= {"AIA-14.4.d", "AIA-14.4.e"}
    assert "NIST-MANAGE-2.4" in related("AIA-14.4.e")
    assert related("NIST-MEASURE-2.11") >= {"AIA-10.2.f"}
    assert {r for r in related("NIST-MAP-3.5") if r.startswith("AIA-")} == {
        r.ref for r in rows(Framework.EU_AI_ACT) if r.ref.startswith("AIA-14.")
    }
    assert related("ISO42001-A.6.2.8") >= {"AIA-12.1", "AIA-19.1", "AIA-26.6"}
    assert "ISO42001-A.4.6" in related("AIA-26.2")


def test_loading_again_is_idempotent() -> None:
    before = Requirement.objects.count()
    again = load_catalog(v2026_1)
    assert again == current_catalog()
    assert Requirement.objects.count() == before
    assert CatalogVersion.objects.count() == 1


def test_crosswalk_with_an_unknown_ref_is_refused() -> None:
    from compliance.catalog import _expand

    with pytest.raises(ValueError):
        _expand("AIA-99.9", ["AIA-4"])


def test_calendar_lists_both_date_sets_in_order() -> None:
    entries = calendar()
    assert [e.milestone.key for e in entries] == ["prohibitions", "gpai", "annex-iii-regime", "transparency",
                                                  "annex-i-regime"]
    annex_iii = entries[2]
    assert annex_iii.moved and annex_iii.date_for("amended") == date(2027, 12, 2)
    assert "AIA-26.2" in {r.ref for r in annex_iii.requirements}
    annex_i = entries[-1]
    assert "AIA-14.4.e" in {r.ref for r in annex_i.product_route}
    assert "AIA-6.1" in {r.ref for r in annex_i.requirements}
