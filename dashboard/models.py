"""KPI rollups: additive figures per received day, kept current by ``dashboard.refresh_rollups``.

Every number here is a sum (or a mergeable extreme) over the cases received on
one UTC day, so the figures of any set of days add up, and every KPI of any
period is computed from those sums (``dashboard.figures``): rates and accuracy
from counts, percentiles from latency histograms, chance-corrected agreement
from label-pair counts. Variable-length maps that a 90-day read must add up
(latency histograms, reviewer pairs) are child rows, so the database sums them
(``GROUP BY``) instead of Python decoding thousands of JSON documents; short
label maps stay JSON on the day row.

The rows are derived data: recomputing a day replaces its rows (no history, no
audit events: the cases, decisions and their audit trail are the record; these
tables can be dropped and rebuilt at any time with ``manage.py kpi_rollup --full``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from reviews.models import AISystem, InterventionPoint


class DailyRollup(models.Model):
    """Case KPI figures of one received day, system and intervention point (gold items excluded).

    JSON fields hold short count maps as lists (JSON objects cannot have tuple keys):

    * ``resolutions``: ``{resolution: n}`` of closed cases;
    * ``reviewed_labels``: ``[[ai_label, final_label, n], ...]`` over reviewed cases;
    * ``truth_labels``: ``[[ai_label, final_label, true_label, n], ...]`` over closed
      cases with ground truth and an AI label;
    * ``decided_after``: ``{days after the received day: n}`` of decided routed cases
      (reconstructs the queue depth of past days);
    * ``agreement_pairs``: ``[[label_a, label_b, unit_size, n], ...]``: rating pairs of
      multiply-reviewed case rounds (``quality.stats.unit_pairs``).

    The time-to-resolution histogram is in ``RollupTtrBucket`` (and pre-summed over
    blocks of days in ``RollupTtrBlock``).
    """

    day = models.DateField()
    system = models.ForeignKey(AISystem, on_delete=models.CASCADE, related_name="+")
    intervention_point = models.ForeignKey(InterventionPoint, on_delete=models.CASCADE, related_name="+")
    cases_total = models.PositiveIntegerField(default=0)
    auto_accepted = models.PositiveIntegerField(default=0)
    routed = models.PositiveIntegerField(default=0)
    reviewed = models.PositiveIntegerField(default=0)
    open = models.PositiveIntegerField(default=0)
    override_base = models.PositiveIntegerField(default=0)
    overridden = models.PositiveIntegerField(default=0)
    sla_breaches = models.PositiveIntegerField(default=0)
    resolutions = models.JSONField(default=dict)
    reviewed_labels = models.JSONField(default=list)
    truth_labels = models.JSONField(default=list)
    ttr_min_ms = models.BigIntegerField(null=True)
    ttr_max_ms = models.BigIntegerField(null=True)
    decided_after = models.JSONField(default=dict)
    agreement_pairs = models.JSONField(default=list)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "system", "intervention_point"], name="dailyrollup_unique_key")
        ]
        indexes = [models.Index(fields=["system", "day"], name="dailyrollup_system_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.system_id}/{self.intervention_point_id}: {self.cases_total} cases"


class RollupTtrBucket(models.Model):
    """One bucket of the time-to-resolution histogram of a day, system and point (``quality.stats`` buckets)."""

    day = models.DateField()
    system = models.ForeignKey(AISystem, on_delete=models.CASCADE, related_name="+")
    intervention_point = models.ForeignKey(InterventionPoint, on_delete=models.CASCADE, related_name="+")
    bucket = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField()
    total_ms = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "system", "intervention_point", "bucket"],
                                    name="rollupttrbucket_unique_key")
        ]
        indexes = [models.Index(fields=["system", "day"], name="rollupttrbucket_system_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.system_id}/{self.intervention_point_id} bucket {self.bucket}: {self.count}"


class RollupTtrBlock(models.Model):
    """A system's time-to-resolution histogram summed over an aligned block of days (points merged).

    ``RollupTtrBucket`` rows pre-summed by the refresh, so that a long period adds a few
    blocks' rows instead of every day's: the block of ``span`` days from ``start``
    (``dashboard.blocks``) holds, per system and bucket, exactly the sums of those
    days' bucket rows; with ``system`` null, the sums over all systems (spans
    ``ALL_SYSTEMS_SPANS``, single days included). Derived from the day rows and
    rewritten with them, never read on its own for a partial block.
    """

    start = models.DateField()
    span = models.PositiveSmallIntegerField()
    # No index of their own on the foreign keys (only a rare cascade reads by them): fewer
    # indexes to maintain when the refresh rewrites a block every minute.
    system = models.ForeignKey(AISystem, null=True, on_delete=models.CASCADE, related_name="+", db_index=False)
    bucket = models.PositiveSmallIntegerField()
    count = models.BigIntegerField()
    total_ms = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["span", "start", "system", "bucket"],
                                    condition=models.Q(system__isnull=False), name="rollupttrblock_unique_key"),
            models.UniqueConstraint(fields=["span", "start", "bucket"], condition=models.Q(system__isnull=True),
                                    name="rollupttrblock_unique_all_key"),
        ]

    def __str__(self) -> str:
        return f"{self.start} +{self.span} d {self.system_id} bucket {self.bucket}: {self.count}"


class DailyTtrPercentiles(models.Model):
    """The p50/p90 time to resolution of one received day, for one system or all (``system`` null).

    Not additive: a cache of percentiles of the day's merged histogram, written
    by the refresh with the day's other rows, so that a 90-day chart reads 90
    numbers instead of summing 90 histograms. Periods are never computed from it.
    """

    day = models.DateField()
    system = models.ForeignKey(AISystem, null=True, on_delete=models.CASCADE, related_name="+")
    p50_ms = models.FloatField(null=True)
    p90_ms = models.FloatField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "system"], condition=models.Q(system__isnull=False),
                                    name="dailyttrpercentiles_unique_system_day"),
            models.UniqueConstraint(fields=["day"], condition=models.Q(system__isnull=True),
                                    name="dailyttrpercentiles_unique_all_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.system_id or 'all'}: p50 {self.p50_ms} ms, p90 {self.p90_ms} ms"


class ReviewerDailyRollup(models.Model):
    """One reviewer's counts on the cases of one received day and system (gold items included).

    Reviewer quality is measured on gold items too (that is what they are for).
    The time-spent histogram is in ``ReviewerTimeBucket``, agreement with
    co-reviewers in ``ReviewerPairRollup``.
    """

    day = models.DateField()
    system = models.ForeignKey(AISystem, on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    decisions = models.PositiveIntegerField(default=0)
    approvals = models.PositiveIntegerField(default=0)
    overrides = models.PositiveIntegerField(default=0)
    escalations = models.PositiveIntegerField(default=0)
    adjudications = models.PositiveIntegerField(default=0)
    time_min_ms = models.BigIntegerField(null=True)
    time_max_ms = models.BigIntegerField(null=True)
    gold_answered = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    ai_shown = models.PositiveIntegerField(default=0)
    ai_shown_agree = models.PositiveIntegerField(default=0)
    ai_hidden = models.PositiveIntegerField(default=0)
    ai_hidden_agree = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "system", "reviewer"], name="reviewerdailyrollup_unique_key")
        ]
        indexes = [models.Index(fields=["system", "day"], name="reviewerrollup_system_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.system_id} reviewer {self.reviewer_id}: {self.decisions} decisions"


class ReviewerTimeBucket(models.Model):
    """One bucket of a reviewer's time-spent histogram (claim → decision) on one day and system."""

    day = models.DateField()
    system = models.ForeignKey(AISystem, on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    bucket = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField()
    total_ms = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "system", "reviewer", "bucket"],
                                    name="reviewertimebucket_unique_key")
        ]
        indexes = [models.Index(fields=["system", "day"], name="reviewertimebucket_sys_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.system_id} reviewer {self.reviewer_id} bucket {self.bucket}: {self.count}"


class ReviewerTimeBlock(models.Model):
    """A reviewer's time-spent histogram on one system (or all: ``system`` null) summed over an aligned block of days.

    ``ReviewerTimeBucket`` rows pre-summed by the refresh, like ``RollupTtrBlock``.
    """

    start = models.DateField()
    span = models.PositiveSmallIntegerField()
    # No index of their own on the foreign keys (only a rare cascade reads by them): fewer
    # indexes to maintain when the refresh rewrites a block every minute.
    system = models.ForeignKey(AISystem, null=True, on_delete=models.CASCADE, related_name="+", db_index=False)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                                 db_index=False)
    bucket = models.PositiveSmallIntegerField()
    count = models.BigIntegerField()
    total_ms = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["span", "start", "system", "reviewer", "bucket"],
                                    condition=models.Q(system__isnull=False), name="reviewertimeblock_unique_key"),
            models.UniqueConstraint(fields=["span", "start", "reviewer", "bucket"],
                                    condition=models.Q(system__isnull=True), name="reviewertimeblock_unique_all_key"),
        ]

    def __str__(self) -> str:
        return f"{self.start} +{self.span} d {self.system_id} reviewer {self.reviewer_id} bucket {self.bucket}"


