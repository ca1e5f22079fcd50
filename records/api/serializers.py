"""Serializers of the records API: the Art. 12(3) biometric record and periods of use."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from audit.api.serializers import parse_bound


class BiometricLogQuerySerializer(serializers.Serializer):
    """Query parameters of ``GET /api/v1/systems/{slug}/biometric-log/``."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "from": serializers.CharField(required=False, max_length=64,
                                          help_text="Searches received at or after this time (ISO 8601)."),
            "to": serializers.CharField(required=False, max_length=64,
                                        help_text="Searches received before this time (ISO 8601)."),
            "format": serializers.ChoiceField(choices=["json", "csv"], required=False, default="json"),
            "matches_only": serializers.BooleanField(required=False, default=False,
                                                     help_text="Only searches the AI or the final decision matched."),
            "include_input": serializers.BooleanField(
                required=False, default=True, help_text="Include each search's input while it is not purged."
            ),
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        out = {key: attrs[key] for key in ("format", "matches_only", "include_input")}
        for name in ("from", "to"):
            moment = None
            if attrs.get(name):
                seq, moment = parse_bound(attrs[name], name)
                if seq is not None:
                    raise serializers.ValidationError({name: ["must be an ISO 8601 time, not a number"]})
            out[name] = moment
        if out["from"] is not None and out["to"] is not None and out["from"] >= out["to"]:
            raise serializers.ValidationError({"to": ["must be after from"]})
        return out


class BiometricUseSerializer(serializers.Serializer):
    """A period of use of a remote biometric identification system (Art. 12(3)(a)-(b))."""

    id = serializers.IntegerField(read_only=True)
    started_at = serializers.DateTimeField(required=False, help_text="Default: now.")
    ended_at = serializers.DateTimeField(read_only=True, allow_null=True)
    reference_database = serializers.CharField(max_length=300, help_text="Name and version of the reference database.")
    purpose = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    authorisation_ref = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    started_by = serializers.SerializerMethodField()
    ended_by = serializers.SerializerMethodField()

    def get_started_by(self, use: Any) -> str | None:
        return use.started_by.get_username() if use.started_by else None

    def get_ended_by(self, use: Any) -> str | None:
        return use.ended_by.get_username() if use.ended_by else None


class BiometricUseEndSerializer(serializers.Serializer):
    ended_at = serializers.DateTimeField(required=False, help_text="Default: now.")


class TrainingDataQuerySerializer(serializers.Serializer):
    """``?from=&to=&format=jsonl|csv|parquet&include_subject=true``: cases by received time in ``[from, to)``."""

    # ``from`` is a Python keyword: declared under another name and mapped in ``to_internal_value``.
    from_ = serializers.CharField(required=False, help_text="ISO 8601 date or time (UTC when no zone); inclusive.")
    to = serializers.CharField(required=False, help_text="ISO 8601 date or time (UTC when no zone); exclusive.")
    format = serializers.ChoiceField(choices=["jsonl", "csv", "parquet"], required=False, default="jsonl")
    include_subject = serializers.BooleanField(
        required=False, default=False,
        help_text="Add the subject attributes (personal data): compliance officers and admins only.",
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        data = data.copy() if hasattr(data, "copy") else dict(data)
        if "from" in data:
            data["from_"] = data.pop("from")[-1] if hasattr(data, "getlist") else data.pop("from")
        values = super().to_internal_value(data)
        for name, key in (("from_", "from"), ("to", "to")):
            if values.get(name):
                seq, moment = parse_bound(values[name], key)
                if seq is not None:
                    raise serializers.ValidationError({key: ["must be an ISO 8601 date or time"]})
                values[name] = moment
        if values.get("from_") and values.get("to") and values["to"] <= values["from_"]:
            raise serializers.ValidationError({"to": ["must be after from"]})
        return values
