"""Models of the quality app: gold items, their servings, calibration sessions, daily snapshots.

A gold item is a ``reviews.Case`` with ``is_gold=True`` and a ``gold_label``
(the *master*); it never enters the ordinary queue itself. Each time it is
handed to a reviewer, a fresh copy (another gold ``Case``, with its own id and
external id) is made for that reviewer only: a ``GoldServing`` links copy,
master, reviewer and, for calibration, the session. Copies are ordinary cases
to the queue, the claim API and the workbench, so nothing tells a reviewer
that a case is gold; the decisions on copies are scored against the master's
``gold_label``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from reviews.models import AISystem, Case, InterventionPoint, tracked_history


class GoldSource(models.TextChoices):
    API = "api", "API"
    CSV = "csv", "CSV import"
    ADMIN = "admin", "Admin"


class GoldItem(models.Model):
    """A case with a known answer (the master copy), to measure reviewers (never counted in case KPIs)."""

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="gold_item")
    # Retired items are served no more; answers already given keep counting.
    active = models.BooleanField(default=True)
    source = models.CharField(max_length=10, choices=GoldSource.choices, default=GoldSource.API)
    note = models.TextField(blank=True, help_text="Why this is the right answer (shown to officers only).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    history = tracked_history()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"gold item {self.pk} (case {self.case_id})"


class CalibrationStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class CalibrationSession(models.Model):
    """A set of gold items every reviewer of a group answers once, to measure their agreement."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=CalibrationStatus.choices, default=CalibrationStatus.OPEN)
    items = models.ManyToManyField(GoldItem, related_name="calibration_sessions")
    reviewers = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="calibration_sessions")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    history = tracked_history(m2m_fields=[items, reviewers])

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class GoldServing(models.Model):
    """One copy of a gold item made for one reviewer (unannounced in the queue, or in a calibration session)."""

    item = models.ForeignKey(GoldItem, on_delete=models.PROTECT, related_name="servings")
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="gold_serving")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(
        CalibrationSession, null=True, blank=True, on_delete=models.CASCADE, related_name="servings"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Unannounced: a reviewer sees each gold item at most once.
            models.UniqueConstraint(
                fields=["item", "reviewer"], condition=Q(session__isnull=True), name="goldserving_once_per_reviewer"
            ),
            # Calibration: each reviewer gets every item of the session once.
            models.UniqueConstraint(
                fields=["session", "item", "reviewer"],
                condition=Q(session__isnull=False),
                name="goldserving_once_per_session",
            ),
        ]
        indexes = [models.Index(fields=["reviewer", "created_at"], name="goldserving_reviewer_idx")]

    def __str__(self) -> str:
        return f"gold item {self.item_id} → {self.reviewer_id} (case {self.case_id})"


class ReviewerQualitySnapshot(models.Model):
    """A reviewer's quality figures as of one day (what the reviewer themself is shown).

    Reviewers see their gold figures only from these daily snapshots, so the
    moment a figure moves cannot tell them which of their cases was gold.
    """

    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    gold_answered = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    gold_accuracy = models.FloatField(null=True, blank=True)
    agreement = models.FloatField(null=True, blank=True)
    figures = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-day", "reviewer_id"]
        constraints = [
            models.UniqueConstraint(fields=["reviewer", "day"], name="qualitysnapshot_one_per_reviewer_day"),
            models.CheckConstraint(
                condition=Q(gold_accuracy__isnull=True) | Q(gold_accuracy__gte=0, gold_accuracy__lte=1),
                name="qualitysnapshot_accuracy_fraction",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer_id} on {self.day}"


class AgreementPairDay(models.Model):
    """Rating pairs of the live multi-review case rounds received on one UTC day (``live_agreement``, pre-summed).

    One row per (day, system, point, rater pair, their labels, unit size): how many
    unordered rating pairs of units (case rounds) with ``unit_size`` ratings had
    ``rater_a`` (the lower user id) say ``label_a`` and ``rater_b`` say ``label_b``,
    over the cases received that day (``quality.selectors``'s definition of live
    agreement). Summed over days it gives exactly the pair counts the live
    statement gives, by day (dropping the raters) and by rater pair (dropping the
    day and the unit size), so ``live_agreement`` reads the whole days it covers
    from here. Kept by the KPI rollup refresh (``quality.services.agreement``),
    up to ``AgreementRollupState.built_through``.

    Derived data, not a record: recomputing a day replaces its rows (no history,
    no audit events; the cases and decisions are the record), and the table can be
    dropped and rebuilt at any time (``manage.py kpi_rollup --full``).
    """

    day = models.DateField()
    # No index of their own on the foreign keys (only a rare cascade reads by them): fewer indexes to
    # maintain when the refresh rewrites a day every minute.
    system = models.ForeignKey(AISystem, on_delete=models.CASCADE, related_name="+", db_index=False)
    intervention_point = models.ForeignKey(InterventionPoint, on_delete=models.CASCADE, related_name="+",
                                           db_index=False)
    rater_a = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                                db_index=False)
    rater_b = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                                db_index=False)
    label_a = models.CharField(max_length=100)
    label_b = models.CharField(max_length=100)
    unit_size = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            # Also the read index: ``live_agreement`` reads a range of days (the rows of a day were
            # written together, so they share a few heap pages).
            models.UniqueConstraint(
                fields=["day", "system", "intervention_point", "rater_a", "rater_b", "label_a", "label_b",
                        "unit_size"],
                name="agreementpairday_unique_key",
            ),
            models.CheckConstraint(condition=Q(unit_size__gte=2), name="agreementpairday_unit_of_two"),
        ]

    def __str__(self) -> str:
        return (f"{self.day} {self.intervention_point_id} {self.rater_a_id}/{self.rater_b_id}: "
                f"{self.label_a}/{self.label_b} ({self.unit_size}) × {self.count}")


class AgreementRollupState(models.Model):
    """How far ``AgreementPairDay`` is built (one row, written only by the rebuild).

    ``built_through``: every day up to and including it is in the table (a day
    without rows had no rated unit at the last refresh). No row (a deployment
    that never built it): ``live_agreement`` computes everything live, and the
    next KPI rollup refresh builds every day.
    """

    key = models.CharField(max_length=20, unique=True, default="default")
    built_through = models.DateField()
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"agreement rollup built through {self.built_through}"
