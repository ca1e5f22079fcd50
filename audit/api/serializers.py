"""Serializers of the audit API: sealed events out, list filters in."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import ActorType, AuditEvent
from audit.services import payload_of


class AuditEventSerializer(serializers.ModelSerializer):
    """One sealed event as api-v1 "Audit" lists it, plus the fields a verifier needs."""

    actor = serializers.CharField(source="actor_name", help_text="The acting user's name, copied at the time.")
    actor_type = serializers.ChoiceField(choices=ActorType.choices)
    data = serializers.SerializerMethodField(
        help_text="The event's payload ({data, before, after}); null once lawfully purged."
    )

    class Meta:
        model = AuditEvent
        fields = (
            "seq",
            "at",
            "actor",
            "actor_type",
            "action",
            "object_type",
            "object_id",
            "object_label",
            "system_id",
            "case_id",
            "reason",
            "request_id",
            "data",
            "payload_sha256",
            "prev_hash",
            "hash",
        )
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_data(self, event: AuditEvent) -> dict[str, Any] | None:
        return payload_of(event)


class AuditEventFilterSerializer(serializers.Serializer):
    """Query parameters of ``GET /api/v1/audit/events/`` (validated: bad values are a 400 naming them)."""

    after_seq = serializers.IntegerField(required=False, min_value=0, help_text="Only events with a larger seq.")
    case = serializers.IntegerField(required=False, min_value=1, help_text="Case id.")
    system = serializers.CharField(required=False, max_length=80, help_text="System slug (or numeric id).")
    action = serializers.CharField(
        required=False,
        max_length=400,
        help_text="Action name, several separated by commas; 'case.*' matches a whole family.",
    )


class VerifyResultSerializer(serializers.Serializer):
    """Result of walking the chain."""

    ok = serializers.BooleanField()
    events = serializers.IntegerField(help_text="Sealed events verified (up to the first bad one).")
    head_hash = serializers.CharField(allow_null=True, help_text="Hash of the last good event.")
    first_bad_seq = serializers.IntegerField(allow_null=True)
    problem = serializers.CharField(allow_blank=True, help_text="What is wrong with the first bad event.")