class ReviewerPairRollup(models.Model):
    """How often a reviewer's label met a co-reviewer's label on the same live case round.

    One row per (day, system, reviewer, own label, other label, unit size): the
    reviewer's side of each rating pair. With exactly two reviewers in a period,
    the lower id's rows are Cohen's contingency table.
    """

    day = models.DateField()
    system = models.ForeignKey(AISystem, on_delete=models.CASCADE, related_name="+")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    own_label = models.CharField(max_length=100)
    other_label = models.CharField(max_length=100)
    unit_size = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "system", "reviewer", "own_label", "other_label", "unit_size"],
                                    name="reviewerpairrollup_unique_key")
        ]
        indexes = [models.Index(fields=["system", "day"], name="reviewerpair_system_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} reviewer {self.reviewer_id}: {self.own_label}/{self.other_label} × {self.count}"


class RollupState(models.Model):
    """Where the rollup stands (one row).

    ``built_through``: every day up to and including it is in the rollup (a day
    without rows had no cases at the last refresh); later days are computed from
    the cases on demand. ``watermark``: when the last refresh started; the next
    one recomputes the days of cases changed since then (minus an overlap for
    transactions that committed late).
    """

    key = models.CharField(max_length=20, unique=True, default="default")
    watermark = models.DateTimeField(null=True)
    built_through = models.DateField(null=True)
    last_run_at = models.DateTimeField(null=True)
    last_run_ms = models.PositiveIntegerField(default=0)
    last_days = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"rollup built through {self.built_through}"


class MonitoringMetric(models.TextChoices):
    """What post-market monitoring (Art. 72, Art. 26(5)) watches per intervention point and day."""

    OVERRIDE_RATE = "override_rate", "Override-rate spike"
    CONFIDENCE_PSI = "confidence_psi", "Confidence distribution shift (PSI)"
    MODEL_VERSION = "model_version", "New model version"
    AGREEMENT = "agreement", "Reviewer agreement drop"
    GOLD_ACCURACY = "gold_accuracy", "Gold accuracy drop"
    QUEUE_AGE = "queue_age", "Growing queue age"


class MonitoringSeverity(models.TextChoices):
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class MonitoringThreshold(models.Model):
    """A point's own alert thresholds for one metric (``dashboard.monitoring.DEFAULT_THRESHOLDS`` otherwise).

    ``critical`` may be empty: the metric then never reaches critical (and never files an incident).
    """

    intervention_point = models.ForeignKey(InterventionPoint, on_delete=models.CASCADE,
                                           related_name="monitoring_thresholds")
    metric = models.CharField(max_length=20, choices=MonitoringMetric.choices)
    warning = models.FloatField()
    critical = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["intervention_point", "metric"], name="monitoringthreshold_unique_key"),
            models.CheckConstraint(
                condition=models.Q(critical__isnull=True) | models.Q(critical__gte=models.F("warning")),
                name="monitoringthreshold_critical_above_warning",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.intervention_point_id} {self.metric}: {self.warning}/{self.critical}"


class MonitoringAlert(models.Model):
    """One monitoring finding: a metric of a point on a day past its threshold.

    Unique per point, metric and day, so running the monitor twice for a day
    raises nothing new. ``value`` and ``reference`` are in the metric's unit
    (a rate, a PSI, hours, a count of cases); ``reference`` is the reference
    window's figure (empty when the metric has none, e.g. a new model version).
    """

    intervention_point = models.ForeignKey(InterventionPoint, on_delete=models.CASCADE,
                                           related_name="monitoring_alerts")
    system = models.ForeignKey(AISystem, on_delete=models.CASCADE, related_name="monitoring_alerts")
    metric = models.CharField(max_length=20, choices=MonitoringMetric.choices)
    day = models.DateField()
    value = models.FloatField()
    reference = models.FloatField(null=True, blank=True)
    severity = models.CharField(max_length=10, choices=MonitoringSeverity.choices)
    message = models.TextField()
    incident = models.ForeignKey("incidents.Incident", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["intervention_point", "metric", "day"],
                                    name="monitoringalert_unique_key"),
        ]
        indexes = [models.Index(fields=["system", "day"], name="monitoringalert_system_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.intervention_point_id} {self.metric} ({self.severity})"
