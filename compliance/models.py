"""Compliance workspace models: the requirements catalog, obligations with evidence, FRIA."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from reviews.models import AISystem, tracked_history


class Framework(models.TextChoices):
    EU_AI_ACT = "EU_AI_ACT", "EU AI Act (Regulation (EU) 2024/1689)"
    NIST_AI_RMF = "NIST_AI_RMF", "NIST AI RMF 1.0"
    ISO_42001 = "ISO_42001", "ISO/IEC 42001:2023 Annex A"


class DutyHolder(models.TextChoices):
    PROVIDER = "provider", "Provider"
    DEPLOYER = "deployer", "Deployer"
    BOTH = "both", "Provider and deployer"


class DateBasis(models.TextChoices):
    ORIGINAL = "original", "As published (OJ, 12 July 2024)"
    AMENDED = "amended", "As amended (Digital Omnibus on AI, reported)"


class CatalogVersion(models.Model):
    """One published version of the requirements catalog; exactly one is current.

    Catalog rows never change in place: a correction is a new version loaded by a
    new data migration, so every obligation keeps pointing at the text it was
    generated from.
    """

    version = models.CharField(max_length=20, unique=True)
    title = models.CharField(max_length=200)
    published_on = models.DateField()
    sources = models.TextField(blank=True)
    notes = models.TextField(blank=True)
    # Which of the two date sets obligations' due dates follow (both are always shown).
    date_basis = models.CharField(max_length=10, choices=DateBasis.choices, default=DateBasis.AMENDED)
    is_current = models.BooleanField(default=False)
    loaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-published_on", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_current"], condition=Q(is_current=True), name="catalogversion_one_current"
            ),
            models.CheckConstraint(condition=Q(date_basis__in=DateBasis.values), name="catalogversion_basis_valid"),
        ]

    def __str__(self) -> str:
        return f"Catalog {self.version}"


class Milestone(models.Model):
    """A date of application with both date sets (original and amended), e.g. the Annex III regime."""

    catalog = models.ForeignKey(CatalogVersion, on_delete=models.CASCADE, related_name="milestones")
    key = models.SlugField(max_length=40)
    title = models.CharField(max_length=200)
    applies = models.TextField(blank=True)
    original_date = models.DateField()
    amended_date = models.DateField()
    amendment_note = models.TextField(blank=True)

    class Meta:
        ordering = ["original_date", "key"]
        constraints = [
            models.UniqueConstraint(fields=["catalog", "key"], name="milestone_unique_key_per_catalog"),
        ]

    def __str__(self) -> str:
        return self.title


class Requirement(models.Model):
    """One catalog row: an EU AI Act article/paragraph/point, a NIST AI RMF entry or an ISO 42001 control.

    ``applies_to`` (tiers) and ``conditions`` decide, with the duty holder, which
    systems it becomes an obligation for (``compliance.classification.requirement_applies``);
    an empty ``applies_to`` marks a reference row (structure, classification grounds).
    """

    catalog = models.ForeignKey(CatalogVersion, on_delete=models.PROTECT, related_name="requirements")
    ref = models.CharField(max_length=40)
    framework = models.CharField(max_length=12, choices=Framework.choices)
    # Grouping label: "Art. 14", "Annex IV", "GOVERN 2", "A.9".
    group = models.CharField(max_length=40)
    level = models.CharField(max_length=16, blank=True)
    title = models.CharField(max_length=200)
    summary = models.TextField()
    duty_holder = models.CharField(max_length=10, choices=DutyHolder.choices, blank=True)
    applies_to = models.JSONField(default=list, blank=True)
    conditions = models.JSONField(default=dict, blank=True)
    # What the portal can produce itself as evidence ("intervention_points", "audit_chain", ...).
    evidence_kind = models.CharField(max_length=32, blank=True)
    milestone = models.ForeignKey(
        Milestone, null=True, blank=True, on_delete=models.PROTECT, related_name="requirements"
    )
    applies_from_original = models.DateField(null=True, blank=True)
    applies_from_amended = models.DateField(null=True, blank=True)
    # Art. 6(1) route (Annex I products) where it differs from the general dates.
    annex_i_milestone = models.ForeignKey(
        Milestone, null=True, blank=True, on_delete=models.PROTECT, related_name="annex_i_requirements"
    )
    annex_i_from_original = models.DateField(null=True, blank=True)
    annex_i_from_amended = models.DateField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)
    # Crosswalk between frameworks (e.g. NIST MANAGE 2.4 ↔ Art. 14(4)(d)-(e)).
    related = models.ManyToManyField("self", blank=True, symmetrical=True)

    class Meta:
        ordering = ["catalog", "position"]
        constraints = [
            models.UniqueConstraint(fields=["catalog", "ref"], name="requirement_unique_ref_per_catalog"),
            models.CheckConstraint(condition=Q(framework__in=Framework.values), name="requirement_framework_valid"),
            models.CheckConstraint(
                condition=~Q(framework="EU_AI_ACT") | ~Q(duty_holder=""), name="requirement_eu_has_duty_holder"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ref} {self.title}"


# --- Obligations per system ---------------------------------------------------------------------


class ObligationStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    MET = "met", "Met"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class Obligation(models.Model):
    """A catalog requirement applied to one system by its tier and our role."""

    system = models.ForeignKey(AISystem, on_delete=models.CASCADE, related_name="obligations")
    requirement = models.ForeignKey(Requirement, on_delete=models.PROTECT, related_name="obligations")
    status = models.CharField(max_length=16, choices=ObligationStatus.choices, default=ObligationStatus.OPEN)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    due_date = models.DateField(null=True, blank=True)
    note = models.TextField(blank=True)
    # False once a re-classification made the requirement stop applying (kept, never deleted).
    applicable = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = tracked_history()

    class Meta:
        ordering = ["system", "requirement__position"]
        constraints = [
            models.UniqueConstraint(fields=["system", "requirement"], name="obligation_unique_per_system"),
            models.CheckConstraint(condition=Q(status__in=ObligationStatus.values), name="obligation_status_valid"),
        ]
        indexes = [models.Index(fields=["system", "status"], name="obligation_system_status_idx")]

    def __str__(self) -> str:
        return f"{self.system_id}:{self.requirement.ref}"


class EvidenceKind(models.TextChoices):
    FILE = "file", "Uploaded file"
    LINK = "link", "Link"
    PORTAL = "portal", "Produced by the portal"


def evidence_upload_to(instance: ObligationEvidence, filename: str) -> str:
    """Evidence files per system, outside any public static path (served through a permission check)."""
    return f"evidence/{instance.obligation.system.slug}/{filename}"


class ObligationEvidence(models.Model):
    """One piece of evidence for an obligation: a file, a link, or a dated snapshot the portal produced."""

    obligation = models.ForeignKey(Obligation, on_delete=models.CASCADE, related_name="evidence")
    kind = models.CharField(max_length=8, choices=EvidenceKind.choices)
    title = models.CharField(max_length=200)
    url = models.URLField(max_length=2000, blank=True)
    file = models.FileField(upload_to=evidence_upload_to, max_length=300, blank=True)
    # For portal evidence: what was captured (e.g. "audit_chain") and the snapshot itself.
    portal_kind = models.CharField(max_length=32, blank=True)
    snapshot = models.JSONField(default=dict, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    history = tracked_history()

    class Meta:
        ordering = ["added_at", "id"]
        verbose_name_plural = "obligation evidence"
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=EvidenceKind.values), name="evidence_kind_valid"),
            models.CheckConstraint(condition=~Q(kind="link") | ~Q(url=""), name="evidence_link_has_url"),
            models.CheckConstraint(condition=~Q(kind="file") | ~Q(file=""), name="evidence_file_has_file"),
        ]

    def __str__(self) -> str:
        return self.title


# --- Fundamental rights impact assessment (Art. 27) ---------------------------------------------


class FundamentalRightsAssessment(models.Model):
    """One version of a system's FRIA with the Art. 27(1) contents (a)-(f); every save is a new version."""

    system = models.ForeignKey(AISystem, on_delete=models.CASCADE, related_name="frias")
    version = models.PositiveIntegerField()
    processes = models.TextField(help_text="(a) the deployer's processes in which the system is used")
    period_and_frequency = models.TextField(help_text="(b) period of time and frequency of use")
    affected_persons = models.TextField(help_text="(c) categories of persons and groups likely affected")
    risks_of_harm = models.TextField(help_text="(d) specific risks of harm to those persons or groups")
    human_oversight = models.TextField(help_text="(e) how human oversight is implemented")
    mitigation = models.TextField(help_text="(f) measures if risks materialise, governance, complaints")
    first_use_on = models.DateField(null=True, blank=True)
    authority_notified_on = models.DateField(null=True, blank=True)
    change_summary = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = tracked_history()

    class Meta:
        ordering = ["system", "-version"]
        verbose_name = "fundamental rights impact assessment"
        constraints = [
            models.UniqueConstraint(fields=["system", "version"], name="fria_unique_version_per_system"),
            models.CheckConstraint(condition=Q(version__gte=1), name="fria_version_positive"),
        ]

    def __str__(self) -> str:
        return f"FRIA v{self.version} of {self.system_id}"


