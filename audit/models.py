"""The append-only, hash-chained audit log (one global chain), its signed checkpoints,
retention (legal holds, purge runs) and the Art. 12(3) record of biometric uses."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from hitl_portal.actors import get_history_user
from reviews.models import MIN_RETENTION_DAYS


class ActorType(models.TextChoices):
    USER = "user", "User"
    INTEGRATION = "integration", "Integration"
    SYSTEM = "system", "System"


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def sealed(self) -> AuditEventQuerySet:
        return self.filter(seq__isnull=False)

    def update(self, **kwargs: object) -> int:  # pragma: no cover - guard
        raise TypeError("AuditEvent is append-only: use audit.services, never QuerySet.update()")

    def delete(self) -> tuple[int, dict[str, int]]:  # pragma: no cover - guard
        raise TypeError("AuditEvent is append-only")


class AuditEvent(models.Model):
    """One intervention or change of state.

    Inserted *unsealed* (no ``seq``) inside the business transaction; the sealer
    later assigns the gap-free ``seq``, ``prev_hash`` and ``hash`` in commit order.
    ``payload`` is canonical JSON text (the hashed bytes); a lawful purge may set it
    to NULL, leaving ``payload_sha256`` and so the chain intact. Personal data is
    referred to by id and hash only. Not history-tracked: this *is* the history.
    """

    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    at = models.DateTimeField(default=timezone.now)
    actor_type = models.CharField(max_length=12, choices=ActorType.choices)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_label = models.CharField(max_length=255, blank=True)
    system_id = models.BigIntegerField(null=True, blank=True)
    case_id = models.BigIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=80, blank=True)
    reason = models.TextField(blank=True)
    payload = models.TextField(null=True, blank=True)
    payload_sha256 = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64, null=True, blank=True)
    hash = models.CharField(max_length=64, null=True, blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["id"], name="audit_unsealed_idx", condition=Q(seq__isnull=True)),
            models.Index(fields=["case_id", "seq"], name="audit_case_seq_idx"),
            models.Index(fields=["system_id", "seq"], name="audit_system_seq_idx"),
            models.Index(fields=["action", "seq"], name="audit_action_seq_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(seq__isnull=True) | Q(hash__isnull=False, prev_hash__isnull=False),
                name="auditevent_sealed_has_hashes",
            ),
        ]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"#{self.seq or '-'} {self.action} {self.object_type}:{self.object_id}"

    def envelope(self) -> dict[str, object]:
        """The hashed fields, in the form canonical JSON writes them."""
        from audit.canonical import normalize

        return {
            "seq": self.seq,
            "at": normalize(self.at),
            "actor_type": self.actor_type,
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "object_label": self.object_label,
            "system_id": self.system_id,
            "case_id": self.case_id,
            "request_id": self.request_id,
            "reason": self.reason,
            "payload_sha256": self.payload_sha256,
            "prev_hash": self.prev_hash,
        }


class Checkpoint(models.Model):
    """A signed statement: "event ``seq`` of the chain had hash ``hash``", made at ``signed_at``.

    Signed with the portal's Ed25519 key (``audit.signing``). The public key is
    published, so anyone holding a copy of a checkpoint (an export, the public
    key page) can later prove that history up to ``seq`` was rewritten or cut
    short, even by someone who can write to the database. Append-only like the
    chain (a database trigger refuses UPDATE and DELETE) and not history-tracked.
    """

    seq = models.BigIntegerField(unique=True, help_text="Chain position the checkpoint covers.")
    hash = models.CharField(max_length=64, help_text="Hash of the event at that position.")
    signed_at = models.DateTimeField(default=timezone.now)
    signature = models.CharField(max_length=128, help_text="Ed25519 signature (hex) of the checkpoint statement.")
    key_fingerprint = models.CharField(max_length=64, help_text="SHA-256 (hex) of the raw public key.")
    public_key = models.CharField(max_length=64, help_text="The raw Ed25519 public key (hex) that signed it.")

    class Meta:
        ordering = ["seq"]
        default_permissions = ("view",)
        constraints = [
            models.CheckConstraint(condition=Q(seq__gte=1), name="checkpoint_seq_positive"),
        ]

    def __str__(self) -> str:
        return f"checkpoint @{self.seq} ({self.signed_at:%Y-%m-%d %H:%M})"


class LegalHold(models.Model):
    """A hold that stops retention purges: for one system, or for every system when ``system`` is empty.

    Placed and released only through ``audit.services`` (both audited); a released
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

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
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
        scope = self.system.slug if self.system_id else "all systems"
        state = "released" if self.released_at else "active"
        return f"Legal hold #{self.pk} on {scope} ({state})"

    @property
    def is_active(self) -> bool:
        return self.released_at is None


class PurgeRun(models.Model):
    """One retention purge: what was erased, and the export that holds it (path and SHA-256).

    Written by ``audit.retention.purge_system`` in the purge's own transaction,
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

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
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

    Opened and closed through ``audit.services`` (audited). The cases received
    during the period are the searches; the log (``audit.selectors.biometric_log``)
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

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
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
