"""Celery task of API tokens: tidy the table of expired ones."""

from celery import shared_task

from reviews.services.tokens import purge_expired_tokens

__all__ = ["purge_expired_tokens_task"]


@shared_task(name="reviews.purge_expired_tokens", ignore_result=True, acks_late=True)
def purge_expired_tokens_task() -> int:
    """Delete expired API tokens (they already fail authentication; this keeps the lookup index small)."""
    return purge_expired_tokens()
