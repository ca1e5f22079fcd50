"""Reads of AI systems and their intervention points."""

from __future__ import annotations

import re

from django.db.models import QuerySet
from django.http import Http404

from reviews.models import AISystem, InterventionPoint

# The shape of a slug (Django's SlugField). A path segment that cannot be a slug is
# answered 404 before any query: PostgreSQL refuses NUL characters in text with an
# error, which would otherwise surface as a 500.
_SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]{1,80}$")


def is_slug(value: str) -> bool:
    return bool(_SLUG_RE.match(value))


def system_list() -> QuerySet[AISystem]:
    """Every registered system: any authenticated role may read the register."""
    return AISystem.objects.all()


def system_get(*, slug: str) -> AISystem:
    """The system with this slug, or 404."""
    if not is_slug(slug):
        raise Http404("No such AI system.")
    system = AISystem.objects.filter(slug=slug).first()
    if system is None:
        raise Http404("No such AI system.")
    return system


def intervention_point_list(*, system: AISystem) -> QuerySet[InterventionPoint]:
    return InterventionPoint.objects.filter(system=system).select_related("system")


def intervention_point_get(*, system: AISystem, slug: str) -> InterventionPoint:
    """The system's intervention point with this slug, or 404."""
    if not is_slug(slug):
        raise Http404("No such intervention point.")
    point = InterventionPoint.objects.filter(system=system, slug=slug).select_related("system").first()
    if point is None:
        raise Http404("No such intervention point.")
    return point
