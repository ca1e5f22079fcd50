"""Core domain of human oversight: AI systems, intervention points, people, cases, decisions.

Behaviour lives in ``services.py`` (writes) and ``selectors.py`` (reads); the
models carry data and the invariants the database can enforce.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from hitl_portal.actors import get_history_user

# Art. 19 / 26(6): logs of a high-risk system are kept at least six months.
MIN_RETENTION_DAYS = 183


def default_required_trainings() -> list[str]:
    """AI literacy (Art. 4) is required of every reviewer unless a system says otherwise."""
    return ["ai_literacy"]


def tracked_history(**kwargs: object) -> HistoricalRecords:
    """History on every tracked model, attributed to the acting user (browser, token or task)."""
    return HistoricalRecords(get_user=get_history_user, **kwargs)


class RiskTier(models.TextChoices):
    PROHIBITED = "prohibited", "Prohibited (Art. 5)"
    HIGH = "high", "High risk (Art. 6)"
    LIMITED = "limited", "Limited risk (Art. 50)"
    MINIMAL = "minimal", "Minimal risk"


class OperatorRole(models.TextChoices):
    PROVIDER = "provider", "Provider"
    DEPLOYER = "deployer", "Deployer"
    BOTH = "both", "Provider and deployer"


class SystemStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    HALTED = "halted", "Halted (Art. 14(4)(e) stop)"
    BLOCKED = "blocked", "Blocked (prohibited practice)"


class AISystem(models.Model):
    """An AI system under oversight, with its EU AI Act tier (declared and classified)."""

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    purpose = models.TextField(blank=True)
    provider = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=10, choices=OperatorRole.choices, default=OperatorRole.DEPLOYER)
    sector = models.CharField(max_length=100, blank=True)
    declared_tier = models.CharField(max_length=12, choices=RiskTier.choices, blank=True)
    classified_tier = models.CharField(max_length=12, choices=RiskTier.choices, blank=True)
    # Annex III point as "5b", "1a"...; blank when none applies.
    annex_iii_area = models.CharField(max_length=4, blank=True)
    classification_rationale = models.JSONField(default=dict, blank=True)
    classified_at = models.DateTimeField(null=True, blank=True)
    is_public_body = models.BooleanField(default=False)
    labels = models.JSONField(default=list)
    positive_label = models.CharField(max_length=100, blank=True)
    required_trainings = models.JSONField(
        default=default_required_trainings, blank=True,
        help_text="Training kinds a reviewer must hold, valid, to claim this system's cases (Art. 4, Art. 26(2)).",
    )
    non_match_label = models.CharField(
        max_length=100, blank=True,
        help_text="Annex III 1(a): the label meaning \"no identification\". Every other result is verified by "
                  "two people (Art. 14(5)); empty: every result is.",
    )
    protected_attributes = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=SystemStatus.choices, default=SystemStatus.ACTIVE)
    status_reason = models.TextField(blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    retention_days = models.PositiveIntegerField(default=MIN_RETENTION_DAYS)
    # Per-system thresholds (bias audits, KPI targets); defaults apply where a key is absent.
    bias_thresholds = models.JSONField(default=dict, blank=True)
    kpi_targets = models.JSONField(default=dict, blank=True)
    # Off: each integration reads and reports outcomes only for the cases it submitted.
    # On (an officer's explicit, audited choice): every integration linked to the system
    # reads all of its cases, e.g. a scoring service and the back office it reports to.
    share_cases_between_integrations = models.BooleanField(
        default=False,
        help_text="Let every integration linked to this system read and report outcomes for all of its cases, "
        "not only the ones it submitted.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = tracked_history()

    class Meta:
        ordering = ["slug"]
        verbose_name = "AI system"
        constraints = [
            models.CheckConstraint(
                condition=Q(retention_days__gte=MIN_RETENTION_DAYS), name="aisystem_retention_min_six_months"
            ),
            models.CheckConstraint(
                condition=Q(status__in=SystemStatus.values), name="aisystem_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def risk_tier(self) -> str:
        """The classified tier wins over the declared one."""
        return self.classified_tier or self.declared_tier

    @property
    def is_remote_biometric(self) -> bool:
        """Annex III 1(a): four-eyes mandatory (Art. 14(5)), no SLA auto-accept."""
        return self.annex_iii_area.lower() == "1a"


class Stage(models.TextChoices):
    LABELING = "labeling", "Labeling"
    VALIDATION = "validation", "Validation"
    EXCEPTION = "exception", "Exception handling"


class SlaBreachAction(models.TextChoices):
    ESCALATE = "escalate", "Escalate to an adjudicator"
    ACCEPT_AI = "accept_ai", "Accept the AI output"
    FAIL_CLOSED = "fail_closed", "Fail closed (no final label)"


class CaseKind(models.TextChoices):
    """What a case holds: a label to check, a text to review, or an agent's tool call to approve."""

    CLASSIFICATION = "classification", "Classification (a label)"
    GENERATION = "generation", "Generation (a text)"
    ACTION = "action", "Action (an agent's tool call)"


