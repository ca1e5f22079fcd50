"""Records kept for the law, around the ledger: legal holds, retention purges, Art. 12(3) biometric uses.

These tables keep their original names (``audit_*``): they moved here from the
audit app without touching data (see migration 0001). The ledger itself (events,
checkpoints) stays in ``audit``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from hitl_portal.actors import get_history_user
from reviews.models import MIN_RETENTION_DAYS


class LegalHold(models.Model):
    """A hold that stops retention purges: for one system, or for every system when ``system`` is empty.

    Placed and released only through ``records.services`` (both audited); a released
    hold stays on record with who released it and why.
    """

    system = models.ForeignKey(
        "reviews.AISystem",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="legal_holds",
        help_text="Empty: the hold covers every system.",
    )
    reason = models.TextField(help_text="Why the records must be kept (litigation, investigation, authority request).")
    reference = models.CharField(max_length=200, blank=True, help_text="Matter, case or request number.")
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    placed_at = models.DateTimeField(default=timezone.now)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.TextField(blank=True)

    history = HistoricalRecords(get_user=get_history_user, table_name="audit_historicallegalhold")

    class Meta:
        db_table = "audit_legalhold"
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="legalhold_reason_required"),
            models.CheckConstraint(
                condition=Q(released_at__isnull=True) | Q(released_at__gte=models.F("placed_at")),
                name="legalhold_released_after_placed",
            ),
        ]
        indexes = [
            models.Index(fields=["system"], name="legalhold_active_idx", condition=Q(released_at__isnull=True)),
        ]

    def __str__(self) -> str:
        scope = self.system.slug if self.system is not None else "all systems"
        state = "released" if self.released_at else "active"
        return f"Legal hold #{self.pk} on {scope} ({state})"

    @property
    def is_active(self) -> bool:
        return self.released_at is None


class PurgeRun(models.Model):
    """One retention purge: what was erased, and the export that holds it (path and SHA-256).

    Written by ``records.retention.purge_system`` in the purge's own transaction,
    together with its ``audit.purged`` event.
    """

    system = models.ForeignKey("reviews.AISystem", on_delete=models.PROTECT, related_name="purge_runs")
    cutoff = models.DateTimeField(help_text="Records older than this were purged.")
    retention_days = models.PositiveIntegerField(help_text="The system's retention when the purge ran.")
    reason = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    export_path = models.CharField(max_length=500, help_text="Relative to MEDIA_ROOT.")
    export_sha256 = models.CharField(max_length=64)
    export_bytes = models.BigIntegerField(default=0)
    first_seq = models.BigIntegerField(null=True, blank=True, help_text="First chain position in the export.")
    last_seq = models.BigIntegerField(null=True, blank=True, help_text="Last chain position in the export.")
    cases_purged = models.PositiveIntegerField(default=0)
    history_rows_deleted = models.PositiveIntegerField(default=0)
    events_purged = models.PositiveIntegerField(default=0)

    history = HistoricalRecords(get_user=get_history_user, table_name="audit_historicalpurgerun")

    class Meta:
        db_table = "audit_purgerun"
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(retention_days__gte=MIN_RETENTION_DAYS), name="purgerun_retention_min_six_months"
            ),
        ]
        indexes = [models.Index(fields=["system", "started_at"], name="purgerun_system_idx")]

    def __str__(self) -> str:
        return f"Purge #{self.pk} of {self.system_id} before {self.cutoff:%Y-%m-%d}"


class BiometricUse(models.Model):
    """One period of use of a remote biometric identification system (Art. 12(3)(a)-(b)).

    Opened and closed through ``records.services`` (audited). The cases received
    during the period are the searches; the log (``records.selectors.biometric_searches``)
    joins them with the input that produced a match and the people who verified it.
    """

    system = models.ForeignKey("reviews.AISystem", on_delete=models.PROTECT, related_name="biometric_uses")
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    reference_database = models.CharField(
        max_length=300, help_text="The reference database the input was checked against (name and version)."
    )
    purpose = models.TextField(blank=True, help_text="What the use was for (operation, investigation...).")
    authorisation_ref = models.CharField(
        max_length=200, blank=True, help_text="Reference of the authorisation the use relies on, if any."
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    history = HistoricalRecords(get_user=get_history_user, table_name="audit_historicalbiometricuse")

    class Meta:
        db_table = "audit_biometricuse"
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(reference_database=""), name="biometricuse_reference_db_required"),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="biometricuse_ends_after_start",
            ),
        ]
        indexes = [models.Index(fields=["system", "started_at"], name="biometricuse_system_idx")]

    def __str__(self) -> str:
        end = f"{self.ended_at:%Y-%m-%d %H:%M}" if self.ended_at else "ongoing"
        return f"{self.system_id}: {self.started_at:%Y-%m-%d %H:%M} – {end}"
