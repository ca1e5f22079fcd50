"""Celery tasks of the reviews app (Celery autodiscovers this module)."""

from reviews.tasks_queue import *  # noqa: F403
from reviews.tasks_tokens import *  # noqa: F403
from reviews.tasks_webhooks import *  # noqa: F403