# The fields whose change bumps an intervention point's rules version.
ROUTING_FIELDS: tuple[str, ...] = (
    "stage",
    "confidence_below",
    "always_review_labels",
    "high_stakes",
    "random_sample_rate",
    "reviewers_required",
    "sla_seconds",
    "on_sla_breach",
    "blind_review_rate",
    "gold_rate",
    "guidelines",
    "name",
    # How the workbench shows a case and which extra answers a decision carries are
    # part of the reviewing rules too: a case records the version it was reviewed under.
    "display",
    "decision_fields",
    "tool_rules",
    "text_rules",
    "tool_schemas",
)


def new_sampling_salt() -> str:
    """A secret per intervention point that keys its random sample (256 bits, hex)."""
    return secrets.token_hex(32)


class InterventionPoint(models.Model):
    """Where humans step in for one system, with the routing rules that send cases to them."""

    system = models.ForeignKey(AISystem, on_delete=models.PROTECT, related_name="intervention_points")
    slug = models.SlugField(max_length=80)
    name = models.CharField(max_length=200)
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.VALIDATION)
    confidence_below = models.FloatField(null=True, blank=True)
    always_review_labels = models.JSONField(default=list, blank=True)
    high_stakes = models.JSONField(default=list, blank=True)
    random_sample_rate = models.FloatField(default=0.0)
    reviewers_required = models.PositiveSmallIntegerField(default=1)
    sla_seconds = models.PositiveIntegerField(null=True, blank=True)
    on_sla_breach = models.CharField(max_length=12, choices=SlaBreachAction.choices, default=SlaBreachAction.ESCALATE)
    blind_review_rate = models.FloatField(default=0.0)
    gold_rate = models.FloatField(default=0.0)
    guidelines = models.TextField(blank=True)
    # Display configuration: ``[{field, renderer, label?, highlights?}]`` maps dotted
    # input paths to the workbench's renderers (``reviews.content``). Empty: the
    # generic readable view of the whole input.
    display = models.JSONField(default=list, blank=True)
    # Extra decision fields (custom review form): ``[{name, label, type, required,
    # choices?, min?, max?, max_length?}]``, validated by ``reviews.content``.
    decision_fields = models.JSONField(default=list, blank=True)
    # Fixed at creation: cases of one point are all of one kind (see reviews.services.kinds).
    kind = models.CharField(max_length=14, choices=CaseKind.choices, default=CaseKind.CLASSIFICATION)
    # Actions: {"always": [tool names, or "*"], "never": [tool names]}.
    tool_rules = models.JSONField(default=dict, blank=True)
    # Generations: {"max_length": int, "regex": str, "keywords": [str]}.
    text_rules = models.JSONField(default=dict, blank=True)
    # Actions: {tool name: JSON Schema of its arguments}; modified arguments must satisfy it.
    tool_schemas = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    # Keys the random sample ("{salt}:{system}:{external_id}"): secret, in no API response
    # and not in history rows (an old salt would let anyone replay past draws); rotated
    # only through ``intervention_point_rotate_salt`` (audited).
    sampling_salt = models.CharField(max_length=128, default=new_sampling_salt, editable=False)
    salt_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = tracked_history(excluded_fields=["sampling_salt"])

    class Meta:
        ordering = ["system__slug", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["system", "slug"], name="interventionpoint_unique_slug_per_system"),
            models.CheckConstraint(
                condition=Q(confidence_below__isnull=True) | Q(confidence_below__gte=0, confidence_below__lte=1),
                name="interventionpoint_confidence_below_fraction",
            ),
            models.CheckConstraint(
                condition=Q(random_sample_rate__gte=0, random_sample_rate__lte=1),
                name="interventionpoint_random_sample_rate_fraction",
            ),
            models.CheckConstraint(
                condition=Q(blind_review_rate__gte=0, blind_review_rate__lte=1),
                name="interventionpoint_blind_review_rate_fraction",
            ),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0, gold_rate__lte=1), name="interventionpoint_gold_rate_fraction"
            ),
            models.CheckConstraint(
                condition=Q(reviewers_required__gte=1, reviewers_required__lte=10),
                name="interventionpoint_reviewers_required_range",
            ),
            models.CheckConstraint(
                condition=Q(sla_seconds__isnull=True) | Q(sla_seconds__gte=1), name="interventionpoint_sla_positive"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=CaseKind.values), name="interventionpoint_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.system.slug}/{self.slug}"


class ReviewerStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"


class ReviewerProfile(models.Model):
    """A reviewer's competence (Art. 4, Art. 26(2)): qualifications, status, adjudicator flag."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviewer_profile")
    status = models.CharField(max_length=10, choices=ReviewerStatus.choices, default=ReviewerStatus.ACTIVE)
    status_reason = models.TextField(blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    adjudicator = models.BooleanField(default=False)
    qualifications = models.ManyToManyField(AISystem, blank=True, related_name="qualified_reviewers")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The competence gate's last verdict (quality.services.competence): the key of the rules it
    # passed under, blank when unknown. A cache, not a state: cleared (with ``updated_at``) when a
    # gold answer is recorded, so the claim reads this instead of re-reading the gold answers.
    competence_verdict = models.CharField(max_length=64, blank=True, default="")

    history = tracked_history(m2m_fields=[qualifications], excluded_fields=["competence_verdict"])

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return self.user.get_username()

    @property
    def is_active_reviewer(self) -> bool:
        return self.status == ReviewerStatus.ACTIVE and self.user.is_active


class TrainingRecord(models.Model):
    """Evidence of AI literacy / competence training (Art. 4, Art. 26(2)), with expiry."""

    reviewer = models.ForeignKey(ReviewerProfile, on_delete=models.CASCADE, related_name="training_records")
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=40, default="ai_literacy")
    system = models.ForeignKey(AISystem, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    completed_at = models.DateField()
    expires_at = models.DateField(null=True, blank=True)
    evidence_url = models.URLField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = tracked_history()

    class Meta:
        ordering = ["-completed_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gte=models.F("completed_at")),
                name="trainingrecord_expiry_after_completion",
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.reviewer})"


class IntegrationProfile(models.Model):
    """An integration (AI system backend) account: its linked systems and webhook secret."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="integration_profile"
    )
    systems = models.ManyToManyField(AISystem, blank=True, related_name="integrations")
    webhook_secret = models.CharField(max_length=128)
    secret_rotated_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)

    # The secret itself never goes into history rows.
    history = tracked_history(m2m_fields=[systems], excluded_fields=["webhook_secret"])

    def __str__(self) -> str:
        return self.user.get_username()


class CaseStatus(models.TextChoices):
    AUTO_ACCEPTED = "auto_accepted", "Auto-accepted"
    QUEUED = "queued", "Queued"
    CLAIMED = "claimed", "Claimed"
    ESCALATED = "escalated", "Escalated"
    DECIDED = "decided", "Decided"


