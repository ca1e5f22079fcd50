"""Writes of the records kept around the ledger: legal holds and periods of biometric use (both audited).

Retention purges are in ``records.retention``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import record_event
from records.models import BiometricUse, LegalHold

# --- Legal holds -------------------------------------------------------------------------


@transaction.atomic
def legal_hold_place(*, actor: Any, reason: str, system: Any = None, reference: str = "") -> LegalHold:
    """Place a legal hold: no retention purge runs for ``system`` (every system when None) until released."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["A legal hold needs a reason."]})
    hold = LegalHold(system=system, reason=reason, reference=(reference or "").strip(),
                     placed_by=actor if getattr(actor, "pk", None) else None)
    hold.full_clean()
    hold._history_user = actor  # type: ignore[attr-defined]
    hold.save()
    record_event(
        "audit.legal_hold_placed",
        actor=actor,
        obj=hold,
        system_id=hold.system_id,
        reason=reason,
        data={"scope": system.slug if system is not None else "all", "reference": hold.reference},
    )
    return hold


@transaction.atomic
def legal_hold_release(*, actor: Any, hold: LegalHold, reason: str) -> LegalHold:
    """Release a legal hold (it stays on record); purges may run again unless another hold applies."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Releasing a legal hold needs a reason."]})
    hold = LegalHold.objects.select_for_update().get(pk=hold.pk)
    if hold.released_at is not None:
        raise ValidationError({"hold": [f"Legal hold #{hold.pk} was already released on {hold.released_at:%Y-%m-%d}."]})
    hold.released_at = timezone.now()
    hold.released_by = actor if getattr(actor, "pk", None) else None
    hold.release_reason = reason
    hold._history_user = actor  # type: ignore[attr-defined]
    hold.save(update_fields=["released_at", "released_by", "release_reason"])
    record_event(
        "audit.legal_hold_released",
        actor=actor,
        obj=hold,
        system_id=hold.system_id,
        reason=reason,
        before={"released_at": None},
        after={"released_at": hold.released_at},
    )
    return hold


# --- Art. 12(3): periods of use of a remote biometric identification system ----------------


@transaction.atomic
def biometric_use_start(
    *,
    actor: Any,
    system: Any,
    reference_database: str,
    started_at: Any = None,
    purpose: str = "",
    authorisation_ref: str = "",
) -> BiometricUse:
    """Open a period of use (Art. 12(3)(a)) of an Annex III 1(a) system against a reference database (b)."""
    if not system.is_remote_biometric:
        raise ValidationError(
            {"system": ["Only remote biometric identification systems (Annex III 1(a)) record uses."]}
        )
    reference_database = (reference_database or "").strip()
    if not reference_database:
        raise ValidationError({"reference_database": ["Name the reference database (and its version)."]})
    use = BiometricUse(
        system=system,
        started_at=started_at or timezone.now(),
        reference_database=reference_database,
        purpose=purpose or "",
        authorisation_ref=authorisation_ref or "",
        started_by=actor if getattr(actor, "pk", None) else None,
    )
    use.full_clean()
    use._history_user = actor  # type: ignore[attr-defined]
    use.save()
    record_event(
        "biometric_use.started",
        actor=actor,
        obj=use,
        system_id=system.pk,
        data={
            "started_at": use.started_at,
            "reference_database": use.reference_database,
            "authorisation_ref": use.authorisation_ref,
        },
    )
    return use


@transaction.atomic
def biometric_use_end(*, actor: Any, use: BiometricUse, ended_at: Any = None) -> BiometricUse:
    """Close a period of use (its end time is the second half of Art. 12(3)(a))."""
    use = BiometricUse.objects.select_for_update().get(pk=use.pk)
    if use.ended_at is not None:
        raise ValidationError({"ended_at": [f"This use already ended at {use.ended_at.isoformat()}."]})
    ended_at = ended_at or timezone.now()
    if ended_at < use.started_at:
        raise ValidationError({"ended_at": ["A use cannot end before it started."]})
    use.ended_at = ended_at
    use.ended_by = actor if getattr(actor, "pk", None) else None
    use._history_user = actor  # type: ignore[attr-defined]
    use.save(update_fields=["ended_at", "ended_by"])
    record_event(
        "biometric_use.ended",
        actor=actor,
        obj=use,
        system_id=use.system_id,
        before={"ended_at": None},
        after={"ended_at": use.ended_at},
    )
    return use
