"""How the compliance workspace reacts to the floors below it (connected in ``ComplianceConfig.ready``)."""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver

from compliance.models import CatalogVersion
from compliance.services.obligations import obligations_sync
from reviews.signals import system_profile_changed

logger = logging.getLogger(__name__)


@receiver(system_profile_changed, dispatch_uid="compliance.sync_obligations")
def sync_obligations(sender: Any, *, system: Any, actor: Any, fields: frozenset[str], **kwargs: Any) -> None:
    """Obligations follow the system: generated on registration, re-synced when its tier, role or area changes.

    Without a loaded catalog (a database emptied by a test runner; the migrations
    always load one) there is nothing to generate from: the registration goes on,
    and the workspace's "Regenerate from catalog" does it once a catalog exists.
    """
    if not CatalogVersion.objects.filter(is_current=True).exists():
        logger.warning("no requirements catalog loaded: obligations of %s not generated", system.slug)
        return
    obligations_sync(actor=actor, system=system)
