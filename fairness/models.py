"""Bias audits: per system and protected attribute, over a period of received cases.

An audit is planned once into chunks (slices of the period by received time,
a day each by default); each chunk is one Celery task that counts its cases with one SQL
aggregate and upserts a ``BiasAuditChunk`` row. The last chunk to finish runs
the finalizer, which sums the chunk counts, computes the metrics
(``fairness.metrics``) and stores them on the audit. Fan-in goes through these
tables, never through chords, so a retried or duplicated chunk changes nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from reviews.models import AISystem, tracked_history


class AuditStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class BiasAudit(models.Model):
    """One bias audit of ``system`` by ``attribute`` over received cases in ``[period_from, period_to)``.

    ``thresholds``, ``min_group_size``, ``positive_label`` and ``chunk_seconds`` are
    copied from the system and the settings when the audit is requested, so the audit shows
    exactly what it was judged against even if the system changes later.
    ``plan`` lists the chunks' slices of received time (``[[from, to], ...]`` as
    ISO 8601 text, half-open); the chunks done are the ``BiasAuditChunk`` rows, so
    progress needs no write to this row from concurrent chunks.
    """

    system = models.ForeignKey(AISystem, on_delete=models.PROTECT, related_name="bias_audits")
    attribute = models.CharField(max_length=100)
    period_from = models.DateTimeField()
    period_to = models.DateTimeField()
    status = models.CharField(max_length=10, choices=AuditStatus.choices, default=AuditStatus.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    positive_label = models.CharField(max_length=100)
    thresholds = models.JSONField(default=dict)
    min_group_size = models.PositiveIntegerField(default=30)
    # Length of a chunk's slice of received time (a day by default), fixed at request time.
    chunk_seconds = models.PositiveIntegerField(default=86_400)
    plan = models.JSONField(default=list, blank=True)
    chunks_total = models.PositiveIntegerField(default=0)
    cases_counted = models.PositiveBigIntegerField(default=0)
    # {"groups": [...], "metrics": {"ai": {...}, "final": {...}}, "breaches": [...]} once done.
    results = models.JSONField(default=dict, blank=True)
    flagged = models.BooleanField(default=False)
    incident = models.ForeignKey(
        "incidents.Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The plan is bookkeeping (re-derivable); keeping it out keeps history rows small.
    history = tracked_history(excluded_fields=["plan"])

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=AuditStatus.values), name="biasaudit_status_valid"),
            models.CheckConstraint(
                condition=Q(period_from__lt=models.F("period_to")), name="biasaudit_period_ordered"
            ),
            models.CheckConstraint(condition=Q(chunk_seconds__gte=1), name="biasaudit_chunk_seconds_positive"),
        ]
        indexes = [
            models.Index(fields=["system", "-requested_at"], name="biasaudit_system_time_idx"),
            models.Index(
                fields=["requested_at"], name="biasaudit_open_idx", condition=Q(status__in=["pending", "running"])
            ),
        ]

    def __str__(self) -> str:
        return f"Bias audit #{self.pk} ({self.attribute})"


class BiasAuditChunk(models.Model):
    """The counts of one finished chunk of an audit (upserted: a retried chunk writes the same row).

    ``counts`` is a list of ``[group, ai_label, final_label, true_label, routed,
    status, n]`` rows: the chunk's SQL aggregate, as it came out of the database.
    """

    audit = models.ForeignKey(BiasAudit, on_delete=models.CASCADE, related_name="chunks")
    key = models.CharField(max_length=64)
    received_from = models.DateTimeField()
    received_to = models.DateTimeField()
    counts = models.JSONField(default=list)
    cases = models.PositiveBigIntegerField(default=0)
    done_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["audit", "received_from"]
        constraints = [
            models.UniqueConstraint(fields=["audit", "key"], name="biasauditchunk_unique_key_per_audit"),
        ]

    def __str__(self) -> str:
        return f"chunk {self.key} of audit {self.audit_id}"