# Cases a reviewer could be handed (a ``claimed`` one only once its lease expired).
CLAIMABLE_STATUSES = (CaseStatus.QUEUED, CaseStatus.ESCALATED, CaseStatus.CLAIMED)
OPEN_STATUSES = CLAIMABLE_STATUSES


class Resolution(models.TextChoices):
    AUTO_ACCEPTED = "auto_accepted", "Auto-accepted"
    REVIEWED = "reviewed", "Reviewed"
    ADJUDICATED = "adjudicated", "Adjudicated"
    SLA_ACCEPT_AI = "sla_accept_ai", "SLA breach: AI output accepted"
    SLA_FAIL_CLOSED = "sla_fail_closed", "SLA breach: failed closed"


class Case(models.Model):
    """One AI output under oversight, from ingestion to its final (human-validated) label."""

    system = models.ForeignKey(AISystem, on_delete=models.PROTECT, related_name="cases")
    intervention_point = models.ForeignKey(InterventionPoint, on_delete=models.PROTECT, related_name="cases")
    external_id = models.CharField(max_length=255)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    input = models.JSONField(default=dict)
    # SHA-256 of the canonical input: audit events refer to personal data by hash.
    input_hash = models.CharField(max_length=64, blank=True)
    prediction_label = models.CharField(max_length=100, null=True, blank=True)
    prediction_confidence = models.FloatField(null=True, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    # The model's explanation (Art. 14(4)(c)): ``{"reason_codes": [str], "attributions":
    # [{feature, value?, weight}]}`` or null. Feature values are personal data: kept out
    # of history and audit payloads like ``input``.
    explanation = models.JSONField(null=True, blank=True)
    subject = models.JSONField(default=dict, blank=True)
    callback_url = models.URLField(max_length=2000, blank=True)
    # Generation and action cases: the AI output under review ({text, prompt?, conversation?,
    # sources?} or {tool, arguments, agent, conversation?, rationale?}); null for classification.
    payload = models.JSONField(null=True, blank=True)
    # What the human oversight let through: {text, edited, diff} / {approved, arguments, modified,
    # diff, reason}; null until decided (and for classification, whose outcome is final_label).
    final_output = models.JSONField(null=True, blank=True)

    status = models.CharField(max_length=14, choices=CaseStatus.choices)
    routed = models.BooleanField(default=False)
    routing_reasons = models.JSONField(default=list, blank=True)
    rules_version = models.PositiveIntegerField(default=1)
    reviewers_required = models.PositiveSmallIntegerField(default=1)
    is_gold = models.BooleanField(default=False)
    gold_label = models.CharField(max_length=100, null=True, blank=True)
    blind = models.BooleanField(default=False)
    # Review rounds: a reopen starts a new round, so earlier deciders may decide again.
    review_round = models.PositiveSmallIntegerField(default=1)

    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    received_at = models.DateTimeField(default=timezone.now)
    sla_deadline = models.DateTimeField(null=True, blank=True)
    sla_breached = models.BooleanField(default=False)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, null=True, blank=True)
    final_label = models.CharField(max_length=100, null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    true_label = models.CharField(max_length=100, null=True, blank=True)
    true_label_at = models.DateTimeField(null=True, blank=True)
    payload_purged_at = models.DateTimeField(null=True, blank=True)

    # Personal data (input, subject) stays out of the history tables: history
    # grows several times faster than the table and would multiply every copy a
    # lawful purge must later erase.
    history = tracked_history(excluded_fields=["input", "subject", "callback_url", "explanation", "payload",
                                              "final_output"])

    # Not stored: set by the claim service on the case it just leased, to the status it was
    # leased from ("queued" or "escalated"); None on any other instance.
    claimed_from: str | None = None

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["system", "external_id"], name="case_unique_external_id_per_system"),
            models.CheckConstraint(
                condition=Q(prediction_confidence__isnull=True)
                | Q(prediction_confidence__gte=0, prediction_confidence__lte=1),
                name="case_confidence_fraction",
            ),
            models.CheckConstraint(condition=Q(status__in=CaseStatus.values), name="case_status_valid"),
            models.CheckConstraint(
                condition=~Q(status=CaseStatus.CLAIMED)
                | Q(claimed_by__isnull=False, lease_expires_at__isnull=False),
                name="case_claimed_has_holder_and_lease",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=[CaseStatus.DECIDED, CaseStatus.AUTO_ACCEPTED]) | Q(resolution__isnull=False),
                name="case_closed_has_resolution",
            ),
            models.CheckConstraint(
                condition=Q(reviewers_required__gte=1), name="case_reviewers_required_positive"
            ),
        ]
        indexes = [
            # The claim query: open cases in queue order (SLA deadline, then received).
            models.Index(
                fields=["intervention_point", "sla_deadline", "received_at", "id"],
                name="case_claimable_idx",
                condition=Q(status__in=["queued", "escalated", "claimed"]),
            ),
            models.Index(fields=["system", "received_at"], name="case_system_received_idx"),
            models.Index(fields=["received_at"], name="case_received_idx"),
            # The agreement figures (quality.selectors.live_agreement): the routed multi-review cases
            # of a window. Without it PostgreSQL scanned every case for them (14 s at 10 M cases,
            # docs/PERFORMANCE.md); a case that is auto-accepted never has a decision, and only
            # multi-review points' routed cases are indexed, so it stays small. It holds the columns
            # those reads take (id, point, system), so they need no heap: one reviewer's agreement read
            # 68 -> 18 ms of database CPU at 1 M cases (quality.selectors.reviewer_agreement).
            models.Index(
                fields=["received_at"],
                include=["id", "intervention_point", "system"],
                name="case_multi_review_cover_idx",
                condition=Q(reviewers_required__gte=2, is_gold=False) & ~Q(status="auto_accepted"),
            ),
            # The threshold pages (quality.selectors.threshold_candidates, threshold_curve): the cases
            # with ground truth, read by an index-only scan (153 -> 43 ms at 1 M cases, half of them with
            # ground truth; docs/PERFORMANCE.md). Written only when ground truth is reported.
            models.Index(
                fields=["intervention_point", "prediction_confidence"],
                include=["prediction_label", "true_label"],
                name="case_ground_truth_idx",
                condition=Q(true_label__isnull=False, is_gold=False, prediction_label__isnull=False,
                            prediction_confidence__isnull=False),
            ),
            models.Index(
                fields=["lease_expires_at"], name="case_live_lease_idx", condition=Q(status="claimed")
            ),
            models.Index(
                fields=["sla_deadline"],
                name="case_sla_open_idx",
                condition=Q(status__in=["queued", "escalated", "claimed"], sla_breached=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.system_id}:{self.external_id}"


class DecisionOutcome(models.TextChoices):
    APPROVE = "approve", "Approve"
    OVERRIDE = "override", "Override"
    ESCALATE = "escalate", "Escalate"
    # Generation cases.
    EDIT = "edit", "Edit"
    REJECT = "reject", "Reject"
    # Action cases.
    MODIFY = "modify", "Approve with modified arguments"
    DENY = "deny", "Deny"


# The verdicts each kind of case accepts (escalate: to an adjudicator, for every kind).
CLASSIFICATION_OUTCOMES = (DecisionOutcome.APPROVE, DecisionOutcome.OVERRIDE, DecisionOutcome.ESCALATE)
KIND_OUTCOMES: dict[str, tuple[str, ...]] = {
    CaseKind.CLASSIFICATION: CLASSIFICATION_OUTCOMES,
    CaseKind.GENERATION: (DecisionOutcome.APPROVE, DecisionOutcome.EDIT, DecisionOutcome.REJECT,
                          DecisionOutcome.ESCALATE),
    CaseKind.ACTION: (DecisionOutcome.APPROVE, DecisionOutcome.MODIFY, DecisionOutcome.DENY,
                      DecisionOutcome.ESCALATE),
}


class RejectionCategory(models.TextChoices):
    FACTUALITY = "factuality", "Factuality"
    SAFETY = "safety", "Safety"
    POLICY = "policy", "Policy"
    OTHER = "other", "Other"


# What the quality figures read of a decision besides its reviewer and time (Decision.Meta.indexes).
_QUALITY_COLUMNS = ["system", "ai_shown", "outcome", "label", "prediction_label", "time_spent_ms"]


class Decision(models.Model):
    """One reviewer's verdict on a case in one review round."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions")
    round = models.PositiveSmallIntegerField(default=1)
    outcome = models.CharField(max_length=10, choices=DecisionOutcome.choices)
    label = models.CharField(max_length=100, null=True, blank=True)
    rationale = models.TextField(blank=True)
    ai_shown = models.BooleanField(default=True)
    is_adjudication = models.BooleanField(default=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    time_spent_ms = models.PositiveIntegerField(default=0)
    decided_at = models.DateTimeField(default=timezone.now)
    # Answers to the intervention point's extra decision fields, ``{name: value}``, as
    # validated against the point's ``decision_fields`` when the decision was made.
    # One JSON object per decision so the training-data export reads it as is.
    form_values = models.JSONField(default=dict, blank=True)
    # Generation/action verdicts: the edited text or modified arguments with their diff;
    # kept out of history like the case's payload (they may hold personal data).
    output = models.JSONField(null=True, blank=True)
    # A rejected generation's category (blank otherwise).
    category = models.CharField(max_length=12, choices=RejectionCategory.choices, blank=True)
    # Copies of the case's ``system`` and ``prediction_label`` (neither changes after ingest),
    # written with the decision: the quality figures over a period's decisions (automation
    # bias, rubber-stamp flags, reviewers at a glance) then read the decisions alone instead
    # of hashing every case for two columns (274 ms of 300 at a million cases,
    # docs/PERFORMANCE.md). Nullable only because rows older than the column were filled by
    # its migration; every service that records a decision fills them. Not in history: they
    # never change.
    system = models.ForeignKey(
        AISystem, on_delete=models.PROTECT, null=True, blank=True, db_index=False, related_name="+"
    )
    prediction_label = models.CharField(max_length=100, null=True, blank=True)

    history = tracked_history(excluded_fields=["output", "system", "prediction_label"])

    class Meta:
        ordering = ["decided_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "reviewer", "round"], name="decision_one_per_reviewer_per_round"
            ),
            models.CheckConstraint(
                condition=~Q(outcome=DecisionOutcome.OVERRIDE) | Q(label__isnull=False),
                name="decision_override_has_label",
            ),
        ]
        indexes = [
            models.Index(fields=["reviewer", "decided_at"], name="decision_reviewer_time_idx"),
            # The automation-bias counts of the quality pages (quality.selectors._bias_buckets) read
            # these columns of a period's non-adjudication decisions: covering indexes let PostgreSQL
            # answer them without the table, by period for every reviewer (the reviewers' page) and
            # by reviewer and period (one reviewer's page, the nightly snapshot). The second also holds
            # case and round: one reviewer's ratings for the agreement with co-reviewers
            # (quality.selectors.reviewer_agreement) come from it without the table.
            models.Index(
                fields=["decided_at"], include=[*_QUALITY_COLUMNS, "reviewer"], condition=Q(is_adjudication=False),
                name="decision_quality_idx",
            ),
            models.Index(
                fields=["reviewer", "decided_at"], include=[*_QUALITY_COLUMNS, "case", "round"],
                condition=Q(is_adjudication=False),
                name="decision_quality_reviewer_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} on case {self.case_id} by {self.reviewer_id}"


def attachment_storage() -> Storage:
    """The storage of case attachments (a callable, so settings decide at run time)."""
    return storages["attachments"]


def attachment_path(instance: CaseAttachment, filename: str) -> str:
    """Storage key: per case, under a random name (the original name is metadata only)."""
    return f"attachments/{instance.case_id}/{uuid.uuid4().hex}"


class CaseAttachment(models.Model):
    """A file an integration uploaded with a case (an image, a PDF, a recording).

    Stored through Django's storage API (``STORAGES["attachments"]``: the file system
    under ``MEDIA_ROOT`` by default, S3-compatible in production). ``content_type`` is
    the type sniffed from the file's first bytes, never the one the client declared.
    The input refers to it as ``"attachment:<name>"``.
    """

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="attachments")
    name = models.CharField(max_length=200)
    file = models.FileField(upload_to=attachment_path, storage=attachment_storage, max_length=300)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["case_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["case", "name"], name="caseattachment_unique_name_per_case")
        ]

    def __str__(self) -> str:
        return f"{self.case_id}:{self.name}"


class IdempotencyKey(models.Model):
    """A replayable response for an integration's ``Idempotency-Key`` (kept ≥ 24 h).

    Written in the same transaction as the case it created; the unique key makes a
    racing duplicate wait on the row and then replay it. Not history-tracked: it is
    itself a record of a response.
    """

    integration = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["integration", "key"], name="idempotencykey_unique_per_integration")
        ]

    def __str__(self) -> str:
        return f"{self.integration_id}:{self.key}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Gave up"


class WebhookDelivery(models.Model):
    """One webhook message to an integration, retried with backoff by a beat sweeper."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="webhook_deliveries")
    integration = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    event = models.CharField(max_length=40)
    url = models.URLField(max_length=2000)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="webhook_due_idx", condition=Q(status="pending"))
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.url} ({self.status})"


