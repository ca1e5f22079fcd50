"""Reads of fundamental rights impact assessments (Art. 27) and whether one is required."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from compliance.classification import SystemProfile, requirement_applies
from compliance.models import FundamentalRightsAssessment, Requirement
from compliance.selectors.catalog import current_catalog
from reviews.models import AISystem

FRIA_REF = "AIA-27.1"


def fria_requirement() -> Requirement | None:
    return Requirement.objects.filter(catalog=current_catalog(), ref=FRIA_REF).first()


def fria_required(system: AISystem) -> bool:
    """Whether the catalog's Art. 27 row applies to the system (public body, Annex III 5(b)/5(c), deployer)."""
    requirement = fria_requirement()
    return requirement is not None and requirement_applies(requirement, SystemProfile.from_system(system))


def fria_versions(*, system: AISystem) -> QuerySet[FundamentalRightsAssessment]:
    return FundamentalRightsAssessment.objects.filter(system=system).select_related("created_by").order_by("-version")


def fria_latest(*, system: AISystem) -> FundamentalRightsAssessment | None:
    return fria_versions(system=system).first()


def fria_get(*, system: AISystem, version: int) -> FundamentalRightsAssessment:
    found = fria_versions(system=system).filter(version=version).first()
    if found is None:
        raise Http404("No such FRIA version.")
    return found
