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

from reviews.models import Case, tracked_history


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
