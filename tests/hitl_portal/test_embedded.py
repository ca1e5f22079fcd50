"""The embedded default really runs: SQLite in WAL mode, and a real Celery worker and
beat on the embedded broker (kombu's SQLAlchemy transport on a SQLite file).

Nothing here is eager: every process is a real one, started as ``scripts/dev.py up``
starts it, in a temporary ``HITL_VAR_DIR`` with no DATABASE_URL and no
CELERY_BROKER_URL. The waits are bounded so that a broken setup fails instead of
hanging; they assert only that something happened, never how fast.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

pytestmark = pytest.mark.sqlite_only

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60
# Configuration of the surrounding run that would point the children elsewhere.
SCRUBBED = (
    "DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "DJANGO_ENV", "HITL_TESTING", "HITL_REAL_CELERY",
    "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE",
)


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    env.update(
        DJANGO_SETTINGS_MODULE="hitl_portal.settings",
        HITL_VAR_DIR=str(tmp_path / "var"),
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def python(env: dict[str, str], code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + code],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


class Process:
    """A Celery process in its own process group, its output kept in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "hitl_portal", *args], cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


@pytest.fixture
def start_celery(embedded_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(name: str, *args: str) -> Process:
        process = Process(name, list(args), embedded_env, tmp_path)
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()


def wait_for(condition: Callable[[], object], processes: list[Process], what: str) -> object:
    """Poll ``condition`` until it is truthy; fail with the processes' logs if it never is."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for process in processes:
            if process.popen.poll() is not None:
                pytest.fail(f"{process.name} exited with {process.popen.returncode}:\n{process.output()[-4000:]}")
        time.sleep(0.5)
    logs = "\n".join(f"--- {p.name} ---\n{p.output()[-4000:]}" for p in processes)
    pytest.fail(f"gave up waiting ({WAIT_S}s) for {what}\n{logs}")


def heartbeat_seen_at(var_dir: Path) -> str | None:
    with closing(sqlite3.connect(var_dir / "portal.sqlite3", timeout=30)) as db:
        row = db.execute("SELECT seen_at FROM hitl_portal_heartbeat WHERE name = 'worker'").fetchone()
    return row[0] if row else None


def delete_heartbeat(var_dir: Path) -> None:
    with closing(sqlite3.connect(var_dir / "portal.sqlite3", timeout=30)) as db, db:
        db.execute("DELETE FROM hitl_portal_heartbeat")


def broker_messages(var_dir: Path) -> tuple[int, int]:
    """(pending, delivered) message rows in the embedded broker."""
    with closing(sqlite3.connect(var_dir / "celery-broker.sqlite3", timeout=30)) as db:
        pending, delivered = db.execute(
            "SELECT COALESCE(SUM(visible = 1), 0), COALESCE(SUM(visible = 0), 0) FROM kombu_message"
        ).fetchone()
    return pending, delivered


def journal_mode(path: Path) -> str:
    with closing(sqlite3.connect(path, timeout=30)) as db:
        return db.execute("PRAGMA journal_mode").fetchone()[0]


def test_sqlite_default_uses_wal_and_a_busy_timeout(embedded_env):
    out = python(
        embedded_env,
        "import json\n"
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('PRAGMA journal_mode'); mode = c.fetchone()[0]\n"
        "    c.execute('PRAGMA busy_timeout'); timeout = c.fetchone()[0]\n"
        "print(json.dumps({'vendor': connection.vendor, 'file': str(connection.settings_dict['NAME']),\n"
        "                  'mode': mode, 'timeout': timeout, 'txn': connection.transaction_mode}))\n",
    )
    state = json.loads(out)

    assert state["vendor"] == "sqlite"
    assert state["file"] == str(Path(embedded_env["HITL_VAR_DIR"]) / "portal.sqlite3")
    assert state["mode"] == "wal"
    assert state["timeout"] >= 5000  # milliseconds a writer waits for the lock instead of failing
    # Write transactions take the lock up front, so two writers never deadlock on upgrade.
    assert state["txn"] == "IMMEDIATE"


def test_worker_and_beat_run_on_the_embedded_broker(embedded_env, start_celery):
    var_dir = Path(embedded_env["HITL_VAR_DIR"])
    manage(embedded_env, "migrate", "--noinput")
    assert heartbeat_seen_at(var_dir) is None

    worker = start_celery("worker", "worker", "-l", "info", "--concurrency", "1")

    # The web side enqueues; only the worker can have run it, since no beat runs yet.
    python(embedded_env, "from hitl_portal.tasks import heartbeat\nheartbeat.delay()\n")
    wait_for(lambda: heartbeat_seen_at(var_dir), [worker], "the worker to run a task sent with .delay()")
    assert "hitl_portal.heartbeat" in worker.output()
    assert journal_mode(var_dir / "celery-broker.sqlite3") == "wal"

    # Now beat alone schedules the heartbeat: its row comes back after being removed.
    delete_heartbeat(var_dir)
    beat = start_celery("beat", "beat", "-l", "info")
    wait_for(lambda: heartbeat_seen_at(var_dir), [worker, beat], "a beat-scheduled heartbeat")
    assert "Sending due task portal-heartbeat" in beat.output()

    # /healthz (in a process on the same configuration) shows the trace.
    health = json.loads(python(
        embedded_env,
        "from django.test import Client\n"
        "response = Client().get('/healthz')\n"
        "print(response.content.decode())\n",
    ))
    assert health["status"] == "ok"
    assert health["broker"] == "embedded"
    assert health["worker_last_seen"] is not None

    beat.stop()
    worker.stop()

    # Delivered messages stay in kombu's table until pruned.
    _, delivered = broker_messages(var_dir)
    assert delivered > 0
    deleted = int(python(
        embedded_env, "from hitl_portal.tasks import prune_embedded_broker\nprint(prune_embedded_broker(max_age_s=0))\n"
    ))
    assert deleted == delivered
    assert broker_messages(var_dir)[1] == 0
