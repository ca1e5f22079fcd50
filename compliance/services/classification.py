"""Storing a system's EU AI Act classification: the classified tier wins over the declared one.

The decision itself is pure (``compliance.classification.classify``); this service
stores it on the system with its rationale (history kept by simple-history, the
event ``system.classified``), blocks a prohibited system (``system.blocked``: the
ingest refuses its cases with 409 ``system_prohibited``), and regenerates the
system's obligations from the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import record_event
from compliance.classification import Answers, Classification, classify
from compliance.selectors.catalog import current_catalog
from compliance.services.obligations import SyncResult, obligations_sync
from reviews.models import AISystem, RiskTier, SystemStatus
from reviews.services.systems import _check_points_allow_remote_biometric

CLASSIFICATION_FIELDS = ("classified_tier", "annex_iii_area", "classified_at")


@transaction.atomic
def system_classify(
    *, actor: Any, system: AISystem, answers: Mapping[str, Any] | Answers, reason: str = ""
) -> tuple[AISystem, Classification, SyncResult]:
    """Classify the system from the answers, store tier and rationale, block if prohibited, sync obligations."""
    parsed = answers if isinstance(answers, Answers) else Answers.from_mapping(answers)
    result = classify(parsed)
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    catalog = current_catalog()

    if result.annex_iii_area == "1a" and not system.is_remote_biometric:
        # The same rule the registration enforces: 1(a) needs four eyes and no SLA auto-accept.
        try:
            _check_points_allow_remote_biometric(system)
        except ValidationError as exc:
            raise ValidationError({"annex_iii": exc.message_dict.get("annex_iii_area", exc.messages)}) from exc

    before = {name: getattr(system, name) for name in (*CLASSIFICATION_FIELDS, "status")}
    system.classified_tier = result.tier
    system.annex_iii_area = result.annex_iii_area
    system.classification_rationale = {
        **result.as_rationale(),
        "catalog_version": catalog.version,
        "reason": reason,
        "classified_by": actor.get_username() if actor is not None else "system",
    }
    system.classified_at = timezone.now()
    system._history_user = actor  # type: ignore[attr-defined]
    system.full_clean()
    system.save(update_fields=["classified_tier", "annex_iii_area", "classification_rationale", "classified_at",
                               "updated_at"])
    record_event(
        "system.classified", actor=actor, obj=system, system_id=system.pk, reason=reason,
        before={k: before[k] for k in CLASSIFICATION_FIELDS},
        after={name: getattr(system, name) for name in CLASSIFICATION_FIELDS},
        data={"outcome": result.outcome, "summary": result.summary, "annex_iii_points": list(result.annex_iii_points),
              "annex_i": result.annex_i, "exception_6_3_applied": result.exception_6_3_applied,
              "profiling_override": result.profiling_override, "art50_duties": list(result.art50_duties),
              "prohibited_practices": list(result.prohibited_practices), "catalog_version": catalog.version},
    )

    if system.risk_tier == RiskTier.PROHIBITED and system.status != SystemStatus.BLOCKED:
        _set_status(actor, system, SystemStatus.BLOCKED,
                    "Classified as a prohibited practice (Art. 5): cases are refused.", "system.blocked")
    elif system.status == SystemStatus.BLOCKED and system.risk_tier != RiskTier.PROHIBITED:
        # Not simply reopened: halted, so every case goes to people until someone resumes it.
        _set_status(actor, system, SystemStatus.HALTED,
                    "Re-classified as not prohibited: halted until resumed.", "system.halted")
    sync = obligations_sync(actor=actor, system=system)
    return system, result, sync


def _set_status(actor: Any, system: AISystem, status: str, reason: str, action: str) -> None:
    before = system.status
    system.status = status
    system.status_reason = reason
    system.status_changed_at = timezone.now()
    system._history_user = actor  # type: ignore[attr-defined]
    system.save(update_fields=["status", "status_reason", "status_changed_at", "updated_at"])
    record_event(action, actor=actor, obj=system, system_id=system.pk, reason=reason,
                 before={"status": before}, after={"status": status})
