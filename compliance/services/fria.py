"""Fundamental rights impact assessments (Art. 27): every save is a new, immutable version."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from audit.canonical import canonical_json, sha256_hex
from audit.services import record_event
from compliance.models import FundamentalRightsAssessment
from reviews.models import AISystem

# The Art. 27(1) contents, in order: (a) to (f).
FRIA_FIELDS: tuple[str, ...] = (
    "processes", "period_and_frequency", "affected_persons", "risks_of_harm", "human_oversight", "mitigation",
)
FRIA_LETTERS = dict(zip(FRIA_FIELDS, "abcdef", strict=True))
MAX_FIELD_CHARS = 20_000


@transaction.atomic
def fria_save(
    *,
    actor: Any,
    system: AISystem,
    contents: dict[str, str],
    first_use_on: date | None = None,
    authority_notified_on: date | None = None,
    change_summary: str = "",
) -> FundamentalRightsAssessment:
    """Save a new FRIA version; (a)-(f) are all required (Art. 27(1))."""
    errors: dict[str, list[str]] = {}
    for name in FRIA_FIELDS:
        value = contents.get(name)
        if not isinstance(value, str) or not value.strip():
            errors[name] = [f"required: Art. 27(1)({FRIA_LETTERS[name]})"]
        elif len(value) > MAX_FIELD_CHARS or "\x00" in value:
            errors[name] = [f"at most {MAX_FIELD_CHARS} characters of text"]
    unknown = sorted(set(contents) - set(FRIA_FIELDS))
    for name in unknown:
        errors[name] = ["not a FRIA field"]
    if errors:
        raise ValidationError(errors)
    # Lock the system row: two saves at once get consecutive versions, not a clash.
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    previous = FundamentalRightsAssessment.objects.filter(system=system).aggregate(v=Max("version"))["v"] or 0
    fria = FundamentalRightsAssessment(
        system=system, version=previous + 1, first_use_on=first_use_on, authority_notified_on=authority_notified_on,
        change_summary=change_summary.strip()[:500], created_by=actor,
        **{name: contents[name].strip() for name in FRIA_FIELDS},
    )
    fria.full_clean()
    fria._history_user = actor  # type: ignore[attr-defined]
    try:
        with transaction.atomic():
            fria.save()
    except IntegrityError as exc:
        raise ValidationError({"version": ["another version was saved at the same time; try again"]}) from exc
    digest = sha256_hex(canonical_json({name: getattr(fria, name) for name in FRIA_FIELDS}))
    record_event(
        "fria.saved", actor=actor, obj=fria, system_id=system.pk, reason=fria.change_summary,
        data={"version": fria.version, "previous_version": previous or None, "contents_sha256": digest,
              "first_use_on": first_use_on, "authority_notified_on": authority_notified_on},
    )
    return fria