class WebhookAttempt(models.Model):
    """Every delivery attempt, as shown in the admin."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["attempted_at", "id"]

    def __str__(self) -> str:
        return f"attempt {self.attempted_at:%Y-%m-%d %H:%M:%S} → {self.status_code or self.error[:40]}"


class AlertKind(models.TextChoices):
    NO_ELIGIBLE_ADJUDICATOR = "no_adjudicator", "No eligible adjudicator: routed to compliance officers"
    NO_ELIGIBLE_REVIEWER = "no_reviewer", "No qualified active reviewer can claim it"
    QUEUE_AGE = "queue_age", "Waiting longer than the intervention point's SLA"


class CaseAlert(models.Model):
    """A case nobody eligible can take (or that waits past its SLA), shown to the compliance officers.

    Raised at most once per case, kind and review round (the unique constraint is
    what makes the beat sweep idempotent); resolved when an officer adjudicates
    or assigns the case. A case that is no longer open needs no attention, so the
    selectors show only alerts of open cases.
    """

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=16, choices=AlertKind.choices)
    round = models.PositiveSmallIntegerField(default=1)
    detail = models.TextField(blank=True)
    raised_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["case", "kind", "round"], name="casealert_once_per_case_kind_round"),
        ]
        indexes = [
            models.Index(fields=["raised_at"], name="casealert_open_idx", condition=Q(resolved_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on case {self.case_id}"


class CaseComment(models.Model):
    """A note on a case for later reviewers, adjudicators and officers (never a verdict)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The review round it was written in, and whether its author reviewed in that round:
    # the blind-phase rule hides such comments from the round's other reviewers.
    round = models.PositiveSmallIntegerField(default=1)
    by_round_reviewer = models.BooleanField(default=False)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"comment on case {self.case_id} by {self.author_id}"


class CaseSkip(models.Model):
    """A reviewer handed a claimed case back with a reason; they are not offered it again in that round."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="skips")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="case_skips")
    round = models.PositiveSmallIntegerField(default=1)
    reason = models.TextField()
    skipped_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-skipped_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["case", "reviewer", "round"], name="caseskip_once_per_reviewer_round"),
        ]
        indexes = [models.Index(fields=["reviewer", "skipped_at"], name="caseskip_reviewer_time_idx")]

    def __str__(self) -> str:
        return f"skip of case {self.case_id} by {self.reviewer_id}"
