"""How the compliance workspace reacts to the floors below it (connected in ``ComplianceConfig.ready``)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from compliance.services.obligations import obligations_sync
from reviews.signals import system_profile_changed


@receiver(system_profile_changed, dispatch_uid="compliance.sync_obligations")
def sync_obligations(sender: Any, *, system: Any, actor: Any, fields: frozenset[str], **kwargs: Any) -> None:
    """Obligations follow the system: generated on registration, re-synced when its tier, role or area changes."""
    obligations_sync(actor=actor, system=system)
