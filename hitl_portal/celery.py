"""Celery application: the worker and the one beat process of the portal."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing

from celery import Celery
from celery.signals import beat_init, task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitl_portal.settings")

app = Celery("hitl_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@beat_init.connect
def _embedded_broker_wal(**_: object) -> None:
    """Put the embedded broker's SQLite file in WAL mode (it stays so; setting it again is a no-op).

    The web server, the worker and beat all write to that file; WAL lets them read
    while one writes, where SQLite's default rollback journal blocks every reader.
    """
    from django.conf import settings

    path = settings.HITL_EMBEDDED_BROKER_FILE
    if path is None:
        return
    with closing(sqlite3.connect(path, timeout=30)) as db:
        db.execute("PRAGMA journal_mode=WAL")


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
