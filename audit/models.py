"""The append-only, hash-chained audit log (one global chain) and its signed checkpoints.

Records kept around the ledger (legal holds, purge runs, biometric uses) live in ``records``."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


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
