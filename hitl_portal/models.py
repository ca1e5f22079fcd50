"""Project-level infrastructure rows (not domain data)."""

from django.db import models


class Heartbeat(models.Model):
    """Last time each background process (worker via beat) showed a sign of life; /healthz reads it."""

    name = models.CharField(max_length=40, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"
