"""A bias audit on a real Celery worker and Redis, with a chunk killed mid-way and run again.

Nothing here is eager. The worker is a real ``celery worker`` process (solo
pool) on the pytest test database, with ``HITL_REAL_CELERY=1`` and the broker
on a Redis database of its own; audits are requested and tasks sent from
subprocesses with the same environment, so the request → commit → broker →
worker path is the production one. Every wait is bounded and asserts only that
something happened, never how fast.

The kill: the test holds an uncommitted row in the chunk's unique slot, so the
worker's chunk computes its counts and then blocks on its upsert; the worker is
killed with SIGKILL right there. PostgreSQL rolls the chunk's transaction back.
A new worker runs the other chunks; the killed one is run again by resuming the
audit (what the nightly sweep does for audits left open), and the audit comes
out identical to an uninterrupted one over the same data.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from fairness.models import AuditStatus, BiasAudit, BiasAuditChunk
from fairness.services import bias_audit_request, chunk_key, plan_slices
from tests.fairness.factories import add_cases, make_audited_system

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 90
REDIS_URL = os.environ.get("HITL_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SCRUBBED = ("CELERY_BROKER_URL", "REDIS_URL", "DJANGO_ENV", "HITL_TESTING", "DATABASE_URL", "PYTEST_CURRENT_TEST")


def redis_client():
    import redis

    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)


@pytest.fixture
def broker() -> Iterator[str]:
    """Our own Redis database, emptied before and after (a killed worker leaves its unacked message there)."""
    import redis

    try:
        redis_client().ping()
    except redis.exceptions.ConnectionError:
        message = f"needs Redis at {REDIS_URL} (redis-server; or set HITL_TEST_REDIS_URL)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    redis_client().flushdb()
    yield REDIS_URL
    redis_client().flushdb()


def database_url() -> str:
    """The pytest test database (``test_<name>``), which the worker must use too."""
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def worker_env(broker: str, tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    env.update(
        DJANGO_SETTINGS_MODULE="hitl_portal.settings",
        DATABASE_URL=database_url(),
        CELERY_BROKER_URL=broker,
        HITL_REAL_CELERY="1",
        HITL_VAR_DIR=str(tmp_path / "var"),
        PYTHONUNBUFFERED="1",
    )
    return env


class Worker:
    """A Celery worker in its own process group, its output kept in a log file."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "hitl_portal", "worker", "-l", "info", "--pool", "solo",
                 "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", f"{name}@%h"],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, nothing acknowledged, the task dies where it is."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[str], Worker]]:
    started: list[Worker] = []

    def start(name: str) -> Worker:
        worker = Worker(name, worker_env, tmp_path)
        started.append(worker)
        return worker

    yield start
    for worker in reversed(started):
        worker.stop()


def run_python(env: dict[str, str], code: str) -> str:
    """Run Django code in a fresh process with the worker's environment (real broker, no eager tasks)."""
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + code],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def wait_for(condition: Callable[[], object], workers: list[Worker], what: str) -> object:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for worker in workers:
            if worker.popen.poll() is not None:
                pytest.fail(f"{worker.name} exited with {worker.popen.returncode}:\n{worker.output()[-4000:]}")
        time.sleep(0.25)
    logs = "\n".join(f"--- {w.name} ---\n{w.output()[-4000:]}" for w in workers)
    pytest.fail(f"gave up waiting ({WAIT_S}s) for {what}\n{logs}")


def status_of(audit_id: int) -> str:
    return BiasAudit.objects.values_list("status", flat=True).get(pk=audit_id)


def chunk_rows(audit_id: int) -> list[tuple]:
    return list(BiasAuditChunk.objects.filter(audit_id=audit_id).order_by("key")
                .values_list("key", "counts", "cases", "done_at"))


