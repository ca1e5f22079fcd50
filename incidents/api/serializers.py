"""Input validation and representation of the incident register (``/api/v1/incidents/``)."""

from __future__ import annotations

from typing import Any, cast

from django.utils import timezone
from rest_framework import serializers

from incidents.models import Incident, IncidentKind, IncidentStatus
from incidents.selectors import incident_clock, is_overdue
from incidents.services import DESCRIPTION_MAX, NOTE_MAX
from reviews.api.serializers.systems import StrictCharField

MAX_PK = 2**63 - 1


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, never a string or a boolean that merely looks like one."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class IncidentCreateSerializer(serializers.Serializer):
    """``POST /incidents/``: the system (slug), the kind, when we became aware, what happened, an optional case."""

    system = StrictCharField(max_length=80, help_text="The AI system's slug.")
    kind = serializers.ChoiceField(choices=IncidentKind.choices)
    aware_at = serializers.DateTimeField(help_text="When the organisation became aware (starts the Art. 73 clock).")
    description = StrictCharField(max_length=DESCRIPTION_MAX)
    case = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_PK,
                              help_text="Id of a case of the same system, when the incident concerns one.")
    title = StrictCharField(required=False, allow_blank=True, max_length=200)


class IncidentUpdateSerializer(serializers.Serializer):
    """``PATCH /incidents/{id}/``: the next status and/or a note."""

    status = serializers.ChoiceField(choices=IncidentStatus.choices, required=False)
    note = StrictCharField(required=False, allow_blank=True, max_length=NOTE_MAX, trim_whitespace=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("status") and not attrs.get("note"):
            raise serializers.ValidationError({"status": ["Give the next status, a note, or both."]})
        return attrs


class IncidentSerializer(serializers.Serializer):
    """One incident of the register, with its Art. 73 clock."""

    id = serializers.IntegerField(read_only=True)
    system = serializers.SerializerMethodField()
    case = serializers.IntegerField(source="case_id", allow_null=True, read_only=True)
    kind = serializers.CharField(read_only=True)
    # A declared field (DRF pops it off the class), not the stub's Field.source attribute.
    source = serializers.CharField(read_only=True)  # type: ignore[assignment]
    source_ref = serializers.CharField(read_only=True)
    title = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    aware_at = serializers.DateTimeField(read_only=True)
    report_due_at = serializers.DateTimeField(read_only=True, allow_null=True,
                                              help_text="Art. 73 deadline; null for bias and other.")
    status = serializers.CharField(read_only=True)
    overdue = serializers.SerializerMethodField()
    clock = serializers.SerializerMethodField()
    initial_report_at = serializers.DateTimeField(read_only=True, allow_null=True)
    full_report_at = serializers.DateTimeField(read_only=True, allow_null=True)
    closed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    overdue_alerted_at = serializers.DateTimeField(read_only=True, allow_null=True)
    notes = serializers.CharField(read_only=True)
    created_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def get_system(self, incident: Incident) -> str | None:
        return incident.system.slug if incident.system is not None else None

    def get_overdue(self, incident: Incident) -> bool:
        return is_overdue(incident, now=self._now())

    def get_clock(self, incident: Incident) -> str:
        """``none``, ``running``, ``overdue`` or ``reported``."""
        return incident_clock(incident, now=self._now()).state

    def get_created_by(self, incident: Incident) -> str | None:
        return incident.created_by.get_username() if incident.created_by is not None else None

    def _now(self) -> Any:
        # One "now" per response, so every incident in a list is judged at the same instant.
        # The context is the dict the view handed in (the stub types it as a read-only Mapping).
        context = cast(dict[str, Any], self.context)
        if "now" not in context:
            context["now"] = timezone.now()
        return context["now"]
