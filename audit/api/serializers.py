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
    # The API field is named "data"; the stubs know only Serializer.data (the rendered dict).
    data = serializers.SerializerMethodField(  # type: ignore[assignment]
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


class VerifyReportSerializer(VerifyResultSerializer):
    """Result of walking the chain, with the signed checkpoints it checked."""

    checkpoints = serializers.IntegerField(help_text="Signed checkpoints verified (signature and chain hash).")
    last_checkpoint_seq = serializers.IntegerField(allow_null=True, help_text="Seq of the last verified checkpoint.")
    witness = serializers.CharField(
        help_text="Kind of external witness of the checkpoints (HITL_AUDIT_WITNESS): file, syslog, http or none."
    )
    witness_checked = serializers.BooleanField(
        help_text="Whether the chain was compared with the witness (a syslog witness cannot be read back)."
    )
    witnessed_checkpoints = serializers.IntegerField(help_text="Signed checkpoints the witness holds.")
    last_witnessed_seq = serializers.IntegerField(
        allow_null=True, help_text="Seq of the last checkpoint the witness holds; the chain must reach it."
    )


def _messages_of(detail: Any, field: str) -> list[Any]:
    """The messages a ``ValidationError({field: [...]})`` holds for ``field``."""
    return list(detail[field]) if isinstance(detail, dict) else list(detail)


def parse_bound(value: str, field: str) -> tuple[int | None, Any]:
    """A range bound: digits are a ``seq``; otherwise a time (``hitl_portal.api.dates.parse_moment``)."""
    from hitl_portal.api.dates import parse_moment

    text = value.strip()
    if text.isdigit():
        if len(text) > 18:
            raise serializers.ValidationError({field: ["seq is too large"]})
        return int(text), None
    try:
        return None, parse_moment(text, field)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError(
            {field: ["must be a seq (a whole number) or an ISO 8601 time such as 2026-01-31T12:00:00Z; "
                     + " ".join(str(m) for m in _messages_of(exc.detail, field))]}
        ) from None


class ExportQuerySerializer(serializers.Serializer):
    """Query parameters of ``GET /api/v1/audit/export/``.

    ``from`` and ``to`` each take a seq (digits; both bounds inclusive) or an ISO 8601
    time (``from`` inclusive, ``to`` exclusive). The export is the unbroken stretch of
    the chain between the first and last event selected.
    """

    # ``from`` is a Python keyword: declared through ``get_fields``.
    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "from": serializers.CharField(required=False, max_length=64,
                                          help_text="First seq (inclusive) or start time (inclusive, ISO 8601)."),
            "to": serializers.CharField(required=False, max_length=64,
                                        help_text="Last seq (inclusive) or end time (exclusive, ISO 8601)."),
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        bounds: dict[str, Any] = {"from_seq": None, "to_seq": None, "from_time": None, "to_time": None}
        if attrs.get("from"):
            bounds["from_seq"], bounds["from_time"] = parse_bound(attrs["from"], "from")
        if attrs.get("to"):
            bounds["to_seq"], bounds["to_time"] = parse_bound(attrs["to"], "to")
        if bounds["from_seq"] is not None and bounds["to_seq"] is not None and bounds["from_seq"] > bounds["to_seq"]:
            raise serializers.ValidationError({"to": ["must not be before from"]})
        start, end = bounds["from_time"], bounds["to_time"]
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"to": ["must be after from"]})
        return bounds


