"""The incident register: serious incidents (Art. 73) with their reporting clock, bias, chain and quality incidents.

The tables keep their original names (``compliance_incident``): the register moved
here from the compliance app without touching data (see migration 0001).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from reviews.models import AISystem, Case, tracked_history


class IncidentKind(models.TextChoices):
    DEATH = "death", "Death of a person (Art. 73(4))"
    CRITICAL_INFRASTRUCTURE = "critical_infrastructure", "Critical infrastructure disruption (Art. 73(3))"
    WIDESPREAD_INFRINGEMENT = "widespread_infringement", "Widespread infringement (Art. 73(3))"
    SERIOUS_HARM = "serious_harm", "Other serious incident (Art. 73(2))"
    BIAS = "bias", "Bias incident"
    OTHER = "other", "Other incident"


class IncidentStatus(models.TextChoices):
    AWARE = "aware", "Aware"
    INITIAL_REPORT = "initial_report", "Initial report filed"
    FULL_REPORT = "full_report", "Full report filed"
    CLOSED = "closed", "Closed"


class IncidentSource(models.TextChoices):
    MANUAL = "manual", "Filed by a person"
    BIAS_AUDIT = "bias_audit", "Bias audit breach"
    CHAIN_VERIFICATION = "chain_verification", "Audit chain verification failure"
    QUALITY = "quality", "Quality monitoring"


class Incident(models.Model):
    """An incident in the register, with its Art. 73 reporting clock (computed by the service)."""

    system = models.ForeignKey(AISystem, null=True, blank=True, on_delete=models.PROTECT, related_name="incidents")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents")
    kind = models.CharField(max_length=32, choices=IncidentKind.choices)
    source = models.CharField(max_length=24, choices=IncidentSource.choices, default=IncidentSource.MANUAL)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField()
    aware_at = models.DateTimeField()
    report_due_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.AWARE)
    initial_report_at = models.DateTimeField(null=True, blank=True)
    full_report_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    overdue_alerted_at = models.DateTimeField(null=True, blank=True)
    # Free-form reference to what raised it (e.g. a bias audit id), for the register's links.
    source_ref = models.CharField(max_length=64, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = tracked_history(table_name="compliance_historicalincident")

    class Meta:
        db_table = "compliance_incident"
        ordering = ["-aware_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=IncidentKind.values), name="incident_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=IncidentStatus.values), name="incident_status_valid"),
            models.CheckConstraint(
                condition=~Q(kind__in=["bias", "other"]) | Q(report_due_at__isnull=True),
                name="incident_no_art73_clock_for_bias_or_other",
            ),
        ]
        indexes = [
            models.Index(fields=["report_due_at"], name="incident_open_due_idx", condition=~Q(status="closed")),
            models.Index(fields=["system", "status"], name="incident_system_status_idx"),
        ]

    def __str__(self) -> str:
        return f"Incident #{self.pk} ({self.kind})"


# --- Requirements catalog (versioned reference data, loaded by migrations) -------------------