# --- Art. 86: the affected person's explanation and appeal channel --------------------


class CaseReference(models.Model):
    """The verification code the deployer gave the affected person for one case (Art. 86).

    Only a keyed hash of the code is kept: the code is shown once by the API that
    issues it. Reissuing replaces the hash, so the old code stops working.
    """

    case = models.OneToOneField("reviews.Case", on_delete=models.CASCADE, related_name="explanation_reference")
    code_hash = models.CharField(max_length=64)
    issued_at = models.DateTimeField()
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")

    def __str__(self) -> str:
        return f"reference of case {self.case_id}"


class ExplanationStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    ANSWERED = "answered", "Answered"
    CONTESTED = "contested", "Contested (case reopened)"
    CLOSED = "closed", "Closed"


class ExplanationRequest(models.Model):
    """One affected person's request for an explanation of a decision about them (Art. 86)."""

    case = models.ForeignKey("reviews.Case", on_delete=models.PROTECT, related_name="explanation_requests")
    status = models.CharField(max_length=10, choices=ExplanationStatus.choices, default=ExplanationStatus.RECEIVED)
    # What the person asked and where they want the answer; both optional, both theirs.
    message = models.TextField(blank=True)
    contact = models.EmailField(blank=True)
    received_at = models.DateTimeField()
    deadline = models.DateTimeField()
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    officer_note = models.TextField(blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    # The letter as sent: its bytes are kept so that the hash in the audit trail can be re-checked.
    letter_html = models.TextField(blank=True)
    letter_pdf = models.BinaryField(blank=True, default=b"")
    letter_sha256 = models.CharField(max_length=64, blank=True)
    letter_pdf_sha256 = models.CharField(max_length=64, blank=True)
    contested_at = models.DateTimeField(null=True, blank=True)
    contest_reason = models.TextField(blank=True)
    contested_by_officer = models.BooleanField(default=False)
    # The final label the contest was against: a later final label that differs is an overturn.
    label_at_contest = models.CharField(max_length=100, null=True, blank=True)

    # The letter's bytes stay out of the history rows (its hash is in the audit trail).
    history = tracked_history(excluded_fields=["letter_html", "letter_pdf"])

    class Meta:
        ordering = ["deadline", "pk"]
        indexes = [models.Index(fields=["status", "deadline"], name="explanation_status_deadline")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ExplanationStatus.values),
                                   name="explanation_status_valid"),
            models.CheckConstraint(condition=Q(answered_at__isnull=True) | ~Q(letter_sha256=""),
                                   name="explanation_answer_has_letter"),
        ]

    def __str__(self) -> str:
        return f"Art. 86 request #{self.pk} (case {self.case_id})"
