"""Input validation and representation of the compliance workspace API.

Serializers validate shapes; the rules (what a tier implies, when an obligation
may be met, what a FRIA must hold) live in the services, whose errors name the
field as well.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from compliance.classification import (
    ANNEX_III_POINTS,
    ART50_DUTIES,
    EXCEPTION_6_3,
    PROHIBITED_PRACTICES,
    SCOPE_EXCLUSIONS,
)
from compliance.models import FundamentalRightsAssessment, Obligation, ObligationEvidence, ObligationStatus, Requirement
from compliance.services.fria import FRIA_FIELDS, MAX_FIELD_CHARS
from reviews.api.serializers.systems import (
    RejectUnknownFieldsMixin,
    StrictBooleanField,
    StrictCharField,
    enum_field,
)
from reviews.models import AISystem


def _choice_list(name: str, choices: dict[str, Any], help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=enum_field(name, [(key, key) for key in choices]), required=False, max_length=len(choices),
        help_text=help_text,
    )


class ClassificationAnswersSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """The answers of the classification wizard, in the regulation's decision order."""

    scope_exclusions = _choice_list("ScopeExclusionEnum", SCOPE_EXCLUSIONS,
                                    "Art. 2 exclusions that hold (open_source only counts for minimal-risk systems).")
    prohibited_practices = _choice_list("ProhibitedPracticeEnum", PROHIBITED_PRACTICES,
                                        "Art. 5(1) points (a)-(h) the system performs.")
    annex_i_product = StrictBooleanField(required=False, default=False,
                                         help_text="Safety component of an Annex I product needing third-party "
                                                   "conformity assessment (Art. 6(1)).")
    annex_iii = _choice_list("AnnexIIIPointEnum", ANNEX_III_POINTS, 'Annex III use cases, e.g. ["5b"].')
    exception_6_3 = _choice_list("Exception63Enum", EXCEPTION_6_3, "Art. 6(3) conditions (a)-(d) that hold.")
    profiling = StrictBooleanField(required=False, default=False,
                                   help_text="The system profiles natural persons (rules out the 6(3) exception).")
    art50 = _choice_list("Art50DutyEnum", ART50_DUTIES, "Art. 50 duties that apply: 50.1-50.4.")
    reason = StrictCharField(max_length=2000, required=False, allow_blank=True, write_only=True)

    def answers(self) -> dict[str, Any]:
        data = dict(self.validated_data)
        data.pop("reason", None)
        return data


class ClassificationSerializer(serializers.Serializer):
    """A system's tiers and its stored classification."""

    system = serializers.CharField(source="slug")
    declared_tier = serializers.CharField(allow_null=True)
    classified_tier = serializers.CharField(allow_null=True)
    risk_tier = serializers.CharField(allow_null=True, help_text="The effective tier: the classified tier wins.")
    annex_iii_area = serializers.CharField(allow_null=True)
    classified_at = serializers.DateTimeField(allow_null=True)
    status = serializers.CharField()
    rationale = serializers.JSONField(source="classification_rationale")

    def to_representation(self, instance: AISystem) -> dict[str, Any]:
        data = super().to_representation(instance)
        for name in ("declared_tier", "classified_tier", "annex_iii_area"):
            data[name] = getattr(instance, name) or None
        data["risk_tier"] = instance.risk_tier or None
        return data


class EvidenceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.CharField()
    url = serializers.SerializerMethodField()
    sha256 = serializers.CharField(allow_null=True)
    portal_kind = serializers.CharField(allow_null=True)
    added_by = serializers.SerializerMethodField()
    added_at = serializers.DateTimeField()

    def get_url(self, evidence: ObligationEvidence) -> str | None:
        """A link's address, or the permission-checked download of a file."""
        if evidence.kind == "file":
            return reverse("compliance:evidence_download", args=[evidence.obligation.system.slug, evidence.pk])
        return evidence.url or None

    def get_added_by(self, evidence: ObligationEvidence) -> str | None:
        return evidence.added_by.get_username() if evidence.added_by else None

    def to_representation(self, instance: ObligationEvidence) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["sha256"] = instance.sha256 or None
        data["portal_kind"] = instance.portal_kind or None
        return data


class ObligationSerializer(serializers.Serializer):
    """One obligation: ``{ref, framework, summary, status, owner, evidence, due}`` and more."""

    ref = serializers.CharField(source="requirement.ref")
    framework = serializers.CharField(source="requirement.framework")
    title = serializers.CharField(source="requirement.title")
    summary = serializers.CharField(source="requirement.summary")
    duty_holder = serializers.CharField(source="requirement.duty_holder", allow_null=True)
    status = serializers.CharField()
    owner = serializers.SerializerMethodField()
    due = serializers.DateField(source="due_date", allow_null=True)
    evidence = EvidenceSerializer(many=True)
    portal_evidence = serializers.CharField(source="requirement.evidence_kind", allow_null=True,
                                            help_text="What the portal can produce itself as evidence, if anything.")
    applicable = serializers.BooleanField()
    note = serializers.CharField()
    related = serializers.SerializerMethodField(help_text="Crosswalk: refs of rows in other frameworks.")
    catalog = serializers.CharField(source="requirement.catalog.version")
    updated_at = serializers.DateTimeField()

    def get_owner(self, obligation: Obligation) -> str | None:
        return obligation.owner.get_username() if obligation.owner_id and obligation.owner else None

    def get_related(self, obligation: Obligation) -> list[str]:
        return [r.ref for r in obligation.requirement.related.all()]

    def to_representation(self, instance: Obligation) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["duty_holder"] = instance.requirement.duty_holder or None
        data["portal_evidence"] = instance.requirement.evidence_kind or None
        return data


class ObligationUpdateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """A change of an obligation; JSON, or multipart when a file is attached."""

    status = enum_field("ObligationStatusEnum", ObligationStatus.choices, required=False)
    owner = StrictCharField(max_length=150, required=False, allow_null=True,
                            help_text="Username of a compliance officer, manager or admin; null clears it.")
    due = serializers.DateField(required=False, allow_null=True)
    note = StrictCharField(max_length=10_000, required=False, allow_blank=True)
    evidence_url = serializers.URLField(max_length=2000, required=False)
    evidence_title = StrictCharField(max_length=200, required=False, allow_blank=True)
    evidence_file = serializers.FileField(required=False, max_length=200)
    capture_portal_evidence = serializers.BooleanField(
        required=False, default=False, help_text="Attach a dated, hashed snapshot of the evidence the portal produces.")
    reason = StrictCharField(max_length=2000, required=False, allow_blank=True)

    def to_internal_value(self, data: Any) -> Any:
        # Multipart forms carry text only: accept "true"/"false" there, strict types in JSON.
        if hasattr(data, "getlist"):
            data = {key: data.get(key) for key in data}
            for key in ("owner", "status", "due", "note", "evidence_title", "reason"):
                if key in data and data[key] is not None and not isinstance(data[key], str):
                    data[key] = str(data[key])
        return super().to_internal_value(data)


class RequirementSerializer(serializers.Serializer):
    """One catalog row with its crosswalk and both date sets."""

    ref = serializers.CharField()
    framework = serializers.CharField()
    group = serializers.CharField()
    level = serializers.CharField()
    title = serializers.CharField()
    summary = serializers.CharField()
    duty_holder = serializers.CharField(allow_null=True)
    applies_to = serializers.ListField(child=serializers.CharField())
    conditions = serializers.JSONField()
    applies_from_original = serializers.DateField(allow_null=True)
    applies_from_amended = serializers.DateField(allow_null=True)
    annex_i_from_original = serializers.DateField(allow_null=True)
    annex_i_from_amended = serializers.DateField(allow_null=True)
    evidence_kind = serializers.CharField(allow_null=True)
    related = serializers.SerializerMethodField()

    def get_related(self, requirement: Requirement) -> list[str]:
        return [r.ref for r in requirement.related.all()]

    def to_representation(self, instance: Requirement) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["duty_holder"] = instance.duty_holder or None
        data["evidence_kind"] = instance.evidence_kind or None
        return data


class FriaInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """A new FRIA version: Art. 27(1)(a)-(f), all required."""

    processes = StrictCharField(max_length=MAX_FIELD_CHARS, help_text="(a) processes in which the system is used")
    period_and_frequency = StrictCharField(max_length=MAX_FIELD_CHARS, help_text="(b) period and frequency of use")
    affected_persons = StrictCharField(max_length=MAX_FIELD_CHARS, help_text="(c) categories of persons affected")
    risks_of_harm = StrictCharField(max_length=MAX_FIELD_CHARS, help_text="(d) specific risks of harm")
    human_oversight = StrictCharField(max_length=MAX_FIELD_CHARS, help_text="(e) how human oversight is implemented")
    mitigation = StrictCharField(max_length=MAX_FIELD_CHARS,
                                 help_text="(f) measures if risks materialise, governance, complaints")
    first_use_on = serializers.DateField(required=False, allow_null=True)
    authority_notified_on = serializers.DateField(required=False, allow_null=True)
    change_summary = StrictCharField(max_length=500, required=False, allow_blank=True)

    def contents(self) -> dict[str, str]:
        return {name: self.validated_data[name] for name in FRIA_FIELDS}


class FriaSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    processes = serializers.CharField()
    period_and_frequency = serializers.CharField()
    affected_persons = serializers.CharField()
    risks_of_harm = serializers.CharField()
    human_oversight = serializers.CharField()
    mitigation = serializers.CharField()
    first_use_on = serializers.DateField(allow_null=True)
    authority_notified_on = serializers.DateField(allow_null=True)
    change_summary = serializers.CharField()
    created_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_created_by(self, fria: FundamentalRightsAssessment) -> str | None:
        return fria.created_by.get_username() if fria.created_by else None
