"""How the register reacts to the floors below it (connected in ``IncidentsConfig.ready``)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver
from django.utils import timezone

from audit.signals import chain_broken
from hitl_portal.models import NotificationKind
from hitl_portal.notifications import notify
from hitl_portal.roles import ADMIN, COMPLIANCE_OFFICER
from incidents.models import Incident, IncidentKind, IncidentSource, IncidentStatus
from incidents.services import incident_create


@receiver(chain_broken, dispatch_uid="incidents.file_chain_incident")
def file_chain_incident(sender: Any, *, result: Any, actor: Any, **kwargs: Any) -> Incident | None:
    """File one incident per break: an open incident for the same first bad seq is not filed again."""
    source_ref = f"seq:{result.first_bad_seq}"
    already = Incident.objects.filter(source=IncidentSource.CHAIN_VERIFICATION, source_ref=source_ref).exclude(
        status=IncidentStatus.CLOSED
    )
    if already.exists():
        return None
    notify(kind=NotificationKind.CHAIN_VERIFICATION, severity="critical",
           subject=f"Audit chain verification failed at seq {result.first_bad_seq}",
           body=f"{result.problem}. An incident is filed in the register.", roles=(COMPLIANCE_OFFICER, ADMIN),
           dedupe_key=f"chain-broken:{result.first_bad_seq}")
    return incident_create(
        actor=actor,
        system=None,
        kind=IncidentKind.OTHER,
        aware_at=timezone.now(),
        source=IncidentSource.CHAIN_VERIFICATION,
        source_ref=source_ref,
        title=f"Audit chain broken at seq {result.first_bad_seq}",
        description=(
            f"The nightly verification of the audit chain failed at seq {result.first_bad_seq}: "
            f"{result.problem}. {result.events} events verified before it. Compare with the last signed "
            "checkpoint and the latest export (tools/verify_audit_export.py) to find what changed."
        ),
    )
