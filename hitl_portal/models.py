"""Project-level infrastructure rows (not domain data)."""

from django.db import models


class Heartbeat(models.Model):
    """Last time each background process (worker via beat) showed a sign of life; /healthz reads it."""

    name = models.CharField(max_length=40, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"


class NotificationKind(models.TextChoices):
    """What an alert is about; users choose their channels per kind."""

    SLA_BREACH = "sla_breach", "SLA breaches"
    UNCLAIMABLE_CASE = "unclaimable_case", "Cases no one can claim"
    ESCALATION = "escalation", "Escalations"
    INCIDENT_DEADLINE = "incident_deadline", "Incidents overdue or near their Art. 73 deadline"
    REVIEWER_SUSPENDED = "reviewer_suspended", "Reviewer suspensions"
    CHAIN_VERIFICATION = "chain_verification", "Audit chain verification failures"
    MONITORING = "monitoring", "Monitoring alerts"
    EXPLANATION_DEADLINE = "explanation_deadline", "Explanation-request deadlines (Art. 86)"
    TRAINING_EXPIRY = "training_expiry", "Training expiry"
    LOCKOUT = "lockout", "Account lockouts"


class Notification(models.Model):
    """One alert: what happened, for whom (inbox rows), and how it is being delivered (delivery rows).

    Written only by ``hitl_portal.notifications.notify``. ``dedupe_key`` makes an alert
    about the same thing (e.g. "case 12 cannot be claimed") be raised once.
    """

    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    severity = models.CharField(max_length=8, choices=[("info", "info"), ("warning", "warning"),
                                                       ("critical", "critical")], default="warning")
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True, help_text="Path of the page to act on.")
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "created_at"], name="notification_kind_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"


class NotificationRecipient(models.Model):
    """A notification in one user's in-app inbox (read or not)."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="recipients")
    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="notifications")
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["notification", "user"], name="notification_once_per_user")]
        indexes = [models.Index(fields=["user", "read_at"], name="inbox_unread_idx")]

    def __str__(self) -> str:
        return f"{self.notification_id} for user {self.user_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    GAVE_UP = "gave_up", "Gave up"


class NotificationDelivery(models.Model):
    """One attempt series to reach someone outside the portal (an e-mail address, a chat webhook).

    Retried with exponential backoff by beat (``hitl_portal.deliver_notifications``);
    every failure keeps its (short) error. ``sent`` only after the channel accepted it.
    """

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=[("email", "e-mail"), ("chat", "chat webhook")])
    target = models.CharField(max_length=300, help_text="E-mail address, or the chat channel's name.")
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["next_attempt_at"], name="delivery_due_idx",
                                condition=models.Q(status="pending"))]

    def __str__(self) -> str:
        return f"{self.channel} → {self.target}: {self.status}"


class NotificationPreference(models.Model):
    """A user's channels for one kind of alert (no row: in-app and e-mail both on)."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="notification_preferences")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    inbox = models.BooleanField(default=True)
    email = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="notification_preference_once")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.kind} (inbox {self.inbox}, e-mail {self.email})"
