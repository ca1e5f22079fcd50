"""Queue, lease and SLA tasks."""
