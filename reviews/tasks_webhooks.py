"""Webhook delivery tasks: one task per enqueued batch, plus the beat sweeper for retries.

Both are safe under ``acks_late`` re-delivery: they only send rows that are still
pending and due, claiming each one first, so a delivered row is never sent again.
"""

from __future__ import annotations

from celery import shared_task

from reviews.services.webhooks import webhooks_deliver, webhooks_sweep


@shared_task(name="reviews.deliver_webhooks", acks_late=True, ignore_result=True)
def deliver_webhooks(delivery_ids: list[int]) -> int:
    """Send the deliveries enqueued by one transaction; returns how many were attempted.

    No Celery retries: a failed attempt is rescheduled in the delivery table and
    picked up by ``reviews.sweep_webhooks`` (no long countdowns on the broker).
    """
    return webhooks_deliver(delivery_ids=[int(pk) for pk in delivery_ids])


@shared_task(name="reviews.sweep_webhooks", acks_late=True, ignore_result=True)
def sweep_webhooks() -> int:
    """Beat (every 5 s): send due pending deliveries, a bounded batch per run."""
    return webhooks_sweep()
