"""Figures at 10 million cases: one persistent database, loaded once with COPY, then each target timed.

Run from the repository root::

    .venv/bin/python bench/scale.py                      # load hitl_scale (10 M cases, 30 M events), then measure
    .venv/bin/python bench/scale.py --reuse              # measure again against the loaded database
    .venv/bin/python bench/scale.py --reuse --only kpi,export   # some targets only
    .venv/bin/python bench/scale.py --load-only          # load, do not measure (run it under nohup)
    .venv/bin/python bench/scale.py --cases 500000 --events 1500000 --db hitl_scale_small   # a trial size
    .venv/bin/python bench/scale.py --drop               # drop the database and its state files

The database (``--db``, default ``hitl_scale``) is created once (``createdb`` as the
``postgres`` role on 127.0.0.1, owned by ``--db-user``) and kept: loading 40 million
rows takes a while, the timings are iterated against it with ``--reuse``. The load's
facts (fixture ids, the moment the data ends, load times) and the audit signing key
live beside it in ``bench/out/<db>.json`` and ``bench/out/<db>-signing-key.pem``.

The load (each part a process of its own, cases and audit events side by side):

* the accounts and rules of ``bench/kpis.py`` through the portal's services (three
  systems, four intervention points, one of them four-eyes, one labeling; 30
  reviewers, a manager), the credit system with protected attributes
  ``gender``/``age_band`` and positive label ``approve``;
* ``--cases`` cases over ``--days`` days with the generator of ``bench/kpis.py``
  (weekly seasonality, growth, about a third routed with decisions, two on the
  four-eyes point plus an adjudication when they disagree, ground truth for 60 % of
  the cases older than a week, 1 % gold, 5 % blind, a live queue; credit cases carry
  the protected attributes), ``COPY`` in transactions of ``--batch`` cases with
  their decisions and, for each case, the history row ingestion writes when it
  creates the case (``+``, dated when received). The further history rows a
  reviewed case collects (claim, decision) are left out: nothing measured here reads
  them, and the rollup's incremental refresh only reads rows of its look-back window
  through the ``history_date`` index (so older rows cost it nothing);
* ``--events`` audit events hashed and linked exactly as the sealer does
  (``bench/audit_chain.py``'s generator, spread over the same days, three events a
  case), ``COPY`` in transactions of a million, a signed checkpoint every 100,000;
* ``VACUUM ANALYZE``, then the dashboard rollup built from scratch.

The measurements (``--only`` picks some), each in a fresh process, each against its
raw-SQL baseline in the same process where one is meaningful:

* ``kpi``: ``GET /api/v1/kpis/`` for the last 90 whole days (all systems, one
  system) and without parameters, in-process through Django's test client, p50 of
  ``--repeat``; baseline: the 90-day aggregate as one plain ``SELECT``;
* ``dashboard``: ``GET /dashboard/?period=90`` (all systems, one system), p50;
* ``bias``: a bias audit of the credit system by gender over the product's default
  period (the last 30 days, ``fairness.services.DEFAULT_PERIOD``), chunks inline;
  baseline: the audit's ``GROUP BY`` as one statement;
* ``agreement``: ``quality.selectors.live_agreement`` over the product's default
  period (``HITL_QUALITY_PERIOD_DAYS``) and over 365 days; baseline: one
  ``GROUP BY`` over the same decisions;
* ``verify``: ``audit.selectors.verify_chain`` over the first 1 M and 10 M events
  (``--verify-prefixes``) and the whole chain, each in its own process, as the portal
  runs it (segments on worker processes from a million events on; set
  ``HITL_AUDIT_VERIFY_WORKERS=1`` for the serial walk): wall, CPU of the process and
  its workers, CPU of all their database backends, peak RSS of the process and the
  summed peak of all its processes; baseline (unless ``--no-verify-raw``): the same
  columns of the first 10 M events read in ``seq`` order through a server-side
  cursor, nothing checked; with ``--verify-nightly`` the whole chain once more from a
  daemonic child process, the kind the nightly Celery task runs in (a prefork child);
* ``export``: the training-data export (``records.training_data.stream_training_data``,
  JSON Lines) of the credit system's last 30 days and of all of it, rows/s and
  peak RSS; baseline: ``COPY (SELECT …) TO STDOUT`` of the same rows with the same
  columns.

Prints a Markdown table and writes ``bench/out/scale-<timestamp>.json``. A
benchmark, not a test: nothing in CI runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
OUT_DIR = BASE_DIR / "bench" / "out"
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))
HOST = "127.0.0.1"
EVENT_BATCH = 1_000_000
LOADED_TABLES = ("reviews_case", "reviews_decision", "reviews_historicalcase", "audit_auditevent")
TARGETS = {"kpi": 300.0, "dashboard": 500.0, "bias": 10.0, "agreement": 5.0, "verify": 150.0, "export": 50_000}
ALL = ("kpi", "dashboard", "bias", "agreement", "verify", "export")


def vm_status(name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def log(message: str) -> None:
    print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- Paths and environment -------------------------------------------------------------------


def state_path(db: str) -> Path:
    return OUT_DIR / f"{db}.json"


def key_path(db: str) -> Path:
    return OUT_DIR / f"{db}-signing-key.pem"


def child_env(args: argparse.Namespace) -> dict[str, str]:
    var_dir = OUT_DIR / f"{args.db}-var"
    return {
        **{k: v for k, v in os.environ.items() if k not in ("DJANGO_ENV", "HITL_TESTING", "HITL_AUDIT_SIGNING_KEY")},
        "DATABASE_URL": f"postgres://{args.db_user}@{HOST}:{args.pg_port}/{args.db}",
        "HITL_VAR_DIR": str(var_dir), "MEDIA_ROOT": str(var_dir / "media"),
        "HITL_AUDIT_SIGNING_KEY_FILE": str(key_path(args.db)), "HITL_AUDIT_SEAL_ON_COMMIT": "false",
        # Plain static-file storage (no collectstatic for a benchmark database); nothing measured depends on it.
        "HITL_TESTING": "1", "DJANGO_SETTINGS_MODULE": "hitl_portal.settings",
    }


def dsn() -> str:
    return os.environ["DATABASE_URL"]


def setup_django() -> None:
    import django

    django.setup()
    from django.conf import settings

    if not settings.IS_POSTGRES or not str(settings.DATABASES["default"]["NAME"]).startswith("hitl_scale"):
        raise SystemExit("bench/scale.py children only run against a hitl_scale* PostgreSQL database")
    # Events the measured code records stay unsealed: sealing is the pipeline benchmark's business.
    settings.HITL_AUDIT_SEAL_ON_COMMIT = False


def load_state(db: str) -> dict[str, Any]:
    return json.loads(state_path(db).read_text())


# --- Children: the load ------------------------------------------------------------------------


def child_setup() -> dict[str, Any]:
    setup_django()
    from kpis import setup_fixture

    return setup_fixture()


def child_cases(db: str, cases: int, days: int, batch: int, part: tuple[int, int] = (0, 1)) -> dict[str, Any]:
    setup_django()
    from kpis import load

    state = load_state(db)
    now = dt.datetime.fromisoformat(state["now"])
    started = time.monotonic()

    def progress(counts: dict[str, int]) -> None:
        rate = counts["cases"] / (time.monotonic() - started)
        log(f"cases part {part[0] + 1}/{part[1]}: {counts['cases']:,} ({counts['decisions']:,} decisions, "
            f"{counts['history']:,} history rows), "
            f"{rate:,.0f} cases/s, RSS {vm_status('VmRSS') // 1024} MiB")

    counts = load(dsn(), state["fixture"], cases=cases, days=days, now=now, seed=20261202 + part[0], batch=batch,
                  creation_history=True, progress=progress, part=part)
    return {**counts, "seconds": round(time.monotonic() - started, 1), "peak_rss_kib": vm_status("VmHWM")}


def child_events(db: str, events: int, days: int, cases: int) -> dict[str, Any]:
    """The chain, hashed and linked as the sealer does, spread over the cases' days; signed checkpoints."""
    setup_django()
    import psycopg
    from audit_chain import CHECKPOINT_EVERY, _event_rows

    from audit.models import Checkpoint
    from audit.signing import checkpoint_statement, public_key, sign

    state = load_state(db)
    now = dt.datetime.fromisoformat(state["now"])
    start = now - dt.timedelta(days=days)
    step_us = max(1001, int(days * 86400e6 / max(events, 1)))
    columns = ("seq, at, actor_type, actor_id, actor_name, action, object_type, object_id, object_label, "
               "system_id, case_id, request_id, reason, payload, payload_sha256, prev_hash, hash, sealed_at")
    key = public_key()
    started = time.monotonic()
    rows = _event_rows(events, start=start, step_us=step_us, events_per_case=max(1, events // max(cases, 1)))
    written = 0
    with psycopg.connect(dsn()) as conn:
        while written < events:
            checkpoints: list[tuple[int, str]] = []
            with conn.cursor() as cur, cur.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
                for row, seq, digest in rows:
                    copy.write_row(row)
                    written = seq
                    if seq % CHECKPOINT_EVERY == 0 or seq == events:
                        checkpoints.append((seq, digest))
                    if seq % EVENT_BATCH == 0:
                        break
            conn.commit()
            for seq, digest in checkpoints:
                signed_at = dt.datetime.now(dt.UTC)
                Checkpoint.objects.create(
                    seq=seq, hash=digest, signed_at=signed_at,
                    signature=sign(checkpoint_statement(seq=seq, hash=digest, signed_at=signed_at)),
                    key_fingerprint=key.fingerprint, public_key=key.hex,
                )
            log(f"events: {written:,}, {written / (time.monotonic() - started):,.0f} events/s, "
                f"RSS {vm_status('VmRSS') // 1024} MiB")
        conn.execute("SELECT setval(pg_get_serial_sequence('audit_auditevent', 'id'), "
                     "(SELECT max(id) FROM audit_auditevent))")
        conn.commit()
    return {"events": written, "checkpoints": Checkpoint.objects.count(),
            "seconds": round(time.monotonic() - started, 1), "peak_rss_kib": vm_status("VmHWM")}


def child_rollup() -> dict[str, Any]:
    setup_django()
    from dashboard.models import DailyRollup, ReviewerDailyRollup
    from dashboard.services import rollup_refresh

    started = time.monotonic()
    full = rollup_refresh(full=True)
    return {"seconds": round(time.monotonic() - started, 1), "days": full.days,
            "rows": DailyRollup.objects.count() + ReviewerDailyRollup.objects.count()}


# --- Children: the measurements ----------------------------------------------------------------


def timed(fn: Any, repeat: int, warm: int = 2) -> dict[str, Any]:
    for _ in range(warm):
        fn()
    samples = []
    cpu = []
    db_cpu = []
    for _ in range(repeat):
        c, b = cpu_seconds(), backend_cpu_seconds()
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
        cpu.append((cpu_seconds() - c) * 1000)
        b_after = backend_cpu_seconds()
        if b is not None and b_after is not None:
            db_cpu.append((b_after - b) * 1000)
    samples.sort()
    # On a shared machine the wall time carries other people's load; the CPU spent by this process
    # and by its database backend per call is the robust figure (as in the pipeline benchmark).
    return {"p50_ms": round(statistics.median(samples), 1), "min_ms": round(samples[0], 1),
            "max_ms": round(samples[-1], 1), "n": repeat, "cpu_p50_ms": round(statistics.median(cpu), 1),
            "db_cpu_p50_ms": round(statistics.median(db_cpu), 1) if db_cpu else None}


def backend_cpu_seconds() -> float | None:
    """CPU used so far by the Django connection's PostgreSQL backend (same host: /proc), None if unknown."""
    from django.db import connection

    try:
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except Exception:  # not set up, another host, or no such process: the figure is optional
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _clients(state: dict[str, Any]) -> tuple[Any, Any]:
    from django.contrib.auth.models import User
    from django.test import Client
    from knox.models import AuthToken

    manager = User.objects.get(pk=state["fixture"]["manager"])
    token = AuthToken.objects.create(user=manager, expiry=None)[1]
    page = Client()
    page.force_login(manager)
    return Client(HTTP_AUTHORIZATION=f"Token {token}"), page


def _get(client: Any, path: str, params: dict[str, str]) -> Any:
    def call() -> None:
        response = client.get(path, params)
        assert response.status_code == 200, (path, response.status_code, response.content[:300])
        if getattr(response, "streaming", False):
            for _ in response.streaming_content:
                pass
    return call


def _queries(fn: Any) -> dict[str, Any]:
    """How many statements one call runs, and the slowest three (seconds, SQL) to profile a missed target."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        fn()
    slowest = sorted(queries.captured_queries, key=lambda q: float(q["time"]), reverse=True)[:3]
    return {"queries": len(queries), "slowest": [(float(q["time"]), q["sql"][:2000]) for q in slowest]}


def _ninety_days() -> tuple[dt.datetime, dt.datetime]:
    from dashboard.aggregation import utc_day
    from hitl_portal.days import day_start

    today = utc_day(dt.datetime.now(dt.UTC))
    return day_start(today - dt.timedelta(days=89)), day_start(today + dt.timedelta(days=1))


def child_kpi(db: str, repeat: int) -> dict[str, Any]:
    setup_django()
    import psycopg
    from kpis import BASELINE_SQL

    api, _ = _clients(load_state(db))
    start, end = _ninety_days()
    aligned = {"from": start.isoformat(), "to": end.isoformat()}
    results: dict[str, Any] = {}
    for name, params in (("kpi_api_90d_all", aligned), ("kpi_api_90d_system", {**aligned, "system": "fraud"}),
                         ("kpi_api_default", {})):
        call = _get(api, "/api/v1/kpis/", params)
        results[name] = {**timed(call, repeat), **_queries(call)}
        log(f"{name}: p50 {results[name]['p50_ms']} ms, {results[name]['queries']} queries, slowest "
            f"{[round(t, 3) for t, _ in results[name]['slowest']]}")
    # The baseline runs on the same (Django's) connection, so its backend CPU is measured alike.
    from django.db import connection

    def raw() -> None:
        with connection.cursor() as cursor:
            cursor.execute(BASELINE_SQL, [start, end])
            cursor.fetchone()

    results["raw_sql_90d"] = timed(raw, max(3, repeat // 3), warm=1)
    with psycopg.connect(dsn()) as conn:
        results["raw_sql_plan"] = [r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + BASELINE_SQL,
                                                             [start, end]).fetchall()]
    log(f"raw: {results['raw_sql_90d']}")
    return results


def child_dashboard(db: str, repeat: int) -> dict[str, Any]:
    setup_django()
    _, page = _clients(load_state(db))
    results: dict[str, Any] = {}
    for name, params in (("dashboard_90d_all", {"period": "90"}),
                         ("dashboard_90d_system", {"period": "90", "system": "credit"})):
        call = _get(page, "/dashboard/", params)
        results[name] = {**timed(call, repeat), **_queries(call)}
        log(f"{name}: p50 {results[name]['p50_ms']} ms, {results[name]['queries']} queries, slowest "
            f"{[round(t, 3) for t, _ in results[name]['slowest']]}")
    return results


def child_bias(db: str) -> dict[str, Any]:
    setup_django()
    from bias_audit import raw_baseline, run_audit

    from fairness.services import DEFAULT_PERIOD
    from reviews.models import AISystem

    credit = AISystem.objects.get(slug="credit")
    now = dt.datetime.now(dt.UTC)
    period = (now - DEFAULT_PERIOD, now)
    raw_s, raw_cases = raw_baseline(_libpq_dsn(), system_id=credit.pk, period_from=period[0], period_to=period[1],
                                    attribute="gender")
    run = run_audit(credit, attribute="gender", threads=1, period=period)
    run.pop("audit")
    run.pop("metrics")
    log(f"bias: {run['total_s']:.2f} s against raw {raw_s:.2f} s")
    return {"period_days": DEFAULT_PERIOD.days, "raw_s": round(raw_s, 3), "raw_cases": raw_cases,
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in run.items()}}


def _libpq_dsn() -> str:
    from django.conf import settings

    db = settings.DATABASES["default"]
    return f"host={db['HOST']} port={db['PORT'] or 5432} user={db['USER']} dbname={db['NAME']}"


AGREEMENT_BASELINE = """
SELECT c.intervention_point_id, date_trunc('day', c.received_at), d.label, count(*)
FROM reviews_decision d JOIN reviews_case c ON c.id = d.case_id
WHERE c.received_at >= %s AND c.received_at < %s AND c.reviewers_required > 1 AND NOT d.is_adjudication
GROUP BY 1, 2, 3
"""


def child_agreement(db: str, repeat: int) -> dict[str, Any]:
    setup_django()
    import psycopg
    from django.db import connection

    from quality.selectors import default_period, live_agreement

    results: dict[str, Any] = {}
    now = dt.datetime.now(dt.UTC)
    for name, (since, until) in (("default_period", default_period(until=now)),
                                 ("365_days", (now - dt.timedelta(days=365), now))):
        pairs: list[int] = []

        def run(since: dt.datetime = since, until: dt.datetime = until, pairs: list[int] = pairs) -> None:
            result = live_agreement(since=since, until=until)
            pairs.append(result["overall"]["units"])

        results[name] = {"days": round((until - since).total_seconds() / 86400), **timed(run, repeat, warm=1),
                         "units": pairs[-1]}
        def raw(s: dt.datetime = since, u: dt.datetime = until) -> None:
            with connection.cursor() as cursor:
                cursor.execute(AGREEMENT_BASELINE, [s, u])
                cursor.fetchall()

        results[name]["raw"] = timed(raw, repeat, warm=1)
        with psycopg.connect(dsn()) as conn:
            results[name]["raw_plan"] = [r[0] for r in conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS) " + AGREEMENT_BASELINE, [since, until]).fetchall()]
        log(f"agreement {name}: {results[name]}")
    return results


class ProcessSampler:
    """Samples, every ``interval`` s, the resident memory of this process and its children (summed)
    and the CPU of this database's client backends other than ``own_pids``.

    ``verify_chain`` may walk on worker processes, each with a connection (and so a
    backend) of its own: their memory and their backends' CPU belong to the figure.
    Backends are matched by database and start time (another client of the same
    database in that time would be counted too).
    """

    def __init__(self, own_pids: set[int], interval: float = 0.25) -> None:
        import threading

        self.own_pids = own_pids
        self.interval = interval
        self.peak_rss_kib = 0
        self.children_seen = 0
        self.children_seen_pids: set[str] = set()
        self.backend_cpu: dict[int, float] = {}
        self.started = dt.datetime.now(dt.UTC)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _rss(pid: int | str) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    @staticmethod
    def _children() -> list[str]:
        """Every descendant: the verification's workers are grandchildren when a daemonic child starts them."""
        pids: list[str] = []
        parents = ["self"]
        while parents:
            parent = parents.pop()
            try:
                tasks = list(Path(f"/proc/{parent}/task").iterdir())
            except OSError:
                continue
            for task in tasks:
                try:
                    found = (task / "children").read_text().split()
                except OSError:
                    continue
                pids += found
                parents += found
        return pids

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(dsn(), autocommit=True) as conn:
            self.own_pids.add(conn.info.backend_pid)
            while True:
                children = self._children()
                self.children_seen_pids.update(children)
                self.children_seen = len(self.children_seen_pids)
                total = self._rss("self") + sum(self._rss(pid) for pid in children)
                self.peak_rss_kib = max(self.peak_rss_kib, total)
                for (pid,) in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND backend_type = 'client backend' AND backend_start >= %s", [self.started]).fetchall():
                    if pid in self.own_pids:
                        continue
                    try:
                        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    self.backend_cpu[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                if self._stop.wait(self.interval):
                    return


def _verify_in_daemonic_process(up_to: int | None) -> Any:
    """``verify_chain`` in a daemonic child as Celery's prefork pool makes them (the nightly task's process)."""
    import billiard
    from django.db import connection

    def walk(sender: Any) -> None:
        from audit.selectors import verify_chain

        try:
            sender.send(verify_chain(up_to_seq=up_to) if up_to else verify_chain())
        finally:
            connection.close()

    connection.close()  # the child opens its own
    context = billiard.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=walk, args=(sender,), daemon=True)
    process.start()
    result = receiver.recv()
    process.join()
    return result


def child_verify(up_to: int | None, *, daemonic: bool = False) -> dict[str, Any]:
    """``verify_chain`` as the portal runs it (segments on worker processes above a million events).

    ``daemonic``: in a daemonic child process, as the nightly Celery task runs it.

    CPU and memory cover the worker processes too: ``cpu_s`` adds the children's CPU
    (``RUSAGE_CHILDREN``, once the pool has joined them), ``peak_rss_kib`` is the
    peak of this process's and its children's resident memory summed (sampled), and
    ``db_cpu_s`` adds the workers' backends (sampled) to this connection's own.
    """
    setup_django()
    from django.db import connection

    from audit.selectors import verify_chain

    backend_before = backend_cpu_seconds()
    cpu_before = cpu_seconds()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    children_before = children.ru_utime + children.ru_stime
    started = time.monotonic()
    with ProcessSampler({connection.connection.info.backend_pid}) as sampler:
        if daemonic:
            result = _verify_in_daemonic_process(up_to)
        else:
            result = verify_chain(up_to_seq=up_to) if up_to else verify_chain()
    seconds = time.monotonic() - started
    # Daemonic: this connection was closed for the fork and did nothing; the child's own
    # backend is sampled with the workers'.
    backend_after = backend_before if daemonic else backend_cpu_seconds()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    children_cpu = children.ru_utime + children.ru_stime - children_before
    known = backend_before is not None and backend_after is not None
    own_db = backend_after - backend_before if known else None  # type: ignore[operator]
    workers_db = sum(sampler.backend_cpu.values())
    process_cpu = cpu_seconds() - cpu_before
    cpu = process_cpu + children_cpu
    db_cpu = own_db + workers_db if own_db is not None else None
    return {"db_cpu_s": round(db_cpu, 1) if db_cpu is not None else None,
            "ok": result.ok, "events": result.events, "checkpoints": result.checkpoints, "problem": result.problem,
            "seconds": round(seconds, 1), "events_per_s": round(result.events / seconds) if seconds else None,
            "cpu_s": round(cpu, 1), "parent_cpu_s": round(process_cpu, 1), "workers_cpu_s": round(children_cpu, 1),
            "workers": sampler.children_seen,
            "cpu_us_per_event": round(cpu / result.events * 1e6, 2) if result.events else None,
            "db_cpu_us_per_event": round(db_cpu / result.events * 1e6, 2) if result.events and db_cpu else None,
            "peak_rss_kib": vm_status("VmHWM"), "peak_rss_all_kib": sampler.peak_rss_kib}


def child_verify_raw(up_to: int) -> dict[str, Any]:
    """The baseline: the verifier's columns in seq order through a server-side cursor, nothing checked."""
    setup_django()
    import psycopg

    started = time.monotonic()
    count = 0
    with psycopg.connect(dsn()) as conn, conn.cursor(name="chain") as cur:
        cur.itersize = 5000
        cur.execute(
            "SELECT seq, at, actor_type, actor_id, actor_name, action, object_type, object_id, object_label, "
            "system_id, case_id, request_id, reason, payload, payload_sha256, prev_hash, hash "
            "FROM audit_auditevent WHERE seq IS NOT NULL AND seq <= %s ORDER BY seq", [up_to])
        for _ in cur:
            count += 1
    seconds = time.monotonic() - started
    return {"events": count, "seconds": round(seconds, 1), "events_per_s": round(count / seconds),
            "peak_rss_kib": vm_status("VmHWM")}


def child_export(db: str, days: int) -> dict[str, Any]:
    setup_django()
    from records.training_data import TrainingExport, stream_training_data
    from reviews.models import AISystem

    credit = AISystem.objects.get(slug="credit")
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(days=days) if days else None
    export = TrainingExport(system=credit, start=start, end=None, fmt="jsonl", include_subject=False)
    backend_before = backend_cpu_seconds()
    cpu_before = cpu_seconds()
    started = time.monotonic()
    rows = size = 0
    for block in stream_training_data(export, actor=None):
        rows += block.count(b"\n")
        size += len(block)
    seconds = time.monotonic() - started
    backend_after = backend_cpu_seconds()
    known = backend_before is not None and backend_after is not None
    return {"db_cpu_s": round(backend_after - backend_before, 1) if known else None,  # type: ignore[operator]
            "days": days or "all", "rows": rows, "bytes": size, "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds) if seconds else None, "cpu_s": round(cpu_seconds() - cpu_before, 1),
            "peak_rss_kib": vm_status("VmHWM")}


EXPORT_BASELINE = """
COPY (
    SELECT c.id, c.external_id, c.received_at, c.decided_at, p.slug, c.rules_version, c.input,
           c.prediction_label, c.prediction_confidence, c.model_version, c.final_label, c.resolution,
           (SELECT d.rationale FROM reviews_decision d WHERE d.case_id = c.id AND d.outcome = 'override'
              AND d.rationale <> '' ORDER BY d.round DESC, d.id DESC LIMIT 1),
           (SELECT count(DISTINCT d.reviewer_id) FROM reviews_decision d WHERE d.case_id = c.id),
           c.true_label
    FROM reviews_case c JOIN reviews_interventionpoint p ON p.id = c.intervention_point_id
    WHERE c.system_id = %s AND NOT c.is_gold AND c.status = 'decided'
      AND c.resolution IN ('reviewed', 'adjudicated') AND c.received_at >= %s
    ORDER BY c.received_at, c.id
) TO STDOUT
"""


def child_export_raw(days: int) -> dict[str, Any]:
    setup_django()
    import psycopg

    from reviews.models import AISystem

    credit = AISystem.objects.get(slug="credit")
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days) if days else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    started = time.monotonic()
    rows = 0
    sql = EXPORT_BASELINE.replace("%s", "{}").format(credit.pk, f"'{since.isoformat()}'")
    with psycopg.connect(dsn()) as conn, conn.cursor() as cur, cur.copy(sql) as copy:
        for block in copy:
            rows += bytes(block).count(b"\n")
    seconds = time.monotonic() - started
    return {"days": days or "all", "rows": rows, "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds) if seconds else None, "peak_rss_kib": vm_status("VmHWM")}


# --- Parent ------------------------------------------------------------------------------------


def sh(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run(cmd, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed ({done.returncode}):\n{done.stdout[-2000:]}\n"
                         f"{done.stderr[-4000:]}")
    return done.stdout


def child(args: argparse.Namespace, *argv: str) -> dict[str, Any]:
    """Run one step in a fresh process; its stderr goes to ours, its last stdout line is its JSON."""
    load = round(os.getloadavg()[0], 2)
    started = time.monotonic()
    done = subprocess.run([sys.executable, __file__, "--db", args.db, "--child", *argv], cwd=BASE_DIR,
                          env=child_env(args), stdout=subprocess.PIPE, text=True, timeout=7200, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {argv} failed ({done.returncode})")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if isinstance(result, dict):
        result.setdefault("load_before", load)
        result.setdefault("wall_s", round(time.monotonic() - started, 1))
    return result


def machine(conn: Any) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    settings = {name: conn.execute(f"SHOW {name}").fetchone()[0]
                for name in ("server_version", "shared_buffers", "work_mem", "max_parallel_workers_per_gather",
                             "effective_cache_size")}
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 1048576, 1),
            "python": platform.python_version(), "postgresql": settings}


def do_load(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    key_path(args.db).write_text(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())
    key_path(args.db).chmod(0o600)
    env = child_env(args)
    sh(["createdb", "-h", HOST, "-p", args.pg_port, "-U", "postgres", "-O", args.db_user, args.db])
    timings: dict[str, Any] = {"started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    t = time.monotonic()
    sh([sys.executable, "manage.py", "migrate", "--skip-checks", "-v", "0"], env=env)
    timings["migrate_s"] = round(time.monotonic() - t, 1)
    state: dict[str, Any] = {"db": args.db, "cases": args.cases, "events": args.events, "days": args.days,
                             "now": dt.datetime.now(dt.UTC).isoformat()}
    state_path(args.db).write_text(json.dumps(state))
    state["fixture"] = child(args, "setup")
    state_path(args.db).write_text(json.dumps(state))
    log(f"migrated and set up in {time.monotonic() - t:.0f} s; loading cases and events side by side")
    t = time.monotonic()
    # Secondary indexes are dropped for the load and built again after it (the same definitions, from
    # pg_indexes): one sort per index instead of 40 million random insertions into each. Indexes that
    # back a constraint (primary keys, unique) stay: the loaders and the foreign keys rely on them.
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        secondary = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = ANY(%s) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", [list(LOADED_TABLES)]).fetchall()
        for name, _ in secondary:
            conn.execute(f'DROP INDEX "{name}"')
    state["dropped_indexes"] = [definition for _, definition in secondary]
    state_path(args.db).write_text(json.dumps(state))
    procs = {}
    loaders = [(f"cases-{k}", ["cases", str(args.cases), str(args.days), str(args.batch), str(k), str(args.parts)])
               for k in range(args.parts)]
    loaders.append(("events", ["events", str(args.events), str(args.days), str(args.cases)]))
    for name, argv in loaders:
        procs[name] = subprocess.Popen([sys.executable, __file__, "--db", args.db, "--child", *argv], cwd=BASE_DIR,
                                       env=env, stdout=subprocess.PIPE, text=True)
    for name, proc in procs.items():
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"loading {name} failed ({proc.returncode})")
        timings[name] = json.loads(out.strip().splitlines()[-1])
    timings["copy_s"] = round(time.monotonic() - t, 1)
    log(f"COPY done in {timings['copy_s']} s; building {len(secondary)} indexes again")
    t = time.monotonic()
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        for _, definition in secondary:
            conn.execute(definition)
    timings["indexes_s"] = round(time.monotonic() - t, 1)
    log(f"indexes built in {timings['indexes_s']} s; VACUUM ANALYZE")
    t = time.monotonic()
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        for table in (*LOADED_TABLES, "audit_checkpoint"):
            conn.execute(f"VACUUM ANALYZE {table}")
    timings["vacuum_analyze_s"] = round(time.monotonic() - t, 1)
    log(f"VACUUM ANALYZE in {timings['vacuum_analyze_s']} s; building the rollup")
    timings["rollup"] = child(args, "rollup")
    log(f"rollup built: {timings['rollup']}")
    state["load"] = timings
    state_path(args.db).write_text(json.dumps(state, indent=2))
    return state


def finish(args: argparse.Namespace, part: str) -> dict[str, Any]:
    """Build the dropped indexes of one part again (``cases`` or ``events``), VACUUM ANALYZE it; the rollup for cases.

    ``do_load`` does this itself after both loaders; ``--finish`` does it by part when the loaders ran
    on their own (the cases can then be measured while the events are still loading).
    """
    import psycopg

    state = load_state(args.db)
    tables = ("audit_auditevent", "audit_checkpoint") if part == "events" else (
        "reviews_case", "reviews_decision", "reviews_historicalcase")
    todo = [d for d in state.get("dropped_indexes", []) if any(f" ON public.{t} " in d for t in tables)]
    timings: dict[str, Any] = {}
    t = time.monotonic()
    with psycopg.connect(child_env(args)["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        existing = {r[0] for r in conn.execute("SELECT indexdef FROM pg_indexes").fetchall()}
        for definition in todo:
            if definition not in existing:
                conn.execute(definition)
        timings["indexes_s"] = round(time.monotonic() - t, 1)
        log(f"{part}: {len(todo)} indexes built in {timings['indexes_s']} s")
        t = time.monotonic()
        for table in tables:
            conn.execute(f"VACUUM ANALYZE {table}")
        timings["vacuum_analyze_s"] = round(time.monotonic() - t, 1)
        log(f"{part}: VACUUM ANALYZE in {timings['vacuum_analyze_s']} s")
    if part == "cases" and not args.no_rollup:
        timings["rollup"] = child(args, "rollup")
        log(f"rollup built: {timings['rollup']}")
    state.setdefault("load", {})[f"finish_{part}"] = timings
    state_path(args.db).write_text(json.dumps(state, indent=2))
    return timings


def dataset(args: argparse.Namespace, state: dict[str, Any]) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(child_env(args)["DATABASE_URL"]) as conn:
        counts = {table: conn.execute(f"SELECT reltuples::bigint FROM pg_class WHERE relname = '{table}'").fetchone()[0]
                  for table in ("reviews_case", "reviews_decision", "reviews_historicalcase", "audit_auditevent")}
        sizes = dict(conn.execute(
            "SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class WHERE relname IN "
            "('reviews_case', 'reviews_decision', 'reviews_historicalcase', 'audit_auditevent')").fetchall())
        database = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        info = machine(conn)
    return {"rows_estimated": counts, "sizes": sizes, "database_size": database, "machine": info,
            "days": state["days"], "data_until": state["now"]}


def measure(args: argparse.Namespace, state: dict[str, Any]) -> dict[str, Any]:
    only = [name for name in args.only.split(",") if name] if args.only else list(ALL)
    results: dict[str, Any] = {}
    for name in only:
        log(f"measuring {name}")
        if name == "kpi":
            results["kpi"] = child(args, "kpi", str(args.repeat))
        elif name == "dashboard":
            results["dashboard"] = child(args, "dashboard", str(args.repeat))
        elif name == "bias":
            results["bias"] = child(args, "bias")
        elif name == "agreement":
            results["agreement"] = child(args, "agreement", str(max(3, args.repeat // 3)))
        elif name == "verify":
            events = state["events"]
            prefixes = [int(n) for n in args.verify_prefixes.split(",") if n]
            sizes = sorted({min(events, n) for n in prefixes})
            results["verify"] = {f"prefix_{n}": child(args, "verify", str(n)) for n in sizes if n < events}
            results["verify"]["whole"] = child(args, "verify", "0")
            if args.verify_nightly:
                # The nightly Celery task's process: a daemonic prefork child.
                results["verify"]["nightly"] = child(args, "verify-nightly", "0")
            if not args.no_verify_raw:
                results["verify"]["raw"] = child(args, "verify-raw", str(sizes[-1] if sizes else events))
        elif name == "export":
            results["export"] = {"30d": child(args, "export", "30"), "all": child(args, "export", "0"),
                                 "raw_30d": child(args, "export-raw", "30"), "raw_all": child(args, "export-raw", "0")}
        else:
            raise SystemExit(f"unknown target {name!r}; choose from {', '.join(ALL)}")
        log(f"{name}: {json.dumps(results[name])[:600]}")
    return results


def markdown(state: dict[str, Any], data: dict[str, Any], results: dict[str, Any]) -> str:
    def mib(kib: int) -> str:
        return f"{kib / 1024:.0f} MiB"

    lines = ["| Target | Figure | Raw baseline | × raw | Target | Met |", "|---|---:|---:|---:|---|:---:|"]
    if "kpi" in results:
        k = results["kpi"]
        raw = k["raw_sql_90d"]["p50_ms"]
        for name, label in (("kpi_api_90d_all", "KPI API, 90 whole days, all systems"),
                            ("kpi_api_90d_system", "KPI API, 90 days, one system"),
                            ("kpi_api_default", "KPI API, no parameters (30 days to now)")):
            p50 = k[name]["p50_ms"]
            lines.append(f"| {label} (p50 of {k[name]['n']}, {k[name]['queries']} queries) | {p50} ms | {raw} ms | "
                         f"{p50 / raw:.3f} | < 300 ms | {'✅' if p50 < 300 else '❌'} |")
    if "dashboard" in results:
        d = results["dashboard"]
        raw = results.get("kpi", {}).get("raw_sql_90d", {}).get("p50_ms")
        for name, label in (("dashboard_90d_all", "Dashboard page, 90 days, all systems"),
                            ("dashboard_90d_system", "Dashboard page, 90 days, credit")):
            p50 = d[name]["p50_ms"]
            ratio = f"{p50 / raw:.3f}" if raw else "–"
            lines.append(f"| {label} (p50 of {d[name]['n']}, {d[name]['queries']} queries) | {p50} ms | "
                         f"{raw or '–'} ms | {ratio} | < 500 ms | {'✅' if p50 < 500 else '❌'} |")
    if "bias" in results:
        b = results["bias"]
        lines.append(f"| Bias audit, credit by gender, last {b['period_days']} days ({b['cases']:,} cases, "
                     f"{b['chunks']} chunks inline) | {b['total_s']:.2f} s | {b['raw_s']:.2f} s | "
                     f"{b['total_s'] / b['raw_s']:.2f} | < 10 s | {'✅' if b['total_s'] < 10 else '❌'} |")
    if "agreement" in results:
        for a in (v for v in results["agreement"].values() if isinstance(v, dict)):
            s = a["p50_ms"] / 1000
            raw = a["raw"]["p50_ms"] / 1000
            lines.append(f"| Agreement (`live_agreement`), {a['days']} days (p50 of {a['n']}) | {s:.2f} s | "
                         f"{raw:.2f} s | {s / raw:.2f} | < 5 s | {'✅' if s < 5 else '❌'} |")
    if "verify" in results:
        v = results["verify"]
        raw = v.get("raw")
        for name, step in v.items():
            if name == "raw":
                continue
            rate = f"{raw['events_per_s'] / step['events_per_s']:.2f} (rate)" if raw else "–"
            where = " from a daemonic process (the nightly task's)" if name == "nightly" else ""
            lines.append(f"| `verify_chain`{where}, {step['events']:,} events ({step['checkpoints']} checkpoints, ok="
                         f"{step['ok']}), {step.get('workers', 0)} workers, CPU {step.get('cpu_us_per_event')} + "
                         f"{step.get('db_cpu_us_per_event')} µs/event, peak RSS (all processes) "
                         f"{mib(step.get('peak_rss_all_kib', step['peak_rss_kib']))} | {step['seconds']} s "
                         f"({step['events_per_s']:,}/s) | {raw['events_per_s'] if raw else 0:,}/s read | "
                         f"{rate} | < 150 s for 30 M, flat memory | "
                         f"{'✅' if name not in ('whole', 'nightly') or step['seconds'] < 150 else '❌'} |")
    if "export" in results:
        e = results["export"]
        for name in ("30d", "all"):
            step, raw = e[name], e[f"raw_{name}"]
            lines.append(f"| Training-data export (JSON Lines), credit, {step['days']} days: {step['rows']:,} rows, "
                         f"peak RSS {mib(step['peak_rss_kib'])} | {step['rows_per_s']:,} rows/s | "
                         f"{raw['rows_per_s']:,} rows/s (COPY) | {step['rows_per_s'] / raw['rows_per_s']:.2f} | "
                         f"≥ 50,000 rows/s | {'✅' if step['rows_per_s'] >= 50_000 else '❌'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--db", default="hitl_scale")
    parser.add_argument("--cases", type=int, default=10_000_000)
    parser.add_argument("--events", type=int, default=30_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--batch", type=int, default=200_000, help="cases per COPY transaction")
    parser.add_argument("--parts", type=int, default=2, help="processes loading the cases side by side")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--reuse", action="store_true", help="measure against the database loaded before")
    parser.add_argument("--load-only", action="store_true")
    parser.add_argument("--only", default="", help=f"comma-separated targets among {', '.join(ALL)}")
    parser.add_argument("--finish", choices=("cases", "events"),
                        help="after loaders ran apart: build that part's indexes, VACUUM ANALYZE (and the rollup)")
    parser.add_argument("--no-rollup", action="store_true", help="with --finish cases: leave the rollup out")
    parser.add_argument("--rollup", action="store_true", help="build the rollup from scratch, then exit")
    parser.add_argument("--drop", action="store_true", help="drop the database and its state files, then exit")
    parser.add_argument("--verify-prefixes", default="1000000,10000000",
                        help="verify: the chain prefixes (up_to_seq) walked before the whole chain")
    parser.add_argument("--verify-nightly", action="store_true",
                        help="verify: also walk the whole chain from a daemonic child process, as the nightly "
                             "Celery task (a prefork child) does")
    parser.add_argument("--no-verify-raw", action="store_true", help="verify: leave the raw read baseline out")
    parser.add_argument("--db-user", default=os.environ.get("HITL_BENCH_DB_USER", "root"))
    parser.add_argument("--pg-port", default="5432")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.db.startswith("hitl_scale"):
        raise SystemExit("--db must start with hitl_scale")
    if args.child:
        kind, *rest = args.child
        steps = {
            "setup": child_setup,
            "cases": lambda: child_cases(args.db, int(rest[0]), int(rest[1]), int(rest[2]),
                                         (int(rest[3]), int(rest[4])) if len(rest) > 3 else (0, 1)),
            "events": lambda: child_events(args.db, int(rest[0]), int(rest[1]), int(rest[2])),
            "rollup": child_rollup,
            "kpi": lambda: child_kpi(args.db, int(rest[0])),
            "dashboard": lambda: child_dashboard(args.db, int(rest[0])),
            "bias": lambda: child_bias(args.db),
            "agreement": lambda: child_agreement(args.db, int(rest[0])),
            "verify": lambda: child_verify(int(rest[0]) or None),
            "verify-nightly": lambda: child_verify(int(rest[0]) or None, daemonic=True),
            "verify-raw": lambda: child_verify_raw(int(rest[0])),
            "export": lambda: child_export(args.db, int(rest[0])),
            "export-raw": lambda: child_export_raw(int(rest[0])),
        }
        print(json.dumps(steps[kind](), default=str))
        return 0
    if args.finish:
        finish(args, args.finish)
        return 0
    if args.rollup:
        state = load_state(args.db)
        state.setdefault("load", {})["rollup"] = child(args, "rollup")
        state_path(args.db).write_text(json.dumps(state, indent=2))
        log(f"rollup built: {state['load']['rollup']}")
        return 0
    if args.drop:
        sh(["dropdb", "-h", HOST, "-p", args.pg_port, "-U", "postgres", "--force", "--if-exists", args.db])
        for path in (state_path(args.db), key_path(args.db)):
            path.unlink(missing_ok=True)
        log(f"dropped {args.db}")
        return 0
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    state = load_state(args.db) if args.reuse else do_load(args)
    if args.load_only:
        print(json.dumps(state.get("load"), indent=2))
        return 0
    data = dataset(args, state)
    results = measure(args, state)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BASE_DIR, capture_output=True,
                            text=True, check=False).stdout.strip()
    report = {"command": " ".join([".venv/bin/python", "bench/scale.py", *sys.argv[1:]]), "started_at": started_at,
              "commit": commit, "load": state.get("load"), "dataset": data, "results": results}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"scale-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    print(markdown(state, data, results))
    print(f"\n(raw figures: {out.relative_to(BASE_DIR)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
