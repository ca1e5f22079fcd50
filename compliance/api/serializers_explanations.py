"""Serializers of the Art. 86 API (officers' requests, the integration's reference)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from compliance.models import ExplanationRequest, ExplanationStatus


class ReferenceSerializer(serializers.Serializer):
    case = serializers.IntegerField()
    system = serializers.CharField()
    external_id = serializers.CharField()
    code = serializers.CharField(help_text="Shown once: give it to the affected person with the external id.")
    issued_at = serializers.DateTimeField()


# Named apart from the case's ``prediction.explanation`` (its request component would also be
# "ExplanationRequest").
@extend_schema_serializer(component_name="Art86ExplanationRequest")
class ExplanationRequestSerializer(serializers.ModelSerializer):
    system = serializers.CharField(source="case.system.slug")
    external_id = serializers.CharField(source="case.external_id")
    assignee = serializers.SerializerMethodField()
    note = serializers.CharField(source="officer_note")
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = ExplanationRequest
        fields = ["id", "case", "system", "external_id", "status", "received_at", "deadline", "overdue",
                  "assignee", "note", "answered_at", "letter_sha256", "letter_pdf_sha256", "contested_at",
                  "contested_by_officer"]
        read_only_fields = fields

    def get_assignee(self, obj: ExplanationRequest) -> str | None:
        return obj.assignee.username if obj.assignee is not None else None

    def get_overdue(self, obj: ExplanationRequest) -> bool:
        from django.utils import timezone

        return obj.answered_at is None and obj.status != ExplanationStatus.CLOSED and obj.deadline < timezone.now()


class ExplanationUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ExplanationStatus.choices, required=False)
    assignee = serializers.CharField(required=False, allow_null=True, help_text="An officer's username, or null.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(self.initial_data) - set(self.fields) if isinstance(self.initial_data, dict) else set()
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in sorted(unknown)})
        if not attrs:
            raise serializers.ValidationError({"non_field_errors": ["Give status, assignee or note."]})
        return attrs
