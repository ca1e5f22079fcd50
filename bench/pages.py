"""Reviewer-perceived latency: every page of the workbench and dashboard in Chromium, at a million cases.

Run from the repository root::

    .venv/bin/python bench/pages.py                          # 1,000,000 cases, throwaway database
    .venv/bin/python bench/pages.py --cases 100000 --visits 5 # a quicker run
    .venv/bin/python bench/pages.py --keep-db                 # keep the database (its name is printed)
    .venv/bin/python bench/pages.py --reuse hitl_bench_pages  # load once into that database, reuse it after

What it does, in one run:

1. Loads the data of ``bench/kpis.py`` (imported, not copied: the same services set up
   three systems, four intervention points, 30 reviewers and a manager; the same
   ``COPY`` loader writes ``--cases`` cases over 180 days with decisions, gold, blind
   cases and a live queue), adds a compliance officer with a confirmed TOTP device, an
   incident and an escalated case, then runs what beat would have run by then: the
   full KPI rollup, the reviewer-quality snapshot and the monitoring of the day.
   ``VACUUM ANALYZE`` on the loaded tables.
2. ``collectstatic`` and the portal as deployed (README "Production"):
   ``DJANGO_ENV=production``, ``uvicorn hitl_portal.asgi:application --workers 2`` on
   loopback (2 cores), DEBUG off, static files hashed, pre-compressed and served by
   WhiteNoise. The only departure: ``SECURE_SSL_REDIRECT=false``, there being no TLS
   proxy in front (Chromium keeps ``Secure`` cookies of ``http://localhost``).
3. Drives Debian's Chromium (Playwright, headless) logged in through the login form
   as a reviewer, a manager and a compliance officer (TOTP), over every page each
   role has (the routes of ``reviews/urls.py``, ``dashboard/urls.py``,
   ``quality/urls.py``, ``fairness/urls.py``, ``incidents/urls.py``,
   ``records/urls.py``, ``compliance/urls_workspace.py``, the inbox), ``--visits``
   navigations each after one warm-up. Per navigation it reads
   ``performance.getEntriesByType('navigation')[0]``: the server time is
   ``responseStart - requestStart`` (request sent to first byte: the view, the
   queries, the template, middleware), the full load ``loadEventEnd - startTime``.
   The case page is measured on a claimed case (claimed through the queue's button).
4. Checks the static assets the pages load: every CSS/JS file fetched with
   ``Accept-Encoding: br, gzip`` must come compressed, and hashed names must carry a
   far-future ``Cache-Control`` (``max-age`` ≥ one year, ``immutable``).
5. The baseline of the same run: the login page served the same way (the fixed cost of
   a Django page: middleware, session, one template) and the main query of the heavy
   pages as plain SQL timed with psycopg. Every page is reported as a ratio to the
   fixed cost.
6. Prints a Markdown table, writes JSON to ``bench/out/pages-<timestamp>.json``.
   Target: p95 server time < 150 ms for every page. ``--strict`` exits 1 on a miss.

``--profile PATH`` instead prints, for that path, the SQL statements and their time
(in-process through Django's test client as the manager/reviewer/officer the page needs)
and a cProfile summary: what to look at when a page misses.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_DIR = BASE_DIR / "bench"
OUT_DIR = BENCH_DIR / "out"
BIN_DIR = Path(sys.executable).parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BASE_DIR))

import kpis  # noqa: E402  (bench/kpis.py: the million-case loader, shared, not copied)

TARGET_MS = 150.0
PASSWORD = kpis.PASSWORD
HOST = "localhost"
CHROMIUM = "/usr/bin/chromium"
OFFICER = "bench-officer"
# collectstatic with compression takes minutes here (the API docs' assets): one copy shared by runs.
STATIC_ROOT = Path("/tmp/hitl-bench-pages-static")


def static_fresh(root: Path) -> bool:
    """True when ``root`` holds a manifest newer than every source static file (collectstatic can be skipped)."""
    manifest = root / "staticfiles.json"
    if not manifest.exists():
        return False
    built = manifest.stat().st_mtime
    sources = [BASE_DIR / "static", *BASE_DIR.glob("*/static")]
    return all(f.stat().st_mtime < built for d in sources for f in d.rglob("*") if f.is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], 1)


# --- Data ------------------------------------------------------------------------------------------------


def database_exists(args: argparse.Namespace, name: str) -> bool:
    import psycopg

    with psycopg.connect(f"postgres://postgres@{args.pg_host}:{args.pg_port}/postgres") as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def extras(fixture: dict[str, Any]) -> None:
    """What the kpis fixture lacks for these pages: an officer (with TOTP), an escalated case, an incident."""
    from django.contrib.auth.models import User
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from incidents.services import incident_create
    from reviews.models import AISystem
    from reviews.services.people import user_create

    admin = User.objects.get(pk=fixture["admin"])
    officer, _ = user_create(actor=admin, username=OFFICER, password=PASSWORD, role="compliance_officer",
                             validate=False)
    TOTPDevice.objects.create(user=officer, name="bench", confirmed=True)
    incident_create(actor=officer, system=AISystem.objects.get(slug="credit"), kind="serious_harm",
                    title="Scores drifted after the model update",
                    description="The confidence of loan-review cases fell for a week.",
                    aware_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2))


@contextlib.contextmanager
def copy_defaults(dsn: str, tables: dict[str, list[str]]) -> Any:
    """Database defaults, for the duration of the load, on NOT NULL columns the kpis loader does not write.

    ``bench/kpis.py`` COPYs a fixed column list; columns added to the models since
    (``Decision.form_values``, ``Decision.category``...) have a Python default only, so
    COPY would write NULL into them. The model's empty value is set as the column's
    default while loading and dropped after, leaving the schema as migrated.
    """
    import psycopg

    empty = {"jsonb": "'{}'::jsonb", "character varying": "''", "text": "''", "boolean": "false",
             "integer": "0", "smallint": "0", "bigint": "0", "double precision": "0"}
    added: list[tuple[str, str]] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table, written in tables.items():
            for column, kind in conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
                    "AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'", [table]).fetchall():
                if column not in written and kind in empty:
                    conn.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" SET DEFAULT {empty[kind]}')
                    added.append((table, column))
        try:
            yield added
        finally:
            for table, column in added:
                conn.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" DROP DEFAULT')


def beat_work() -> dict[str, float]:
    """What beat would have run by now on a live portal: rollup, quality snapshot, monitoring."""
    from dashboard.tasks import refresh_rollups, run_monitoring
    from quality.tasks import snapshot_reviewer_quality_task

    timings = {}
    for name, call in (("rollup_full", lambda: refresh_rollups(full=True)),
                       ("quality_snapshot", snapshot_reviewer_quality_task),
                       ("monitoring", run_monitoring)):
        t = time.monotonic()
        call()
        timings[name] = round(time.monotonic() - t, 1)
        print(f"beat work: {name} {timings[name]} s", file=sys.stderr)
    return timings


def prepare(args: argparse.Namespace, dsn: str, reuse: bool) -> dict[str, Any]:
    import django

    django.setup()
    from django.conf import global_settings

    try:
        return _prepare(args, dsn, reuse)
    finally:
        # This process hashes with MD5 (HITL_TESTING); the deployed portal uses Django's default hashers.
        login_passwords(global_settings.PASSWORD_HASHERS[0])


def login_passwords(hasher_path: str) -> None:
    """The users the browser logs in as get a password hashed the way the deployed portal checks it.

    ``kpis.setup_fixture`` hashes with MD5 (fast, for the in-process benchmark); the
    portal as deployed does not accept MD5, and its first hasher is what a login pays.
    """
    from django.contrib.auth.models import User
    from django.utils.module_loading import import_string

    hasher = import_string(hasher_path)()
    for username in ("rev01", "bench-manager", OFFICER):
        User.objects.filter(username=username).update(password=hasher.encode(PASSWORD, hasher.salt()))


def _prepare(args: argparse.Namespace, dsn: str, reuse: bool) -> dict[str, Any]:
    import psycopg
    from django.utils import timezone

    if reuse:
        with psycopg.connect(dsn) as conn:
            n = (conn.execute("SELECT count(*) FROM reviews_case").fetchone() or [0])[0]
        print(f"reuse: {n:,} cases already loaded", file=sys.stderr)
        return {"cases": n, "reused": True}
    fixture = kpis.setup_fixture()
    extras(fixture)
    t = time.monotonic()
    with copy_defaults(dsn, {"reviews_case": kpis.CASE_COLUMNS, "reviews_decision": kpis.DECISION_COLUMNS}):
        counts = kpis.load(dsn, fixture, cases=args.cases, days=args.days, now=timezone.now(), seed=args.seed)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in ("reviews_case", "reviews_decision", "auth_user"):
            conn.execute(f"VACUUM ANALYZE {table}")
    info: dict[str, Any] = {**counts, "days": args.days, "load_s": round(time.monotonic() - t, 1), "reused": False}
    print(f"load: {counts['cases']:,} cases, {counts['decisions']:,} decisions in {info['load_s']} s", file=sys.stderr)
    info["beat"] = beat_work()
    info["bias_audit_s"] = bias_audit(fixture)
    return info


def bias_audit(fixture: dict[str, Any]) -> float:
    """One finished bias audit of the last 30 days (the page shows its result); run in-process (eager tasks)."""
    from django.contrib.auth.models import User

    from fairness.services import bias_audit_request
    from reviews.models import AISystem

    # The kpis fixture declares no protected attribute: the subjects carry none, so every
    # case falls in one "missing" group; the page renders the same tables either way.
    AISystem.objects.filter(slug="credit").update(protected_attributes=["age_band"], positive_label="approve")
    t = time.monotonic()
    bias_audit_request(actor=User.objects.get(pk=fixture["manager"]), system=AISystem.objects.get(slug="credit"),
                       attribute="age_band")
    print(f"bias audit: {time.monotonic() - t:.1f} s", file=sys.stderr)
    return round(time.monotonic() - t, 1)


# --- The portal as deployed ------------------------------------------------------------------------------


def signing_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def production_env(args: argparse.Namespace, dsn: str, var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HITL_TESTING", "DJANGO_DEBUG", "DJANGO_SETTINGS_MODULE")}
    env.update(DJANGO_ENV="production", DATABASE_URL=dsn, HITL_VAR_DIR=str(var_dir),
               STATIC_ROOT=str(STATIC_ROOT), SECRET_KEY="bench-" + "k" * 50,
               ALLOWED_HOSTS="localhost,127.0.0.1", CELERY_BROKER_URL=args.broker, REDIS_URL=args.redis,
               HITL_AUDIT_SIGNING_KEY=signing_key(), SECURE_SSL_REDIRECT="false",
               # A backend closed mid-page would take its CPU time out of the per-request figure.
               DB_CONN_MAX_AGE="3600",
               DJANGO_SETTINGS_MODULE="hitl_portal.settings", PYTHONPATH=str(BASE_DIR))
    return env


class Server:
    """uvicorn serving the portal as README "Production" starts it."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        cmd = [str(BIN_DIR / "uvicorn"), "hitl_portal.asgi:application", "--host", "127.0.0.1", "--port",
               str(self.port), "--workers", str(args.workers), "--proxy-headers", "--log-level", "warning",
               "--no-access-log"]
        with open(log, "w") as out:
            self.proc = subprocess.Popen(cmd, env=env, cwd=BASE_DIR, start_new_session=True, stdout=out,
                                         stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"uvicorn exited:\n{self.log.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/accounts/login/", headers={"Host": HOST})
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return
            time.sleep(0.3)
        raise SystemExit(f"uvicorn did not answer within {timeout:.0f} s:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


# --- CPU per request ------------------------------------------------------------------------------------


def _cpu_s(pid: int) -> float:
    """utime + stime of one process, in seconds (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


class CpuProbe:
    """CPU seconds of the portal (uvicorn and its workers) and of the database's backends serving it.

    On a machine shared with other work the wall-clock server time includes waiting
    for a core; the CPU spent per request does not, and on two idle cores the server
    time cannot be much less than app CPU + database CPU. So both are reported.
    """

    def __init__(self, dsn: str, server_pid: int) -> None:
        import psycopg

        self.server_pid = server_pid
        self.conn = psycopg.connect(dsn, autocommit=True)

    def sample(self) -> tuple[float, float]:
        backends = [r[0] for r in self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
        return sum(_cpu_s(p) for p in _tree(self.server_pid)), sum(_cpu_s(p) for p in backends)


# --- Pages ----------------------------------------------------------------------------------------------


def ids(dsn: str) -> dict[str, Any]:
    """Existing rows the detail pages need, read from the loaded database."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        one = lambda sql, *p: (conn.execute(sql, p).fetchone() or [None])[0]  # noqa: E731
        reviewer_id = one("SELECT id FROM auth_user WHERE username = 'rev01'")
        return {
            "my_case": one("SELECT case_id FROM reviews_decision WHERE reviewer_id = %s ORDER BY decided_at DESC "
                           "LIMIT 1", reviewer_id),
            "escalated": one("SELECT id FROM reviews_case WHERE status = 'escalated' ORDER BY id DESC LIMIT 1"),
            "decided": one("SELECT id FROM reviews_case WHERE status = 'decided' ORDER BY id DESC LIMIT 1"),
            "incident": one("SELECT id FROM compliance_incident ORDER BY id LIMIT 1"),
            "bias_audit": one("SELECT id FROM fairness_biasaudit ORDER BY id DESC LIMIT 1"),
        }


def page_plan(known: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Per role, (name, path) of every page it has; ``None`` ids (nothing of that kind) are left out."""
    reviewer = [
        ("queue", "/review/"),
        ("case (claimed)", "/review/case/{claimed}/"),
        ("my decisions", "/review/mine/"),
        ("my case", f"/review/mine/{known['my_case']}/"),
        ("own quality", "/quality/reviewers/rev01/"),
        ("inbox", "/notifications/"),
    ]
    manager = [
        ("dashboard", "/dashboard/"),
        ("dashboard 90 days", "/dashboard/?period=90"),
        ("quality index", "/quality/"),
        ("agreement", "/quality/agreement/"),
        ("reviewer quality", "/quality/reviewers/rev02/"),
        ("calibration", "/quality/calibration/"),
        ("thresholds", "/quality/thresholds/"),
        ("threshold detail", "/quality/thresholds/credit/loan-review/"),
        ("bias audits", "/fairness/"),
        ("bias audit detail", f"/fairness/{known['bias_audit']}/" if known["bias_audit"] else ""),
        ("incidents", "/compliance/incidents/"),
        ("incident detail", f"/compliance/incidents/{known['incident']}/" if known["incident"] else ""),
        ("case browser", "/audit/cases/"),
        ("case timeline", f"/audit/cases/{known['decided']}/"),
    ]
    officer = [
        ("escalations", "/review/escalations/"),
        ("escalated case", f"/review/escalations/{known['escalated']}/" if known["escalated"] else ""),
        ("setup", "/review/setup/"),
        ("setup point", "/review/setup/credit/loan-review/"),
        ("gold items", "/quality/gold/"),
        ("records desk", "/audit/trail/"),
        ("systems", "/compliance/"),
        ("explanations", "/compliance/explanations/"),
    ]
    return {"reviewer": reviewer, "manager": [p for p in manager if p[1]], "officer": [p for p in officer if p[1]]}


NAV_JS = """() => { const e = performance.getEntriesByType('navigation')[0];
  return {server: e.responseStart - e.requestStart, load: e.loadEventEnd - e.startTime,
          status: e.responseStatus || 0, bytes: e.encodedBodySize}; }"""


def visit(page: Any, url: str) -> dict[str, float]:
    response = page.goto(url, wait_until="load")
    if response is None or response.status != 200:
        raise SystemExit(f"GET {url} answered {response.status if response else 'nothing'} (at {page.url})")
    if page.url.split("#")[0] != url:
        raise SystemExit(f"GET {url} ended at {page.url}")
    return page.evaluate(NAV_JS)


def measure_role(browser: Any, base: str, role: str, username: str, pages: list[tuple[str, str]],
                 visits: int, probe: CpuProbe) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60000)
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    if "/accounts/mfa/verify/" in page.url:
        page.fill("input[name=code]", totp_code(username))
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
    if "/accounts/login/" in page.url or "/accounts/mfa/" in page.url:
        raise SystemExit(f"login as {username} failed (at {page.url}): {page.inner_text('main')[:500]}")
    claimed = None
    results: dict[str, Any] = {}
    resources: set[str] = set()
    for name, path in pages:
        if "{claimed}" in path:
            page.goto(f"{base}/review/")
            live = page.locator(".wb-live a.button")  # a case still held from an earlier run: continue it
            page.click(".wb-live a.button" if live.count() else "form[data-shortcut-claim] button[type=submit]")
            page.wait_for_load_state("load")
            claimed = page.url.rstrip("/").rsplit("/", 1)[-1]
            if not claimed.isdigit():
                raise SystemExit(f"claiming from the queue ended at {page.url}")
            path = path.format(claimed=claimed)
        url = f"{base}{path}"
        visit(page, url)  # warm-up: template compiled, plans cached, connection open
        app0, db0 = probe.sample()
        samples = [visit(page, url) for _ in range(visits)]
        app1, db1 = probe.sample()
        resources.update(page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)"))
        server = [s["server"] for s in samples]
        load = [s["load"] for s in samples]
        results[name] = {"path": path, "role": role, "server_p50_ms": pct(server, 0.5),
                         "server_p95_ms": pct(server, 0.95), "server_max_ms": round(max(server), 1),
                         "load_p50_ms": pct(load, 0.5), "load_p95_ms": pct(load, 0.95),
                         "html_bytes": samples[-1]["bytes"], "n": visits,
                         # Includes the static files the visits fetched (few: they are cached).
                         "app_cpu_ms": round((app1 - app0) * 1000 / visits, 1),
                         "db_cpu_ms": round((db1 - db0) * 1000 / visits, 1)}
        print(f"  {role:8} {name:28} server p50 {results[name]['server_p50_ms']:7.1f} p95 "
              f"{results[name]['server_p95_ms']:7.1f} ms  load p50 {results[name]['load_p50_ms']:7.1f}  CPU app "
              f"{results[name]['app_cpu_ms']:6.1f} db {results[name]['db_cpu_ms']:6.1f} ms",
              file=sys.stderr)
    context.close()
    return {"pages": results, "resources": sorted(resources), "claimed": claimed}


def totp_code(username: str) -> str:
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user__username=username)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    # A code not used yet: django-otp refuses a time step it has accepted before (a reused --reuse database).
    totp.time = time.time() + device.step * (2 if device.last_t >= totp.t() else 0)
    if device.last_t >= totp.t():
        time.sleep(device.step)
        totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"


def fixed_cost(browser: Any, base: str, visits: int, probe: CpuProbe) -> dict[str, Any]:
    """The login page (anonymous): middleware, a session, one small template; no query of the data."""
    context = browser.new_context()
    page = context.new_page()
    url = f"{base}/accounts/login/"
    visit(page, url)
    app0, db0 = probe.sample()
    samples = [visit(page, url) for _ in range(visits)]
    app1, db1 = probe.sample()
    context.close()
    server = [s["server"] for s in samples]
    return {"path": "/accounts/login/", "server_p50_ms": pct(server, 0.5), "server_p95_ms": pct(server, 0.95),
            "n": visits, "app_cpu_ms": round((app1 - app0) * 1000 / visits, 1),
            "db_cpu_ms": round((db1 - db0) * 1000 / visits, 1)}


def static_checks(base: str, resources: list[str]) -> list[dict[str, Any]]:
    from urllib.parse import urlsplit

    rows = []
    for url in sorted({r for r in resources if "/static/" in r and r.split("?")[0].endswith((".css", ".js"))}):
        path = urlsplit(url).path
        conn = http.client.HTTPConnection("127.0.0.1", int(urlsplit(base).port or 80), timeout=10)
        conn.request("GET", path, headers={"Host": HOST, "Accept-Encoding": "br, gzip"})
        response = conn.getresponse()
        body = response.read()
        conn.close()
        cache = response.getheader("Cache-Control") or ""
        max_age = 0
        for part in cache.split(","):
            if part.strip().startswith("max-age="):
                max_age = int(part.strip().split("=", 1)[1])
        encoding = response.getheader("Content-Encoding") or ""
        rows.append({"path": path, "status": response.status, "content_encoding": encoding,
                     "bytes": len(body), "cache_control": cache,
                     "compressed_ok": encoding in ("br", "gzip") or len(body) < 1024,
                     "cached_ok": max_age >= 31536000 and "immutable" in cache})
    return rows


def raw_baseline(dsn: str, repeat: int) -> dict[str, Any]:
    """The main query of the heavy pages as plain SQL, timed with psycopg on one open connection."""
    import psycopg

    queries = {
        "SELECT 1 (round trip)": "SELECT 1",
        "queue: claimable per point": (
            "SELECT system_id, intervention_point_id, count(*), min(received_at) FROM reviews_case "
            "WHERE status = 'queued' GROUP BY 1, 2"),
        "case browser: first 50 by id": (
            "SELECT id, external_id, status, received_at FROM reviews_case ORDER BY id DESC LIMIT 50"),
        "count(*) of all cases": "SELECT count(*) FROM reviews_case",
        "my decisions: first 50": (
            "SELECT id, case_id, outcome, decided_at FROM reviews_decision "
            "WHERE reviewer_id = (SELECT id FROM auth_user WHERE username = 'rev01') "
            "ORDER BY decided_at DESC LIMIT 50"),
        "my decisions: count (the pager)": (
            "SELECT count(*) FROM reviews_decision WHERE reviewer_id = (SELECT id FROM auth_user "
            "WHERE username = 'rev01')"),
    }
    out = {}
    with psycopg.connect(dsn) as conn:
        for name, sql in queries.items():
            for _ in range(2):
                conn.execute(sql).fetchall()
            samples = []
            for _ in range(repeat):
                t = time.perf_counter()
                conn.execute(sql).fetchall()
                samples.append((time.perf_counter() - t) * 1000)
            out[name] = {"sql": sql, "p50_ms": pct(samples, 0.5), "p95_ms": pct(samples, 0.95)}
    return out


# --- Profiling one page ------------------------------------------------------------------------------------


def profile(path: str, username: str) -> None:
    """SQL statements (with times) and a cProfile summary of one request, in-process."""
    import cProfile
    import pstats

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    settings.ALLOWED_HOSTS = ["*"]
    client = Client()
    client.force_login(User.objects.get(username=username))
    if username == OFFICER:
        session = client.session
        from django_otp.plugins.otp_totp.models import TOTPDevice

        session["otp_device_id"] = TOTPDevice.objects.get(user__username=username).persistent_id
        session.save()
    for _ in range(2):
        client.get(path)
    with CaptureQueriesContext(connection) as queries:
        t = time.perf_counter()
        response = client.get(path)
        total = (time.perf_counter() - t) * 1000
    print(f"GET {path} as {username}: {response.status_code}, {total:.1f} ms, {len(queries)} queries, "
          f"{sum(float(q['time']) for q in queries) * 1000:.1f} ms in SQL")
    for q in sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:15]:
        print(f"  {float(q['time']) * 1000:8.1f} ms  {q['sql'][:400]}")
    profiler = cProfile.Profile()
    profiler.enable()
    client.get(path)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(r"/work/|hitl|reviews|dashboard|quality|fairness|records", 30)
    stats.sort_stats("tottime").print_stats(25)


# --- Report ---------------------------------------------------------------------------------------------------


def markdown(info: dict[str, Any], load: dict[str, Any], results: dict[str, Any]) -> str:
    fixed = results["fixed_cost"]["server_p50_ms"] or 1.0
    lines = [
        f"Machine: {info['cores']} cores ({info['cpu']}), {info['memory_gb']} GB RAM, PostgreSQL "
        f"{info['postgresql']}, Python {info['python']}; uvicorn --workers {results['workers']}, "
        "DJANGO_ENV=production.",
        f"Data: {load.get('cases', 0):,} cases{' (reused database)' if load.get('reused') else ''}; "
        f"load average before/after {results['load_before']} / {results['load_after']}.",
        f"Fixed cost (login page, anonymous): server p50 {results['fixed_cost']['server_p50_ms']} ms, "
        f"p95 {results['fixed_cost']['server_p95_ms']} ms, CPU {results['fixed_cost']['app_cpu_ms']} ms app + "
        f"{results['fixed_cost']['db_cpu_ms']} ms database per request.",
        "",
        f"| role | page | path | server p50 ms | server p95 ms | × fixed cost (p50) | CPU ms/request app + db | "
        f"load p50 ms | HTML bytes | target p95 < {TARGET_MS:.0f} ms |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for role in ("reviewer", "manager", "officer"):
        for name, r in results["roles"][role]["pages"].items():
            verdict = "met" if r["server_p95_ms"] < TARGET_MS else "MISSED"
            lines.append(f"| {role} | {name} | `{r['path']}` | {r['server_p50_ms']} | {r['server_p95_ms']} | "
                         f"{round(r['server_p50_ms'] / fixed, 1)} | {r['app_cpu_ms']} + {r['db_cpu_ms']} | "
                         f"{r['load_p50_ms']} | {r['html_bytes']:,} | "
                         f"{verdict} |")
    lines += ["", "| raw SQL baseline (psycopg) | p50 ms | p95 ms |", "|---|---:|---:|"]
    for name, r in results["raw_sql"].items():
        lines.append(f"| {name} | {r['p50_ms']} | {r['p95_ms']} |")
    lines += ["", "| static asset | Content-Encoding | bytes sent | Cache-Control | ok |", "|---|---|---:|---|---|"]
    for r in results["static"]:
        ok = "yes" if r["compressed_ok"] and r["cached_ok"] and r["status"] == 200 else "NO"
        lines.append(f"| `{r['path']}` | {r['content_encoding'] or '—'} | {r['bytes']:,} | {r['cache_control']} | "
                     f"{ok} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--visits", type=int, default=20, help="measured navigations per page (after a warm-up)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--db-user", default=os.environ.get("HITL_BENCH_DB_USER", "root"))
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", default="5432")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/9", help="CELERY_BROKER_URL of the portal")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/8", help="REDIS_URL of the portal")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--collectstatic", action="store_true", help="run collectstatic even when the copy is fresh")
    parser.add_argument("--reuse", metavar="DBNAME", help="load into DBNAME once, reuse it (kept) on later runs")
    parser.add_argument("--profile", metavar="PATH", help="profile one page in-process (needs --reuse)")
    parser.add_argument("--as", dest="as_user", default="bench-manager", help="user for --profile")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a page misses the target")
    args = parser.parse_args(argv)

    db_name = args.reuse or f"hitl_bench_pages_{os.getpid()}"
    keep = args.keep_db or bool(args.reuse)
    dsn = f"postgres://{args.db_user}@{args.pg_host}:{args.pg_port}/{db_name}"
    var_dir = Path(f"/tmp/{db_name}-var")
    var_dir.mkdir(parents=True, exist_ok=True)
    # This process (setup, loading, profiling) runs with HITL_TESTING: tasks eager, plain static storage.
    os.environ.update(DATABASE_URL=dsn, HITL_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="hitl_portal.settings",
                      HITL_TESTING="1")
    if args.profile:
        profile(args.profile, args.as_user)
        return 0
    reuse = bool(args.reuse) and database_exists(args, db_name)
    created = False
    server: Server | None = None
    try:
        if not reuse:
            kpis.sh(["createdb", "-h", args.pg_host, "-p", args.pg_port, "-U", "postgres", "-O", args.db_user,
                     db_name])
            created = True
        kpis.sh([sys.executable, "manage.py", "migrate", "--skip-checks", "-v", "0"], env=dict(os.environ),
                timeout=600)
        load = prepare(args, dsn, reuse)
        known = ids(dsn)

        env = production_env(args, dsn, var_dir)
        if args.collectstatic or not static_fresh(Path(env["STATIC_ROOT"])):
            t = time.monotonic()
            kpis.sh([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], env=env, timeout=900)
            print(f"collectstatic (compressed, hashed): {time.monotonic() - t:.1f} s", file=sys.stderr)
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        server = Server(args, env, OUT_DIR / f"pages-uvicorn-{stamp}.log")
        server.wait_ready()
        base = f"http://{HOST}:{server.port}"

        from playwright.sync_api import sync_playwright

        results: dict[str, Any] = {"workers": args.workers, "load_before": [round(x, 2) for x in os.getloadavg()]}
        plan = page_plan(known)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"])
            try:
                probe = CpuProbe(dsn, server.proc.pid)
                results["fixed_cost"] = fixed_cost(browser, base, args.visits, probe)
                results["roles"] = {
                    "reviewer": measure_role(browser, base, "reviewer", "rev01", plan["reviewer"], args.visits,
                                             probe),
                    "manager": measure_role(browser, base, "manager", "bench-manager", plan["manager"], args.visits,
                                            probe),
                    "officer": measure_role(browser, base, "officer", OFFICER, plan["officer"], args.visits, probe),
                }
            finally:
                browser.close()
        resources = [r for role in results["roles"].values() for r in role["resources"]]
        results["static"] = static_checks(base, resources)
        results["raw_sql"] = raw_baseline(dsn, max(args.visits, 10))
        results["load_after"] = [round(x, 2) for x in os.getloadavg()]
        info = kpis.machine_info(dsn)
        table = markdown(info, load, results)
        print(table)
        out = OUT_DIR / f"pages-{stamp}.json"
        out.write_text(json.dumps({"machine": info, "load": load, "results": results, "ids": known,
                                   "command": " ".join([Path(sys.executable).name, *sys.argv])}, indent=2,
                                  default=str))
        print(f"wrote {out.relative_to(BASE_DIR)}", file=sys.stderr)
        missed = [name for role in results["roles"].values() for name, r in role["pages"].items()
                  if r["server_p95_ms"] >= TARGET_MS]
        bad_static = [r["path"] for r in results["static"] if not (r["compressed_ok"] and r["cached_ok"])]
        if missed or bad_static:
            print(f"missed: {missed} {bad_static}", file=sys.stderr)
        return 1 if args.strict and (missed or bad_static) else 0
    finally:
        if server is not None:
            server.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if created and not keep:
            kpis.sh(["dropdb", "-h", args.pg_host, "-p", args.pg_port, "-U", "postgres", "--force", "--if-exists",
                     db_name])
        elif keep:
            print(f"kept database {db_name}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