def blocked_chunk_backends() -> list[int]:
    """Backends of the test database waiting on a lock in a chunk upsert."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
            "AND query ILIKE %s",
            [connection.settings_dict["NAME"], "%fairness_biasauditchunk%"],
        )
        return [row[0] for row in cursor.fetchall()]


def backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


# One hour's worth of cases; six such hours make the audited period. Group f is approved
# 5 / 17 of the time by the AI, m 10 / 24: a disparate impact ratio of 0.71, flagged.
HOUR = [
    (5, "f", "approve", "approve", "approve"),
    (12, "f", "reject", "reject", "reject"),
    (10, "m", "approve", "approve", "approve"),
    (7, "m", "reject", "reject", "reject"),
    (7, "m", "reject", "approve", None),
    (3, None, "approve", "approve", None),
]


def test_bias_audit_on_a_real_worker_survives_a_killed_chunk(worker_env, start_worker, monkeypatch, settings):
    system, point = make_audited_system()
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=7)
    end = start + dt.timedelta(hours=6)
    for hour in range(6):
        add_cases(system, point, HOUR, received_at=start + dt.timedelta(hours=hour, minutes=30))

    # Audit A, uninterrupted: requested in another process; the task goes to Redis when that commits.
    worker = start_worker("worker-1")
    out = run_python(worker_env, (
        "import datetime as dt\n"
        "from fairness.services import bias_audit_request\n"
        "from reviews.models import AISystem\n"
        "audit = bias_audit_request(actor=None, system=AISystem.objects.get(slug='credit-scoring'), "
        f"attribute='gender', period_from=dt.datetime.fromisoformat('{start.isoformat()}'), "
        f"period_to=dt.datetime.fromisoformat('{end.isoformat()}'))\n"
        "print(audit.pk)\n"
    ))
    audit_a = int(out.strip().splitlines()[-1])
    wait_for(lambda: status_of(audit_a) == AuditStatus.DONE, [worker], "audit A to finish on the worker")
    a = BiasAudit.objects.get(pk=audit_a)
    assert a.flagged and a.incident_id is not None and a.cases_counted == 264
    assert "fairness.run_bias_audit" in worker.output() and "fairness.audit_chunk" in worker.output()

    # Audit B over the same period in hourly chunks (6), planned and run by the worker.
    settings.HITL_BIAS_AUDIT_CHUNK_SECONDS = 3600
    monkeypatch.setattr("fairness.services._enqueue_run", lambda audit_id: None)  # sent below, to Redis
    b = bias_audit_request(actor=None, system=system, attribute="gender", period_from=start, period_to=end)
    plan = plan_slices(start, end, seconds=3600)
    assert len(plan) == 6
    victim = 2
    victim_key = chunk_key(*plan[victim])

    # Occupy the victim chunk's unique slot in an open transaction of our own.
    holder = psycopg.connect(database_url().replace("postgres://", "postgresql://"), autocommit=False)
    try:
        holder.execute(
            "INSERT INTO fairness_biasauditchunk (audit_id, key, received_from, received_to, counts, cases, done_at) "
            "VALUES (%s, %s, %s, %s, '[]'::jsonb, 0, now())",
            [b.pk, victim_key, *plan[victim]],
        )
        run_python(worker_env, f"from fairness.tasks import run_bias_audit\nrun_bias_audit.delay({b.pk})\n")
        (blocked,) = wait_for(blocked_chunk_backends, [worker], "the victim chunk to block on its upsert")
        # Two chunks are in; the victim computed its counts and waits; three more wait in Redis.
        assert len(chunk_rows(b.pk)) == 2
        worker.kill()
        holder.rollback()
    finally:
        holder.close()
    wait_for(lambda: not backend_alive(blocked), [], "PostgreSQL to end the killed worker's session")
    # The killed chunk left nothing behind: its transaction was rolled back with the session.
    assert victim_key not in [row[0] for row in chunk_rows(b.pk)]
    assert status_of(b.pk) == AuditStatus.RUNNING

    # A new worker takes the chunks still queued; the killed one's message is stuck unacknowledged
    # (Redis redelivers it only after the visibility timeout), so the audit stays open.
    worker2 = start_worker("worker-2")
    wait_for(lambda: len(chunk_rows(b.pk)) == 5, [worker2], "the queued chunks to run on the new worker")
    assert status_of(b.pk) == AuditStatus.RUNNING

    # Resume: only the missing chunk is enqueued again; the last chunk in finishes the audit.
    run_python(worker_env, f"from fairness.tasks import run_bias_audit\nrun_bias_audit.delay({b.pk})\n")
    wait_for(lambda: status_of(b.pk) == AuditStatus.DONE, [worker2], "audit B to finish after the re-run")
    b.refresh_from_db()
    a.refresh_from_db()
    assert b.results == a.results
    assert b.cases_counted == a.cases_counted == 264
    assert b.flagged and b.incident_id is not None and b.incident_id != a.incident_id
    assert [row[0] for row in chunk_rows(b.pk)] == sorted(chunk_key(*piece) for piece in plan)

    # Run finished chunks again (redelivered messages): identical results, nothing filed twice.
    before = (chunk_rows(b.pk), b.results, b.finished_at, b.incident_id)
    seen = worker2.output().count("fairness.audit_chunk[")
    run_python(worker_env, (
        "from fairness.tasks import audit_chunk\n"
        f"audit_chunk.delay({b.pk}, {victim})\n"
        f"audit_chunk.delay({b.pk}, 0)\n"
    ))
    # Each task logs a "received" and a "succeeded" line.
    wait_for(lambda: worker2.output().count("fairness.audit_chunk[") >= seen + 4, [worker2],
             "the worker to run the repeated chunks")
    b.refresh_from_db()
    assert (chunk_rows(b.pk), b.results, b.finished_at, b.incident_id) == before
    for action in ("bias_audit.completed", "bias_audit.flagged"):
        assert AuditEvent.objects.filter(action=action, object_id=str(b.pk)).count() == 1
    assert "Traceback" not in worker2.output()
