"""Celery application: the worker and the one beat process of the portal."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitl_portal.settings")

app = Celery("hitl_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _bind_task_actor(task_id: str | None = None, **_: object) -> None:
    """Tasks act as the system: history and audit events must say so (not the last web user)."""
    from hitl_portal.actors import set_request_id, set_system_actor

    set_system_actor()
    set_request_id(f"task-{task_id}" if task_id else None)


@task_postrun.connect
def _unbind_task_actor(**_: object) -> None:
    from hitl_portal.actors import clear_actor

    clear_actor()
