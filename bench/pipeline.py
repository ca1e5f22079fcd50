"""Review-pipeline benchmark: the portal under gunicorn on PostgreSQL against raw SQL.

Run from the repository root::

    .venv/bin/python bench/pipeline.py            # full run, < 5 min
    .venv/bin/python bench/pipeline.py --quick    # smoke run, < 1 min
    .venv/bin/python bench/pipeline.py --profile  # cProfile the gunicorn workers per phase

What it does, in one run:

1. Creates a throwaway PostgreSQL database ``hitl_bench_<pid>`` (``createdb`` as
   the ``postgres`` role on 127.0.0.1, owned by ``--db-user``), migrates it, and
   sets up through the portal's own services (``bench/fixture.py``): a high-risk
   system whose intervention point routes ``confidence < 0.5`` (the benchmark's
   confidences are uniform, so about half of the cases are routed), one
   integration account, eight qualified reviewers, and their DRF tokens.
2. Starts gunicorn (``--workers 2 --worker-class sync`` by default) on a free
   loopback port with the default ``DJANGO_ENV``, ``DATABASE_URL`` pointing at
   the benchmark database, a private ``HITL_VAR_DIR``, a very high
   ``HITL_THROTTLE_INTEGRATION``, ``REDIS_URL`` as deployed (the cache, and so
   the throttle counters, on Redis), ``DB_CONN_MAX_AGE=3600`` (a backend closed
   mid-phase would take its CPU time out of the figures) and a real broker:
   ``CELERY_BROKER_URL=redis://127.0.0.1:6379/<n>`` (``--broker-db``; by default
   the highest empty Redis database, flushed at the end). With a real broker on
   PostgreSQL the portal seals the audit chain in a Celery task
   (``HITL_AUDIT_SEAL_MODE=task``), so ONE Celery worker
   (``celery -A hitl_portal worker --concurrency 1``) runs beside gunicorn with the
   same environment. No beat: what the per-request seal requests leave unsealed
   shows up in the figures instead of being swept every second.
3. Measures with 8 concurrent clients, one *process* each (so the client never
   starves on the GIL), every one on its own keep-alive ``http.client``
   connection (gunicorn's sync worker answers ``Connection: close``; the client
   then reconnects, which costs a loopback handshake):

   * ``single``: ``POST /api/v1/cases/``, one case per request: requests/s, p50, p99;
   * ``batch``: ``POST /api/v1/cases/batch/`` with 1000 cases a request: cases/s;
   * ``claim``: each reviewer loops ``POST /api/v1/queue/claim/`` then
     ``POST /api/v1/cases/{id}/decision/`` (approve): cycles/s and claim p99;
   * ``chain``: the same cycle as one request, the decision with ``claim_next``
     (as the workbench's Decide button works): cycles/s (judged) and that request's
     p99 (reported: a whole cycle's wait, not a claim's);
   * ``floor`` and ``bare`` (no targets): the same single-case bodies posted to
     ``/bench/floor/``, a portal API view that parses the body and does nothing else
     (the portal's middleware, DRF, token authentication, permission, throttle,
     rendering: ``bench/floor_urls.py``), and to ``/bench/bare/``, answered by plain
     WSGI under the same gunicorn (``bench/floor_wsgi.py``). Their CPU per request
     is the stack's fixed cost: the report states its share of single ingest's.
     The benchmark's gunicorn serves ``floor_wsgi`` with ``floor_settings`` (the
     portal's settings, its URLs plus the floor path); every portal path is served
     as ``hitl_portal.wsgi`` serves it.

4. In the same run, right before each portal phase, the raw-SQL baseline of the
   same writes with psycopg at 8 connections (again one process each) on scratch
   tables created ``LIKE`` the real ones (same columns, indexes and checks, no
   triggers or foreign keys), every transaction durable (``synchronous_commit``
   as configured, ``on`` by default):

   * ``raw_ingest``: one transaction of 3 INSERTs (the case, its history row, one audit row);
   * ``raw_batch``: the same rows for 1000 cases in one transaction (pipelined ``executemany``);
   * ``raw_claim``: ``SELECT ... FOR NO KEY UPDATE SKIP LOCKED`` + ``UPDATE`` (claim),
     then ``UPDATE`` + ``INSERT`` (decide), two transactions a cycle.

5. Polls the audit table every 0.2 s during each portal phase (its own
   connection, not counted as the portal's database CPU): the age of the oldest
   unsealed event of the phase (the sealing lag), the unsealed backlog, and after
   the phase how long the backlog takes to drain (up to 3 s; what is left then is
   reported).
6. Prints a Markdown table (each figure, its baseline and ratio, the target and
   whether it is met, CPU milliseconds per operation spent in gunicorn, in the
   sealing worker, in the benchmark database's backends and in the clients, the
   sealing lag) and writes everything as JSON to
   ``bench/out/pipeline-<timestamp>.json`` (git-ignored).

Targets (issue 15, 2 cores): single ingest >= 400 requests/s with p99 < 50 ms;
batch >= 6,000 cases/s; claim+decide >= 120 cycles/s with claim p99 < 50 ms; the
sealing lag (``sealed_at - at`` of every event of the phase) p99 < 1 s; and after
the run every case has its history row and its sealed ``case.created`` event, every
decision its history row (``integrity`` in the report). The ratios to the raw
baseline are reported, not judged. This is a benchmark, not a test: it never fails
on a missed target (``--strict`` makes it exit 1 then).

Bounded in time: every phase stops at its request count or its time cap, and the
whole run keeps to a budget (270 s, ``--quick`` 50 s). Whatever happens, gunicorn
is stopped and the database dropped at the end (``--keep-db`` keeps it for
inspection). Loopback only.

``--profile`` runs the portal phases again under ``bench/profiled_wsgi.py`` (a
cProfile wrapper selected by this flag only; one profile per worker and phase),
skips the raw baselines, and prints the top functions per phase; its throughput
figures are distorted by the profiler and are not the benchmark's.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import http.client
import json
import math
import multiprocessing as mp
import os
import platform
import pstats
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_DIR = BASE_DIR / "bench"
OUT_DIR = BENCH_DIR / "out"
BIN_DIR = Path(sys.executable).parent
HOST = "127.0.0.1"
CLIENTS = 8

TARGETS = {
    "single_rps": 400.0,
    "single_p99_ms": 50.0,
    "batch_cps": 6000.0,
    "claim_cps": 120.0,
    "claim_p99_ms": 50.0,
    "seal_lag_p99_s": 1.0,
}


@dataclass(frozen=True)
class Sizes:
    """How much work each phase does, and its time cap."""

    single: int
    batch_size: int
    batches: int
    cycles: int
    raw_tx: int
    raw_batches: int
    raw_cycles: int
    raw_queue: int
    warmup: int
    phase_cap_s: float
    budget_s: float
    # Kept back from the budget for client start-up per phase and for the clean-up.
    reserve_s: float


FULL = Sizes(single=4000, batch_size=1000, batches=40, cycles=3000, raw_tx=4000, raw_batches=20,
             raw_cycles=3000, raw_queue=4000, warmup=64, phase_cap_s=40.0, budget_s=310.0,
             reserve_s=20.0)
QUICK = Sizes(single=800, batch_size=500, batches=8, cycles=400, raw_tx=800, raw_batches=4,
              raw_cycles=400, raw_queue=600, warmup=16, phase_cap_s=4.0, budget_s=58.0,
              reserve_s=6.0)


class BenchError(RuntimeError):
    """The benchmark could not run (setup, server start); nothing is measured."""


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------- data


def case_body(system: str, point: str, prefix: str, index: int) -> dict[str, Any]:
    """One realistic case submission, deterministic per (prefix, index)."""
    rng = random.Random(f"{prefix}:{index}")
    return {
        "system": system,
        "intervention_point": point,
        "external_id": f"{prefix}-{index}",
        "input": {
            "amount": rng.randrange(1000, 80000, 100),
            "term_months": rng.choice([12, 24, 36, 48, 60]),
            "income": rng.randrange(15000, 150000, 500),
            "purpose": rng.choice(["car", "home improvement", "education", "debt consolidation"]),
            "employment": {"status": rng.choice(["employed", "self-employed", "retired"]),
                           "years": rng.randrange(0, 40)},
            "text": "Applicant requests a consumer loan; documents attached and verified by the branch.",
        },
        "prediction": {
            "label": "approve" if rng.random() < 0.6 else "reject",
            "confidence": round(rng.random(), 4),
            "model_version": "v3.1",
        },
        "subject": {"gender": rng.choice(["f", "m", "x"]),
                    "age_band": rng.choice(["18-24", "25-34", "35-44", "45-54", "55+"])},
    }


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


# ----------------------------------------------------------------- client processes
# Every client runs in its own process (spawned: no inherited threads or sockets).
# It prepares its work, waits on a barrier with the others and the parent, works
# until done or its time cap, and reports latencies, counts and its own CPU time.


class HttpClient:
    """One keep-alive connection; reconnects when the server closed it."""

    def __init__(self, port: int, token: str, phase: str) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=120)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json",
                        "Accept": "application/json", "X-Bench-Phase": phase}

    def post(self, path: str, body: bytes) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        try:
            self.conn.request("POST", path, body=body, headers=self.headers)
            response = self.conn.getresponse()
            data = response.read()
        except (ConnectionError, http.client.HTTPException, OSError):
            self.conn.close()
            return 0, b"connection error", (time.perf_counter() - started) * 1000
        return response.status, data, (time.perf_counter() - started) * 1000


def _note_error(out: dict[str, Any], what: str, status: int, data: bytes) -> None:
    out["errors"] += 1
    key = f"{what}:{status}"
    out["error_codes"][key] = out["error_codes"].get(key, 0) + 1
    if len(out["error_samples"]) < 3:
        out["error_samples"].append(f"{what} -> {status}: {data[:300].decode('utf-8', 'replace')}")


def _new_out() -> dict[str, Any]:
    return {"ops": 0, "items": 0, "lat_ms": [], "lat2_ms": [], "errors": 0, "error_codes": {},
            "error_samples": [], "empty": False}


def _prepare(kind: str, index: int, p: dict[str, Any]) -> dict[str, Any]:
    n = p["clients"]
    if kind in ("single", "warmup", "floor", "bare"):
        ids = range(index, p["count"], n)
        return {"bodies": [json.dumps(case_body(p["system"], p["point"], p["prefix"], i)).encode() for i in ids]}
    if kind == "batch":
        bodies = []
        for b in range(index, p["batches"], n):
            cases = [case_body(p["system"], p["point"], p["prefix"], b * p["batch_size"] + i)
                     for i in range(p["batch_size"])]
            bodies.append(json.dumps({"cases": cases}).encode())
        return {"bodies": bodies}
    if kind in ("claim", "chain"):
        share = p["cycles"] // n + (1 if index < p["cycles"] % n else 0)
        return {"share": share}
    if kind == "raw_ingest":
        return {"rows": [_raw_params(i) for i in range(index, p["count"], n)]}
    if kind == "raw_batch":
        size = p["batch_size"]
        return {"batches": [[_raw_params(1_000_000 + b * size + i) for i in range(size)]
                            for b in range(index, p["batches"], n)]}
    if kind == "raw_claim":
        share = p["cycles"] // n + (1 if index < p["cycles"] % n else 0)
        return {"share": share}
    raise ValueError(kind)


def _run_http(kind: str, index: int, p: dict[str, Any], work: dict[str, Any], deadline: float) -> dict[str, Any]:
    out = _new_out()
    if kind in ("single", "warmup", "batch", "floor", "bare"):
        client = HttpClient(p["port"], p["token"], p["phase"])
        path = HTTP_PATHS.get(kind, "/api/v1/cases/")
        for body in work["bodies"]:
            if time.monotonic() > deadline:
                break
            status, data, latency = client.post(path, body)
            out["lat_ms"].append(latency)
            if kind == "batch" and status in (201, 207):
                results = json.loads(data).get("results", [])
                accepted = sum(1 for r in results if r.get("id") is not None and not r.get("error"))
                out["items"] += accepted
                out["ops"] += 1
                if accepted < len(results) or status == 207:
                    _note_error(out, "batch-item", status, data)
            elif kind != "batch" and status == 201:
                out["ops"] += 1
                out["items"] += 1
            else:
                _note_error(out, "ingest", status, data)
        return out
    if kind == "chain":
        return _run_chain(index, p, work, deadline, out)
    # claim + decide
    client = HttpClient(p["port"], p["tokens"][index], p["phase"])
    claim_body = json.dumps({"system": p["system"]}).encode()
    decide_body = json.dumps({"outcome": "approve"}).encode()
    while out["ops"] < work["share"] and time.monotonic() < deadline:
        status, data, latency = client.post("/api/v1/queue/claim/", claim_body)
        out["lat_ms"].append(latency)
        if status == 204:
            out["empty"] = True
            break
        if status != 200:
            _note_error(out, "claim", status, data)
            if out["errors"] > 20:
                break
            continue
        case_id = json.loads(data)["case"]["id"]
        status, data, latency = client.post(f"/api/v1/cases/{case_id}/decision/", decide_body)
        out["lat2_ms"].append(latency)
        if status == 201:
            out["ops"] += 1
            out["items"] += 1
        else:
            _note_error(out, "decision", status, data)
            if out["errors"] > 20:
                break
    return out


def _run_chain(index: int, p: dict[str, Any], work: dict[str, Any], deadline: float,
               out: dict[str, Any]) -> dict[str, Any]:
    """Decide + claim next in one request (``claim_next``), as the workbench's Decide button works.

    One claim starts the chain (not timed); then every request decides the held case and
    claims the next one. The last decision of the share claims nothing, so no claim is
    left behind. ``lat_ms`` is that one request's latency: the reviewer's wait between cases.
    """
    client = HttpClient(p["port"], p["tokens"][index], p["phase"])
    scope = {"system": p["system"]}
    status, data, _ = client.post("/api/v1/queue/claim/", json.dumps(scope).encode())
    if status == 204:
        out["empty"] = True
        return out
    if status != 200:
        _note_error(out, "claim", status, data)
        return out
    case_id = json.loads(data)["case"]["id"]
    chained = json.dumps({"outcome": "approve", "claim_next": scope}).encode()
    last = json.dumps({"outcome": "approve"}).encode()
    while case_id is not None:
        final = out["ops"] + 1 >= work["share"] or time.monotonic() > deadline
        status, data, latency = client.post(f"/api/v1/cases/{case_id}/decision/", last if final else chained)
        out["lat_ms"].append(latency)
        if status != 201:
            _note_error(out, "decision", status, data)
            break
        out["ops"] += 1
        out["items"] += 1
        if final:
            break
        following = json.loads(data).get("next")
        if following is None:
            out["empty"] = True
            break
        case_id = following["case"]["id"]
    return out


# The floors (bench/floor_wsgi.py, bench/floor_urls.py) take the single-case bodies too.
HTTP_PATHS = {"batch": "/api/v1/cases/batch/", "floor": "/bench/floor/", "bare": "/bench/bare/"}


# Raw-SQL baseline: the same rows the portal writes, on scratch copies of its tables.
RAW_CASE_SQL = (
    "INSERT INTO bench_raw_case (system_id, intervention_point_id, external_id, submitted_by_id, input, input_hash,"
    " prediction_label, prediction_confidence, model_version, subject, callback_url, status, routed,"
    " routing_reasons, rules_version, reviewers_required, is_gold, blind, review_round, received_at,"
    " sla_deadline, sla_breached, resolution, final_label, decided_at)"
    " VALUES (1, 1, %(external_id)s, 1, %(input)s, %(input_hash)s, %(label)s, %(confidence)s, 'v3.1',"
    " %(subject)s, '', %(status)s, %(routed)s, %(reasons)s, 1, 1, false, false, 1, now(),"
    " CASE WHEN %(routed)s THEN now() + interval '1 day' END, false, %(resolution)s, %(final_label)s,"
    " CASE WHEN %(routed)s THEN NULL ELSE now() END) RETURNING id"
)
RAW_HISTORY_SQL = (
    "INSERT INTO bench_raw_historicalcase (id, external_id, input_hash, prediction_label, prediction_confidence,"
    " model_version, status, routed, routing_reasons, rules_version, reviewers_required, is_gold, blind,"
    " review_round, received_at, sla_deadline, sla_breached, resolution, final_label, decided_at, history_date,"
    " history_type, history_user_id, submitted_by_id, system_id, intervention_point_id)"
    " VALUES (%(id)s, %(external_id)s, %(input_hash)s, %(label)s, %(confidence)s, 'v3.1', %(status)s, %(routed)s,"
    " %(reasons)s, 1, 1, false, false, 1, now(), CASE WHEN %(routed)s THEN now() + interval '1 day' END, false,"
    " %(resolution)s, %(final_label)s, CASE WHEN %(routed)s THEN NULL ELSE now() END, now(), '+', 1, 1, 1, 1)"
)
RAW_AUDIT_SQL = (
    "INSERT INTO bench_raw_auditevent (at, actor_type, actor_id, actor_name, action, object_type, object_id,"
    " object_label, system_id, case_id, request_id, reason, payload, payload_sha256)"
    " VALUES (now(), 'integration', 1, 'bench-integration', %(action)s, 'case', %(id)s, %(label_text)s, 1,"
    " %(id_int)s, %(request_id)s, '', %(payload)s, %(payload_sha)s)"
)
RAW_CLAIM_SQL = (
    "SELECT id FROM bench_raw_case WHERE intervention_point_id = 1"
    " AND status IN ('queued', 'escalated', 'claimed') AND (status <> 'claimed' OR lease_expires_at < now())"
    " ORDER BY sla_deadline, received_at, id LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED"
)
RAW_CLAIM_UPDATE_SQL = (
    "UPDATE bench_raw_case SET status = 'claimed', claimed_by_id = %s, claimed_at = now(),"
    " lease_expires_at = now() + interval '5 minutes' WHERE id = %s"
)
RAW_DECIDE_UPDATE_SQL = (
    "UPDATE bench_raw_case SET status = 'decided', resolution = 'reviewed', final_label = prediction_label,"
    " decided_at = now(), claimed_by_id = NULL, lease_expires_at = NULL"
    " WHERE id = %s AND status = 'claimed' AND claimed_by_id = %s AND lease_expires_at > now()"
)
RAW_DECISION_SQL = (
    "INSERT INTO bench_raw_decision (round, outcome, label, rationale, ai_shown, is_adjudication, claimed_at,"
    " time_spent_ms, decided_at, form_values, category, case_id, reviewer_id)"
    " VALUES (1, 'approve', NULL, '', true, false, now(), 0, now(), '{}'::jsonb, '', %s, %s)"
)


def _raw_params(index: int) -> dict[str, Any]:
    case = case_body("bench-credit", "loan-review", "raw", index)
    routed = case["prediction"]["confidence"] < 0.5
    input_text = canonical(case["input"])
    payload = canonical({"data": {"input_hash": hashlib.sha256(input_text.encode()).hexdigest(),
                                  "reasons": ["confidence_below"] if routed else [], "rules_version": 1}})
    return {
        "external_id": case["external_id"], "input": json.dumps(case["input"]),
        "input_hash": hashlib.sha256(input_text.encode()).hexdigest(),
        "label": case["prediction"]["label"], "confidence": case["prediction"]["confidence"],
        "subject": json.dumps(case["subject"]), "routed": routed,
        "status": "queued" if routed else "auto_accepted",
        "reasons": json.dumps(["confidence_below"] if routed else []),
        "resolution": None if routed else "auto_accepted",
        "final_label": None if routed else case["prediction"]["label"],
        "action": "case.created", "payload": payload, "payload_sha": hashlib.sha256(payload.encode()).hexdigest(),
        "request_id": f"raw-{index}",
    }


def _run_raw(kind: str, index: int, p: dict[str, Any], work: dict[str, Any], deadline: float,
             conn: Any) -> dict[str, Any]:
    out = _new_out()
    cur = conn.cursor()
    if kind == "raw_ingest":
        for params in work["rows"]:
            if time.monotonic() > deadline:
                break
            started = time.perf_counter()
            cur.execute(RAW_CASE_SQL, params)
            case_id = cur.fetchone()[0]
            params.update(id=case_id, id_int=case_id, label_text=f"1:{params['external_id']}")
            cur.execute(RAW_HISTORY_SQL, params)
            cur.execute(RAW_AUDIT_SQL, params)
            conn.commit()
            out["lat_ms"].append((time.perf_counter() - started) * 1000)
            out["ops"] += 1
            out["items"] += 1
        return out
    if kind == "raw_batch":
        for rows in work["batches"]:
            if time.monotonic() > deadline:
                break
            started = time.perf_counter()
            cur.executemany(RAW_CASE_SQL, rows, returning=True)
            ids = []
            while True:
                ids.append(cur.fetchone()[0])
                if not cur.nextset():
                    break
            for row, case_id in zip(rows, ids, strict=True):
                row.update(id=case_id, id_int=case_id, label_text=f"1:{row['external_id']}")
            cur.executemany(RAW_HISTORY_SQL, rows)
            cur.executemany(RAW_AUDIT_SQL, rows)
            conn.commit()
            out["lat_ms"].append((time.perf_counter() - started) * 1000)
            out["ops"] += 1
            out["items"] += len(rows)
        return out
    # raw_claim
    reviewer = index + 1
    while out["ops"] < work["share"] and time.monotonic() < deadline:
        started = time.perf_counter()
        cur.execute(RAW_CLAIM_SQL)
        row = cur.fetchone()
        if row is None:
            conn.commit()
            out["empty"] = True
            break
        cur.execute(RAW_CLAIM_UPDATE_SQL, (reviewer, row[0]))
        conn.commit()
        claimed = time.perf_counter()
        out["lat_ms"].append((claimed - started) * 1000)
        cur.execute(RAW_DECIDE_UPDATE_SQL, (row[0], reviewer))
        if cur.rowcount != 1:
            conn.rollback()
            _note_error(out, "raw-decide", 0, b"lost the claim")
            continue
        cur.execute(RAW_DECISION_SQL, (row[0], reviewer))
        conn.commit()
        out["lat2_ms"].append((time.perf_counter() - claimed) * 1000)
        out["ops"] += 1
        out["items"] += 1
    return out


def client_main(index: int, tasks: Any, barrier: Any, results: Any, release: Any) -> None:
    """Entry point of one client process: runs the phases it is handed until told to stop.

    Per phase it prepares its work, waits on the barrier with the other clients and
    the parent, works until done or the phase's time cap, reports, and keeps its
    database connection open until the parent has read the CPU counters
    (``release``): a closed backend's CPU time can no longer be read.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent cleans up; children just stop
    while True:
        task = tasks.get()
        if task is None:
            return
        kind, p = task
        conn = None
        try:
            work = _prepare(kind, index, p)
            if kind.startswith("raw"):
                import psycopg

                conn = psycopg.connect(p["dsn"], autocommit=False)
            barrier.wait(timeout=180)
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            deadline = time.monotonic() + p["cap_s"]
            if kind.startswith("raw"):
                out = _run_raw(kind, index, p, work, deadline, conn)
            else:
                out = _run_http(kind, index, p, work, deadline)
            out["t_end"] = time.monotonic()
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            out["cpu_s"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            results.put((index, out))
            release.wait(timeout=120)
        except BaseException as exc:  # report, never hang the parent
            with contextlib.suppress(Exception):
                barrier.abort()
            results.put((index, {"fatal": f"{type(exc).__name__}: {exc}"}))
            return
        finally:
            if conn is not None:
                conn.close()


# -------------------------------------------------------------------- CPU accounting


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _machine() -> dict[str, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return {"total": sum(values), "idle": values[3], "iowait": values[4]}


def _tree_cpu_s(pid: int | None) -> float:
    if not pid:
        return 0.0
    return sum(_proc_cpu_s(p) for p in [pid, *_children(pid)])


class CpuProbe:
    """CPU seconds of gunicorn (master + workers), of the Celery sealer, of the benchmark DB's backends
    (the seal-lag poller's own backend excluded), and of the machine."""

    def __init__(self, admin_dsn: str, db_name: str) -> None:
        self.admin_dsn = admin_dsn
        self.db_name = db_name
        self.gunicorn_pid: int | None = None
        self.sealer_pid: int | None = None

    def _backends(self) -> list[int]:
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
                " AND application_name <> %s",
                [self.db_name, POLLER_APP_NAME],
            ).fetchall()
        return [r[0] for r in rows]

    def snapshot(self) -> dict[str, Any]:
        backends = {pid: _proc_cpu_s(pid) for pid in self._backends()}
        return {"app": _tree_cpu_s(self.gunicorn_pid), "sealer": _tree_cpu_s(self.sealer_pid), "db": backends,
                "machine": _machine(), "t": time.monotonic()}

    @staticmethod
    def delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
        db = sum(cpu - a["db"].get(pid, 0.0) for pid, cpu in b["db"].items())
        total = b["machine"]["total"] - a["machine"]["total"] or 1
        idle = b["machine"]["idle"] - a["machine"]["idle"]
        iowait = b["machine"]["iowait"] - a["machine"]["iowait"]
        return {"app_cpu_s": b["app"] - a["app"], "sealer_cpu_s": b["sealer"] - a["sealer"], "db_cpu_s": db,
                "busy_cpu_s": (total - idle - iowait) / CLK_TCK, "window_s": b["t"] - a["t"],
                "machine_busy": (total - idle - iowait) / total, "machine_iowait": iowait / total}


# ------------------------------------------------------------------- audit sealing lag

POLLER_APP_NAME = "hitl_bench_seal_poller"
# The oldest unsealed event of the current phase (the partial index audit_unsealed_idx
# serves the scan) and how many of the phase's events are unsealed.
SEAL_LAG_SQL = (
    "SELECT extract(epoch FROM clock_timestamp() - min(at)), count(*) FROM"
    " (SELECT at FROM audit_auditevent WHERE seq IS NULL AND at >= %s ORDER BY id LIMIT 100000) AS unsealed"
)

# Every event of the phase: how long it waited to be sealed. ``at`` is taken when the
# request builds its events, before its commit; an event still unsealed counts with its age.
EVENT_LAG_SQL = (
    "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY lag), percentile_disc(0.99) WITHIN GROUP (ORDER BY lag),"
    " count(*) FROM (SELECT extract(epoch FROM coalesce(sealed_at, clock_timestamp()) - at) AS lag"
    " FROM audit_auditevent WHERE at >= %s) AS events"
)


class SealLagPoller:
    """Polls the age of the oldest unsealed audit event (every ``interval`` s) in a thread.

    Sealing runs in the Celery worker (``HITL_AUDIT_SEAL_MODE=task``), off the
    request path; this measures how far behind it falls while a phase runs. Only
    the current phase's events count (``since``): events a previous phase left
    unsealed are reported there (``unsealed_left``), not as lag of the next one.
    """

    def __init__(self, dsn: str, interval: float = 0.2) -> None:
        import threading

        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True, application_name=POLLER_APP_NAME)
        self.interval = interval
        self.samples: list[tuple[float, float, int]] = []  # (monotonic time, oldest age s, unsealed count)
        self.since = dt.datetime.now(dt.UTC)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="seal-lag-poller", daemon=True)
        self.thread.start()

    def poll(self) -> tuple[float, int]:
        age, count = self.conn.execute(SEAL_LAG_SQL, [self.since]).fetchone()
        return (float(age) if age is not None else 0.0), int(count)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                with self.lock:
                    age, count = self.poll()
            except Exception:  # a transient error must not end the benchmark; the next poll retries
                age, count = -1.0, -1
            self.samples.append((time.monotonic(), age, count))
            self.stopping.wait(self.interval)

    def window(self, start: float, end: float) -> tuple[float | None, int | None]:
        """The largest oldest-unsealed age and backlog seen between ``start`` and ``end`` (monotonic)."""
        seen = [(age, count) for t, age, count in self.samples if start <= t <= end and age >= 0]
        if not seen:
            return None, None
        return max(age for age, _ in seen), max(count for _, count in seen)

    def wait_drained(self, timeout: float) -> tuple[float | None, int]:
        """Wait until every event is sealed: (seconds it took, or None on timeout; events left unsealed)."""
        started = time.monotonic()
        while True:
            with self.lock:
                _age, count = self.poll()
            if count == 0:
                return round(time.monotonic() - started, 2), 0
            if time.monotonic() - started > timeout:
                return None, count
            time.sleep(0.05)

    def event_lag(self) -> tuple[float | None, float | None, int]:
        """p50 and p99 of ``sealed_at - at`` over the current phase's events, and their count."""
        with self.lock:
            p50, p99, count = self.conn.execute(EVENT_LAG_SQL, [self.since]).fetchone()
        return (None if p50 is None else round(float(p50), 3)), (None if p99 is None else round(float(p99), 3)), \
            int(count)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self.conn.close()


# ------------------------------------------------------------------------ the phases


@dataclass
class Phase:
    """The outcome of one measured phase."""

    name: str
    unit: str
    ops: int = 0
    items: int = 0
    wall_s: float = 0.0
    rate: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    second_p50_ms: float | None = None
    second_p99_ms: float | None = None
    errors: int = 0
    error_codes: dict[str, int] | None = None
    error_samples: list[str] | None = None
    queue_emptied: bool = False
    app_cpu_ms_per_op: float | None = None
    # The Celery worker that seals the audit chain (off the request path).
    sealer_cpu_ms_per_op: float | None = None
    db_cpu_ms_per_op: float | None = None
    client_cpu_ms_per_op: float | None = None
    machine_busy: float | None = None
    machine_iowait: float | None = None
    # CPU cores busy with processes outside the benchmark (other work on the machine).
    foreign_cores: float | None = None
    # The rate the measured CPU cost per operation allows when the benchmark has every
    # core to itself: a load-independent estimate when foreign load distorts the rate.
    cpu_ceiling: float | None = None
    # Audit sealing: the oldest unsealed event's age (max over the phase's polls), the
    # largest unsealed backlog seen, and how long the backlog took to drain after the phase.
    seal_lag_max_s: float | None = None
    seal_backlog_max: int | None = None
    seal_drain_s: float | None = None
    unsealed_left: int | None = None
    # Per event of the phase: ``sealed_at - at`` (an event still unsealed counts with its
    # age when the drain wait ended), p50 and p99, and how many events that covers.
    seal_lag_p50_s: float | None = None
    seal_lag_p99_s: float | None = None
    sealed_events: int | None = None
    # The polls themselves: (seconds since the phase started, oldest unsealed age s, unsealed events).
    seal_samples: list[tuple[float, float, int]] | None = None
    skipped: str | None = None


class ClientPool:
    """Eight client processes, spawned once (no inherited threads or sockets) and reused by every phase."""

    def __init__(self, n: int) -> None:
        ctx = mp.get_context("spawn")
        self.n = n
        self.barrier = ctx.Barrier(n + 1)
        self.results = ctx.Queue()
        self.release = ctx.Event()
        self.tasks = [ctx.Queue() for _ in range(n)]
        self.procs = [ctx.Process(target=client_main, args=(k, self.tasks[k], self.barrier, self.results,
                                                            self.release), daemon=True) for k in range(n)]
        for proc in self.procs:
            proc.start()

    def close(self, *, abort: bool = False) -> None:
        """Stop the clients: politely after a complete run, at once (SIGTERM) when aborting."""
        for queue in self.tasks:
            with contextlib.suppress(Exception):
                queue.put(None)
        self.release.set()
        for proc in self.procs:
            if abort and proc.is_alive():
                proc.terminate()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)

    def run(self, kind: str, unit: str, params: dict[str, Any], probe: CpuProbe,
            poller: SealLagPoller | None = None) -> Phase:
        """Run one phase on all clients; gather latencies, counts, CPU and sealing lag into a Phase.

        After the clients finish, the CPU snapshot waits (up to ``DRAIN_TIMEOUT_S``)
        for the sealer to seal the phase's events, so their sealing is counted here.
        """
        self.release.clear()
        for queue in self.tasks:
            queue.put((kind, params))
        try:
            self.barrier.wait(timeout=180)
        except Exception as exc:
            fatal = []
            with contextlib.suppress(Exception):
                while True:
                    fatal.append(self.results.get(timeout=2)[1].get("fatal"))
            raise BenchError(f"{kind}: clients did not start: {fatal or exc}") from exc
        t0 = time.monotonic()
        if poller is not None:
            poller.since = dt.datetime.now(dt.UTC)
        before = probe.snapshot()
        outs = []
        for _ in range(self.n):
            _, out = self.results.get(timeout=params["cap_s"] + 300)
            if "fatal" in out:
                raise BenchError(f"{kind}: a client failed: {out['fatal']}")
            outs.append(out)
        t_end = time.monotonic()
        drain_s: float | None = None
        left: int | None = None
        if poller is not None:
            drain_s, left = poller.wait_drained(DRAIN_TIMEOUT_S)
        after = probe.snapshot()
        self.release.set()
        phase = _phase(kind, unit, outs, t0, CpuProbe.delta(before, after))
        if poller is not None:
            lag, backlog = poller.window(t0, t_end)
            phase.seal_lag_max_s = _r(lag)
            phase.seal_backlog_max = backlog
            phase.seal_drain_s = drain_s
            phase.unsealed_left = left
            phase.seal_lag_p50_s, phase.seal_lag_p99_s, phase.sealed_events = poller.event_lag()
            phase.seal_samples = [(round(t - t0, 2), round(age, 3), count) for t, age, count in poller.samples
                                  if t0 <= t <= t_end]
        return phase


# Sealing a phase's backlog takes well under a second; events still unsealed after this
# long wait for the next seal request (or, deployed, beat's one-second sweep).
DRAIN_TIMEOUT_S = 3.0


def _phase(kind: str, unit: str, outs: list[dict[str, Any]], t0: float, cpu: dict[str, float]) -> Phase:
    wall = max(o["t_end"] for o in outs) - t0
    lat = [x for o in outs for x in o["lat_ms"]]
    lat2 = [x for o in outs for x in o["lat2_ms"]]
    ops = sum(o["ops"] for o in outs)
    items = sum(o["items"] for o in outs)
    codes: dict[str, int] = {}
    for o in outs:
        for key, count in o["error_codes"].items():
            codes[key] = codes.get(key, 0) + count
    client_cpu_s = sum(o["cpu_s"] for o in outs)
    ours = cpu["app_cpu_s"] + cpu["sealer_cpu_s"] + cpu["db_cpu_s"] + client_cpu_s
    foreign = cpu["busy_cpu_s"] - ours
    window = max(cpu["window_s"], wall)
    per = max(items if unit == "cases/s" else ops, 1)
    return Phase(
        name=kind, unit=unit, ops=ops, items=items, wall_s=round(wall, 3),
        rate=round((items if unit == "cases/s" else ops) / wall, 1) if wall > 0 else 0.0,
        p50_ms=_r(percentile(lat, 0.50)), p99_ms=_r(percentile(lat, 0.99)),
        second_p50_ms=_r(percentile(lat2, 0.50)), second_p99_ms=_r(percentile(lat2, 0.99)),
        errors=sum(o["errors"] for o in outs), error_codes=codes,
        error_samples=[s for o in outs for s in o["error_samples"]][:5],
        queue_emptied=any(o["empty"] for o in outs),
        app_cpu_ms_per_op=round(cpu["app_cpu_s"] * 1000 / per, 3),
        sealer_cpu_ms_per_op=round(cpu["sealer_cpu_s"] * 1000 / per, 3),
        db_cpu_ms_per_op=round(cpu["db_cpu_s"] * 1000 / per, 3),
        client_cpu_ms_per_op=round(client_cpu_s * 1000 / per, 3),
        machine_busy=round(cpu["machine_busy"], 3), machine_iowait=round(cpu["machine_iowait"], 3),
        foreign_cores=round(max(foreign, 0.0) / window, 2) if window > 0 else None,
        cpu_ceiling=_ceiling(ours, per),
    )


def _ceiling(cpu_s: float, per: int) -> float | None:
    if cpu_s <= 0:
        return None
    return round((os.cpu_count() or 1) * per / cpu_s, 1)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# ---------------------------------------------------------------- database, server


def sh(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=BASE_DIR, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(cmd[:3])} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def create_raw_tables(dsn: str, queue_rows: int) -> None:
    """Scratch copies of the real tables (columns, indexes, checks) and a queue for raw_claim."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for table, source in (("bench_raw_case", "reviews_case"),
                              ("bench_raw_historicalcase", "reviews_historicalcase"),
                              ("bench_raw_auditevent", "audit_auditevent"),
                              ("bench_raw_decision", "reviews_decision")):
            conn.execute(f"CREATE TABLE {table} (LIKE {source} INCLUDING ALL)")
        conn.execute(
            "INSERT INTO bench_raw_case (system_id, intervention_point_id, external_id, submitted_by_id, input,"
            " input_hash, prediction_label, prediction_confidence, model_version, subject, callback_url, status,"
            " routed, routing_reasons, rules_version, reviewers_required, is_gold, blind, review_round,"
            " received_at, sla_deadline, sla_breached)"
            " SELECT 1, 1, 'queue-' || g, 1, jsonb_build_object('amount', g, 'text', repeat('x', 120)),"
            " md5(g::text) || md5(g::text), 'approve', 0.3, 'v3.1', '{}'::jsonb, '', 'queued', true,"
            " '[\"confidence_below\"]'::jsonb, 1, 1, false, false, 1, now() + g * interval '1 ms',"
            " now() + interval '1 day' + g * interval '1 ms', false FROM generate_series(1, %s) AS g",
            [queue_rows],
        )
        conn.execute("ANALYZE bench_raw_case")


def server_env(args: argparse.Namespace, db_url: str, var_dir: Path, broker_url: str) -> dict[str, str]:
    """The environment of gunicorn and of the sealing worker: the benchmark database, a real broker.

    With a Redis broker on PostgreSQL the portal seals the audit chain in a Celery
    task (``HITL_AUDIT_SEAL_MODE=task``), not in the request.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_ENV", "HITL_TESTING", "DJANGO_DEBUG")}
    # Connections live through the run: a backend closed mid-phase (DB_CONN_MAX_AGE, 60 s by
    # default) takes its CPU time with it, and the per-operation database CPU would be short.
    # REDIS_URL as deployed (README, Production): the cache (throttles, login lockout) on Redis too,
    # in the broker's database (Django prefixes its keys), flushed with it at the end.
    env.update(DATABASE_URL=db_url, HITL_VAR_DIR=str(var_dir), HITL_THROTTLE_INTEGRATION="100000000/min",
               REDIS_URL=broker_url,
               DJANGO_SETTINGS_MODULE="hitl_portal.settings", PYTHONPATH=str(BASE_DIR),
               CELERY_BROKER_URL=broker_url, DB_CONN_MAX_AGE="3600")
    env.update(item.split("=", 1) for item in args.server_env)
    return env


def pick_broker_db(host: str, port: int, wanted: int) -> int:
    """A Redis database for this run's queue: ``wanted``, or (``-1``) the highest empty one.

    Runs of the benchmark (and other work) on one Redis must not share a queue: a
    foreign worker would take this run's seal tasks.
    """
    import redis

    client = redis.Redis(host=host, port=port, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BenchError(f"Redis at {host}:{port} is not reachable ({exc}); the sealing worker needs a broker") \
            from exc
    if wanted >= 0:
        return wanted
    count = int(client.config_get("databases").get("databases", 16))
    for db in range(count - 1, 0, -1):
        if redis.Redis(host=host, port=port, db=db, socket_timeout=5).dbsize() == 0:
            return db
    raise BenchError("no empty Redis database for the broker; pass --broker-db N")


class Sealer:
    """One Celery worker (concurrency 1) beside gunicorn: it runs the audit seal tasks."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.cmd = [str(BIN_DIR / "celery"), "-A", "hitl_portal", "worker", "-l", "warning", "--concurrency", "1",
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "-n", f"bench-sealer-{os.getpid()}@%h", "--logfile", str(log)]
        self.proc = subprocess.Popen(self.cmd, env=env, cwd=BASE_DIR, start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def check(self) -> None:
        if self.proc.poll() is not None:
            tail = ""
            with contextlib.suppress(OSError):
                tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            raise BenchError(f"the Celery sealing worker exited ({self.proc.returncode}):\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # warm shutdown: finishes the running task
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


class Server:
    """gunicorn serving the portal on the benchmark database."""

    def __init__(self, args: argparse.Namespace, db_url: str, var_dir: Path, log: Path,
                 profile_dir: Path | None, broker_url: str) -> None:
        self.port = free_port()
        self.log = log
        # The portal with the floor phases' two extra paths (bench/floor_*.py); every portal
        # path is served exactly as hitl_portal.wsgi serves it.
        app = "floor_wsgi:application"
        env = server_env(args, db_url, var_dir, broker_url)
        env.update(DJANGO_SETTINGS_MODULE="floor_settings", PYTHONPATH=f"{BENCH_DIR}{os.pathsep}{BASE_DIR}")
        if args.worker_class == "uvicorn":
            # The ASGI deployment of the README (hitl_portal.asgi: sync views in its thread pool).
            if profile_dir is not None:
                raise BenchError("--profile wraps the WSGI app: use a gunicorn worker class")
            self.cmd = [str(BIN_DIR / "uvicorn"), "hitl_portal.asgi:application", "--host", HOST, "--port",
                        str(self.port), "--workers", str(args.workers), "--log-level", "warning",
                        "--no-access-log", "--backlog", "2048"]
            with open(log, "ab") as handle:
                self.proc = subprocess.Popen(self.cmd, env=env, cwd=BASE_DIR, start_new_session=True,
                                             stdout=handle, stderr=handle)
            return
        cmd = [str(BIN_DIR / "gunicorn"), "--bind", f"{HOST}:{self.port}", "--workers", str(args.workers),
               "--worker-class", args.worker_class, "--chdir", str(BASE_DIR), "--timeout", "120",
               "--graceful-timeout", "15", "--backlog", "2048", "--log-level", "warning",
               "--error-logfile", str(log), "--pythonpath", f"{BENCH_DIR},{BASE_DIR}"]
        if args.worker_class == "gthread":
            cmd += ["--threads", str(args.threads)]
        if profile_dir is not None:
            # floor_wsgi then serves the portal through profiled_wsgi.
            cmd += ["--config", str(BENCH_DIR / "gunicorn_profile.py")]
            env["HITL_BENCH_PROFILE_DIR"] = str(profile_dir)
        self.cmd = [*cmd, app]
        # Own session: the whole gunicorn tree can be stopped by its process group id.
        self.proc = subprocess.Popen(self.cmd, env=env, cwd=BASE_DIR, start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"gunicorn exited ({self.proc.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection(HOST, self.port, timeout=5)
                conn.request("GET", "/healthz")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return
            time.sleep(0.2)
        raise BenchError(f"gunicorn did not answer /healthz within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: workers finish and exit
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


# The portal's promise for every write the benchmark made: the case's history row,
# its sealed ``case.created`` event, each decision's history row, no unsealed event.
INTEGRITY_SQL = {
    "cases": "SELECT count(*) FROM reviews_case",
    "cases_without_history": "SELECT count(*) FROM reviews_case c WHERE NOT EXISTS"
    " (SELECT 1 FROM reviews_historicalcase h WHERE h.id = c.id AND h.history_type = '+')",
    "cases_without_sealed_created_event": "SELECT count(*) FROM reviews_case c WHERE NOT EXISTS"
    " (SELECT 1 FROM audit_auditevent e WHERE e.case_id = c.id AND e.action = 'case.created'"
    " AND e.seq IS NOT NULL)",
    "decisions_without_history": "SELECT count(*) FROM reviews_decision d WHERE NOT EXISTS"
    " (SELECT 1 FROM reviews_historicaldecision h WHERE h.id = d.id)",
    "decided_cases_without_sealed_decided_event": "SELECT count(*) FROM reviews_case c WHERE c.status = 'decided'"
    " AND NOT EXISTS (SELECT 1 FROM audit_auditevent e WHERE e.case_id = c.id AND e.action = 'case.decided'"
    " AND e.seq IS NOT NULL)",
    "unsealed_events": "SELECT count(*) FROM audit_auditevent WHERE seq IS NULL",
    "seq_gaps": "SELECT coalesce(max(seq), 0) - count(seq) FROM audit_auditevent",
}


def check_integrity(dsn: str) -> dict[str, int]:
    """Count the writes that broke the portal's promise (all zero but ``cases``)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        return {name: int(conn.execute(sql).fetchone()[0]) for name, sql in INTEGRITY_SQL.items()}


# ---------------------------------------------------------------------------- report


def machine_info(admin_dsn: str) -> dict[str, Any]:
    import psycopg

    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        pg = {name: conn.execute(f"SHOW {name}").fetchone()[0]
              for name in ("server_version", "synchronous_commit", "fsync", "shared_buffers", "wal_sync_method")}
    commit = ""
    with contextlib.suppress(Exception):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BASE_DIR, capture_output=True,
                                text=True, timeout=10, check=False).stdout.strip()
    import gunicorn

    return {"nproc": os.cpu_count(), "mem_gib": round(mem_kb / 1024 / 1024, 1), "cpu_model": cpu_model,
            "postgresql": pg, "python": platform.python_version(), "gunicorn": gunicorn.__version__,
            "kernel": platform.release(), "git_commit": commit}


def _seal_drain(phase: Phase) -> str:
    if phase.unsealed_left:
        return f"{phase.unsealed_left} left after {DRAIN_TIMEOUT_S:.0f} s"
    return _fmt(phase.seal_drain_s, 2)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def evaluate(phases: dict[str, Phase]) -> list[dict[str, Any]]:
    """The table's rows: each portal figure, its raw baseline, the ratio and the target."""

    def ratio(a: str, b: str) -> float | None:
        if a in phases and b in phases and phases[b].rate and not phases[a].skipped and not phases[b].skipped:
            return round(phases[a].rate / phases[b].rate, 3)
        return None

    rows = []
    spec = [
        ("single", "raw_ingest", "Single-case ingest", "req/s",
         [("single_rps", ">="), ("single_p99_ms", "p99<"), ("seal_lag_p99_s", "lag<")]),
        ("batch", "raw_batch", "Batch ingest (1000/request)", "cases/s",
         [("batch_cps", ">="), ("seal_lag_p99_s", "lag<")]),
        ("claim", "raw_claim", "Claim + decide", "cycles/s",
         [("claim_cps", ">="), ("claim_p99_ms", "p99<"), ("seal_lag_p99_s", "lag<")]),
        # The same cycle as one request (the decision with claim_next): judged on the cycle rate.
        # Its p99 is reported, not judged: it is a whole cycle's wait (a decision and the next
        # claim, two transactions), not a claim's, and with 8 reviewers always waiting its mean
        # is 8 / rate on any stack (67 ms at 120 cycles/s).
        ("chain", "raw_claim", "Decide + claim next, one request a case", "cycles/s",
         [("claim_cps", ">="), ("seal_lag_p99_s", "lag<")]),
        # No targets: how fast the stack answers a request that does nothing (bench/floor_*.py).
        ("floor", "raw_ingest", "Floor: portal API request doing no work", "req/s", []),
        ("bare", "raw_ingest", "Floor: bare WSGI answer under gunicorn", "req/s", []),
    ]
    for name, base, label, unit, checks in spec:
        phase = phases.get(name)
        if phase is None:
            continue
        r = ratio(name, base)
        verdicts = []
        for key, kind in checks:
            target = TARGETS[key]
            if phase.skipped:
                ok = None
            elif kind == ">=":
                ok = phase.rate >= target
            elif kind == "ratio>=":
                ok = None if r is None else r >= target
            elif kind == "lag<":
                ok = None if phase.seal_lag_p99_s is None else phase.seal_lag_p99_s < target
            else:
                ok = phase.p99_ms is not None and phase.p99_ms < target
            verdicts.append({"target": key, "value": target, "met": ok})
        rows.append({"phase": name, "label": label, "unit": unit, "skipped": phase.skipped,
                     "rate": phase.rate, "p50_ms": phase.p50_ms,
                     "p99_ms": phase.p99_ms, "baseline": base,
                     "baseline_rate": phases[base].rate if base in phases else None, "ratio": r,
                     "targets": verdicts, "errors": phase.errors})
    return rows


def _cpu_ms(phase: Phase) -> dict[str, float]:
    parts = {"app": phase.app_cpu_ms_per_op, "sealer": phase.sealer_cpu_ms_per_op, "db": phase.db_cpu_ms_per_op,
             "client": phase.client_cpu_ms_per_op}
    total = round(sum(v or 0.0 for v in parts.values()), 3)
    return {**{k: round(v or 0.0, 3) for k, v in parts.items()}, "total": total}


def fixed_cost(phases: dict[str, Phase]) -> dict[str, Any] | None:
    """The share of single ingest's CPU that is the stack's fixed per-request cost (the floor phases).

    ``floor`` is a portal API request that does no work (middleware, DRF, token
    authentication, throttle, JSON parsing and rendering); ``bare`` is gunicorn
    answering from plain WSGI (server, loopback connection and client).
    """
    single, floor = phases.get("single"), phases.get("floor")
    if single is None or floor is None or single.skipped or floor.skipped or not single.ops or not floor.ops:
        return None
    s, f = _cpu_ms(single), _cpu_ms(floor)
    out: dict[str, Any] = {
        "single_cpu_ms": s, "floor_cpu_ms": f,
        "floor_share_of_single_app": round(f["app"] / s["app"], 3) if s["app"] else None,
        "floor_share_of_single_total": round(f["total"] / s["total"], 3) if s["total"] else None,
        "floor_rate": floor.rate, "floor_ceiling": floor.cpu_ceiling,
    }
    bare = phases.get("bare")
    if bare is not None and not bare.skipped and bare.ops:
        b = _cpu_ms(bare)
        out.update(bare_cpu_ms=b, bare_rate=bare.rate, bare_ceiling=bare.cpu_ceiling,
                   django_share_of_single_total=round((f["total"] - b["total"]) / s["total"], 3) if s["total"]
                   else None)
    return out


def markdown(info: dict[str, Any], phases: dict[str, Phase], rows: list[dict[str, Any]],
             args: argparse.Namespace, integrity: dict[str, int] | None = None) -> str:
    target_text = {"single_rps": "≥ 400/s", "single_p99_ms": "p99 < 50 ms", "batch_cps": "≥ 6,000/s",
                   "claim_cps": "≥ 120/s", "claim_p99_ms": "claim p99 < 50 ms",
                   "seal_lag_p99_s": "seal lag p99 < 1 s"}
    pg = info["postgresql"]
    lines = [
        f"Machine: {info['nproc']} CPU ({info['cpu_model']}), {info['mem_gib']} GiB, "
        f"PostgreSQL {pg['server_version']} (synchronous_commit={pg['synchronous_commit']}), "
        + (f"uvicorn (ASGI) {args.workers} workers" if args.worker_class == "uvicorn"
           else f"gunicorn {info['gunicorn']} {args.workers}×{args.worker_class}")
        + (f" ({args.threads} threads)" if args.worker_class == "gthread" else "")
        + f", {CLIENTS} client processes{', QUICK run' if args.quick else ''}{', PROFILED' if args.profile else ''}"
        + (f", server env {' '.join(args.server_env)}" if args.server_env else "")
        + f"; 1-min load average at start {info.get('load_at_start', 0.0):.2f}.",
        "",
        "| Measure | Figure | p50 ms | p99 ms | Raw baseline | Ratio | Targets | Errors |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        verdict = ", ".join(
            f"{target_text[t['target']]} {'✅' if t['met'] else ('❌' if t['met'] is False else '–')}"
            for t in row["targets"]
        )
        base = phases.get(row["baseline"])
        figure = f"skipped ({row['skipped']})" if row["skipped"] else f"{_fmt(row['rate'])} {row['unit']}"
        lines.append(
            f"| {row['label']} | {figure} | {_fmt(row['p50_ms'])} | {_fmt(row['p99_ms'])} | "
            f"{_fmt(base.rate) + ' ' + base.unit if base and not base.skipped else '–'} | "
            f"{_fmt(row['ratio'], 3) + '×' if row['ratio'] is not None else '–'} | {verdict} | {row['errors']} |"
        )
    lines += [
        "",
        "| Phase | Ops | Items | Wall s | Rate | p50 / p99 ms | 2nd step p50 / p99 ms "
        "| CPU ms/op app · sealer · db · client | CPU ceiling | Event seal lag p50 / p99 s "
        "| Oldest unsealed max s · backlog · drain s "
        "| Machine busy · iowait | Foreign load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in phases.values():
        if phase.skipped:
            lines.append(f"| {phase.name} | skipped: {phase.skipped} | | | | | | | | | | | |")
            continue
        lines.append(
            f"| {phase.name} | {phase.ops} | {phase.items} | {phase.wall_s:.2f} | {_fmt(phase.rate)} {phase.unit} | "
            f"{_fmt(phase.p50_ms)} / {_fmt(phase.p99_ms)} | "
            f"{_fmt(phase.second_p50_ms)} / {_fmt(phase.second_p99_ms)} | "
            f"{_fmt(phase.app_cpu_ms_per_op, 2)} · {_fmt(phase.sealer_cpu_ms_per_op, 2)} · "
            f"{_fmt(phase.db_cpu_ms_per_op, 2)} · "
            f"{_fmt(phase.client_cpu_ms_per_op, 2)} | {_fmt(phase.cpu_ceiling)} {phase.unit} | "
            f"{_fmt(phase.seal_lag_p50_s, 2)} / {_fmt(phase.seal_lag_p99_s, 2)} | "
            f"{_fmt(phase.seal_lag_max_s, 2)} · {phase.seal_backlog_max if phase.seal_backlog_max is not None else '–'}"
            f" · {_seal_drain(phase)} | "
            f"{phase.machine_busy:.0%} · {phase.machine_iowait:.0%} | "
            f"{_fmt(phase.foreign_cores, 2)} cores |"
        )
    lines.append("")
    lines.append("Second step: the decision request (claim) or the decide transaction (raw_claim). CPU: gunicorn "
                 "master+workers, the Celery worker sealing the audit chain, the benchmark database's backends, "
                 "the client processes; per case for cases/s. Event seal lag: `sealed_at - at` of every audit event "
                 "of the phase. Oldest unsealed: the oldest unsealed audit event's age, "
                 "largest over the phase (polled every 0.2 s), the largest unsealed backlog, and how long the "
                 "backlog took to drain after the phase's last request. "
                 "Foreign load: CPU cores busy with anything else (other work on the machine; PostgreSQL's "
                 "WAL writer and checkpointer are counted there too). CPU ceiling: the rate that CPU cost "
                 f"(app + sealer + db + client) allows on {os.cpu_count()} otherwise idle cores.")
    fixed = fixed_cost(phases)
    if fixed:
        f, s = fixed["floor_cpu_ms"], fixed["single_cpu_ms"]
        text = (f"Fixed per-request cost: a portal API request doing no work (`floor`) costs {f['total']:.2f} ms "
                f"of CPU (app {f['app']:.2f}, db {f['db']:.2f}, client {f['client']:.2f}) and answers at most "
                f"{_fmt(fixed['floor_ceiling'])} req/s on these cores; single ingest costs {s['total']:.2f} ms "
                f"(app {s['app']:.2f}, sealer {s['sealer']:.2f}, db {s['db']:.2f}, client {s['client']:.2f}): the "
                f"fixed cost is {fixed['floor_share_of_single_total']:.0%} of its CPU "
                f"({fixed['floor_share_of_single_app']:.0%} of its app CPU).")
        if "bare_cpu_ms" in fixed:
            b = fixed["bare_cpu_ms"]
            text += (f" Of that, gunicorn, the loopback connection and the client (`bare`, plain WSGI) cost "
                     f"{b['total']:.2f} ms; Django, DRF and the portal's middleware and authentication "
                     f"{f['total'] - b['total']:.2f} ms ({fixed['django_share_of_single_total']:.0%} of single "
                     "ingest's CPU).")
        lines.append(text)
    if integrity:
        broken = {k: v for k, v in integrity.items() if k != "cases" and v}
        lines.append(f"Integrity after the run: {integrity.get('cases', 0):,} cases; "
                     + ("every case has its history row and its sealed `case.created` event, every decision its "
                        "history row, every event sealed." if not broken else f"**BROKEN**: {broken}"))
    for phase in phases.values():
        if phase.errors:
            lines.append(f"- {phase.name}: {phase.errors} errors {phase.error_codes}; e.g. {phase.error_samples[:2]}")
    return "\n".join(lines)


# Library entry points worth naming in a hotspot summary next to the project's own code.
HOTSPOT_LIBRARY = (
    ("rest_framework/authentication.py", "authenticate_credentials"),
    ("rest_framework/views.py", "check_permissions"),
    ("rest_framework/serializers.py", "is_valid"),
    ("simple_history/models.py", "create_historical_record"),
    ("simple_history/manager.py", "bulk_history_create"),
    ("django/db/models/query.py", "bulk_create"),
    ("django/db/transaction.py", "__exit__"),
)


def hotspots(stats: pstats.Stats, limit: int = 22) -> str:
    """The project's own functions (and a few library entry points) by cumulative time, as % of requests."""
    own = str(BASE_DIR) + os.sep
    venv = str(BASE_DIR / ".venv")
    total = 0.0
    rows = []
    for (filename, line, func), (_cc, ncalls, _tt, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if func == "__call__" and filename.endswith("django/core/handlers/wsgi.py"):
            total += cumtime
        project = filename.startswith(own) and not filename.startswith(venv) and "/bench/" not in filename
        library = any(filename.endswith(f) and func == name for f, name in HOTSPOT_LIBRARY)
        if project or library:
            short = filename[len(own):] if project else filename.split("site-packages/")[-1]
            rows.append((cumtime, ncalls, f"{short}:{line}({func})"))
    rows.sort(reverse=True)
    out = [f"{'% of request time':>18} {'calls':>7}  function"]
    for cumtime, ncalls, name in rows[:limit]:
        share = 100 * cumtime / total if total else 0.0
        out.append(f"{share:17.1f}% {ncalls:7d}  {name}")
    return "\n".join(out) + "\n"


def profile_report(profile_dir: Path, limit: int = 25) -> dict[str, str]:
    """Merge each phase's worker profiles: hotspot summary, then top functions by own and cumulative time."""
    import io

    reports = {}
    phases = sorted({p.name.rsplit("-", 1)[0] for p in profile_dir.glob("*.prof")})
    for phase in phases:
        files = sorted(str(p) for p in profile_dir.glob(f"{phase}-*.prof"))
        text = io.StringIO()
        stats = pstats.Stats(files[0], stream=text)
        for extra in files[1:]:
            stats.add(extra)
        text.write(f"==== {phase}: {len(files)} worker profile(s); hotspots (cumulative, inclusive)\n")
        text.write(hotspots(stats))
        stats.strip_dirs()
        text.write(f"==== {phase}: by own time\n")
        stats.sort_stats("tottime").print_stats(limit)
        text.write(f"==== {phase}: by cumulative time\n")
        stats.sort_stats("cumulative").print_stats(limit + 15)
        reports[phase] = text.getvalue()
        (profile_dir / f"{phase}.txt").write_text(reports[phase])
    return reports


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small run, under a minute")
    parser.add_argument("--profile", action="store_true", help="cProfile the workers; no raw baseline")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", choices=["sync", "gthread", "uvicorn"], default="sync",
                        help="gunicorn's sync or gthread workers, or uvicorn serving hitl_portal.asgi")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--only", default="",
                        help="comma-separated phases (single,floor,batch,claim); default all")
    parser.add_argument("--pg-host", default=HOST)
    parser.add_argument("--pg-port", default="5432")
    parser.add_argument("--db-user", default=os.environ.get("HITL_BENCH_DB_USER", "root"),
                        help="role the portal connects as (owner of the benchmark database)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the benchmark database")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for gunicorn, to try a setting (repeatable)")
    parser.add_argument("--broker-host", default=HOST, help="Redis broker for the sealing worker")
    parser.add_argument("--broker-port", type=int, default=6379)
    parser.add_argument("--broker-db", type=int, default=-1,
                        help="Redis database of this run's queue (default: the highest empty one, "
                             "flushed at the end; a database given here is left as it is)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="first wait up to this long for the 1-minute load average to drop below 1")
    args = parser.parse_args(argv)
    if args.pg_host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("loopback only: --pg-host must be 127.0.0.1, localhost or ::1")
    if any("=" not in item for item in args.server_env):
        parser.error("--server-env takes NAME=VALUE")
    if args.wait_quiet > 0:
        waited = time.monotonic() + args.wait_quiet
        while os.getloadavg()[0] >= 1.0 and time.monotonic() < waited:
            time.sleep(5)
    load_at_start = os.getloadavg()

    sizes = QUICK if args.quick else FULL
    if args.profile:
        # The profiler slows every request several-fold: less work, more time.
        sizes = Sizes(single=400, batch_size=sizes.batch_size, batches=CLIENTS, cycles=400, raw_tx=0,
                      raw_batches=0, raw_cycles=0, raw_queue=0, warmup=sizes.warmup, phase_cap_s=40.0,
                      budget_s=240.0, reserve_s=20.0)
    started = time.monotonic()
    budget_end = started + sizes.budget_s
    only = {p for p in args.only.split(",") if p} or {"single", "floor", "batch", "claim"}
    signal.signal(signal.SIGTERM, _terminate)

    db_name = f"hitl_bench_{os.getpid()}"
    db_url = f"postgres://{args.db_user}@{args.pg_host}:{args.pg_port}/{db_name}"
    dsn = f"host={args.pg_host} port={args.pg_port} user={args.db_user} dbname={db_name}"
    admin_dsn = f"host={args.pg_host} port={args.pg_port} user={args.db_user} dbname=postgres"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    var_dir = Path(tempfile.mkdtemp(prefix="hitl-bench-var-"))
    profile_dir = OUT_DIR / f"profile-{stamp}" if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True)
    server: Server | None = None
    sealer: Sealer | None = None
    poller: SealLagPoller | None = None
    broker_url = ""
    # Only a database this run picked because it was empty is flushed at the end.
    flush_broker = False
    pool: ClientPool | None = None
    created = False
    phases: dict[str, Phase] = {}
    failure: str | None = None
    info: dict[str, Any] = {}
    integrity: dict[str, int] | None = None
    try:
        pool = ClientPool(CLIENTS)  # spawned now, so their start-up overlaps the database setup
        info = machine_info(admin_dsn)
        info["load_at_start"] = round(load_at_start[0], 2)
        sh(["createdb", "-h", args.pg_host, "-p", args.pg_port, "-U", "postgres", "-O", args.db_user, db_name])
        created = True
        env = {**{k: v for k, v in os.environ.items() if k not in ("DJANGO_ENV", "HITL_TESTING")},
               "DATABASE_URL": db_url, "HITL_VAR_DIR": str(var_dir)}
        t = time.monotonic()
        sh([sys.executable, "manage.py", "migrate", "--skip-checks", "-v", "0"], env=env, timeout=180)
        fixture = json.loads(sh([sys.executable, str(BENCH_DIR / "fixture.py"), str(CLIENTS)], env=env)
                             .strip().splitlines()[-1])
        if not args.profile:
            create_raw_tables(dsn, sizes.raw_queue)
        print(f"setup: database {db_name} migrated and seeded in {time.monotonic() - t:.1f} s", file=sys.stderr)

        broker_db = pick_broker_db(args.broker_host, args.broker_port, args.broker_db)
        broker_url = f"redis://{args.broker_host}:{args.broker_port}/{broker_db}"
        flush_broker = args.broker_db < 0
        info["broker"] = broker_url
        server = Server(args, db_url, var_dir, OUT_DIR / f"gunicorn-{stamp}.log", profile_dir, broker_url)
        sealer = Sealer(server_env(args, db_url, var_dir, broker_url), OUT_DIR / f"sealer-{stamp}.log")
        server.wait_ready()
        sealer.check()
        poller = SealLagPoller(dsn)
        # The budget bounds the measuring, not the setup: on a loaded machine migrating alone
        # can take a minute, and the phases must still run.
        budget_end = time.monotonic() + sizes.budget_s
        probe = CpuProbe(admin_dsn, db_name)
        probe.gunicorn_pid = server.proc.pid
        probe.sealer_pid = sealer.proc.pid
        common = {"clients": CLIENTS, "port": server.port, "system": fixture["system"],
                  "point": fixture["intervention_point"], "dsn": dsn}

        groups = {"single": ["raw_ingest", "single"], "floor": ["bare", "floor"], "batch": ["raw_batch", "batch"],
                  "claim": ["raw_claim", "claim", "chain"]}
        if args.profile:  # the portal phases only: no raw baseline, and the bare floor has no Django to profile
            groups = {"single": ["single"], "floor": ["floor"], "batch": ["batch"], "claim": ["claim", "chain"]}
        if args.worker_class == "uvicorn":
            groups["floor"] = ["floor"]  # /bench/bare/ is a WSGI app (bench/floor_wsgi.py)
        planned = [kind for group in ("single", "floor", "batch", "claim") if group in only for kind in groups[group]]

        def cap(kind: str) -> float:
            """The phase's time cap: its share of what is left of the budget (at least 1.5 s).

            A slow setup (a loaded machine) shortens the phases rather than dropping
            them; only a budget already spent skips what is left.
            """
            left = planned[planned.index(kind):]
            share = (budget_end - time.monotonic() - sizes.reserve_s) / len(left) - 1.5
            return max(1.5, min(sizes.phase_cap_s, share))

        def measure(kind: str, unit: str, **params: Any) -> None:
            if time.monotonic() > budget_end:
                phases[kind] = Phase(name=kind, unit=unit, skipped="time budget spent")
                return
            limit = cap(kind)
            phase = pool.run(kind, unit, {**common, "phase": kind, "cap_s": limit, **params}, probe, poller)
            phases[kind] = phase
            sealer.check()
            print(f"{kind}: {phase.rate:,.1f} {unit} (p50 {_fmt(phase.p50_ms)} ms, p99 {_fmt(phase.p99_ms)} ms, "
                  f"{phase.errors} errors; CPU ms/op app {_fmt(phase.app_cpu_ms_per_op, 2)}, sealer "
                  f"{_fmt(phase.sealer_cpu_ms_per_op, 2)}, db {_fmt(phase.db_cpu_ms_per_op, 2)}; "
                  f"seal lag p99 {_fmt(phase.seal_lag_p99_s, 2)} s)", file=sys.stderr)

        # Warm-up: every worker imports its lazy modules and opens its DB connection.
        pool.run("warmup", "req/s", {**common, "phase": "warmup", "cap_s": 20, "count": sizes.warmup,
                                     "prefix": "w", "token": fixture["integration_token"]}, probe, poller)
        if "single" in only:
            if not args.profile:
                measure("raw_ingest", "tx/s", count=sizes.raw_tx)
            measure("single", "req/s", count=sizes.single, prefix="s", token=fixture["integration_token"])
        if "floor" in only:
            # The same bodies, token and clients as single ingest: what a request costs before its work.
            for kind in groups["floor"]:
                measure(kind, "req/s", count=sizes.single, prefix="f", token=fixture["integration_token"])
        if "batch" in only:
            if not args.profile:
                measure("raw_batch", "cases/s", batches=sizes.raw_batches, batch_size=sizes.batch_size)
            measure("batch", "cases/s", batches=sizes.batches, batch_size=sizes.batch_size, prefix="b",
                    token=fixture["integration_token"])
        if "claim" in only:
            if not args.profile:
                measure("raw_claim", "cycles/s", cycles=sizes.raw_cycles)
            measure("claim", "cycles/s", cycles=sizes.cycles, tokens=fixture["reviewer_tokens"])
            measure("chain", "cycles/s", cycles=sizes.cycles, tokens=fixture["reviewer_tokens"])
        if server is not None:
            server.stop()  # every request answered and its after-commit work done
        if sealer is not None and poller is not None:
            poller.wait_drained(DRAIN_TIMEOUT_S)
        integrity = check_integrity(dsn)
    except (BenchError, KeyboardInterrupt, Exception) as exc:
        failure = f"{type(exc).__name__}: {exc}"
        print(f"benchmark aborted: {failure}", file=sys.stderr)
    finally:
        if pool is not None:
            pool.close(abort=failure is not None)
        if poller is not None:
            poller.close()
        if server is not None:
            server.stop()
        if sealer is not None:
            sealer.stop()
        if flush_broker:
            # This run's leftovers (bindings, an undelivered seal task) must not linger in Redis.
            with contextlib.suppress(Exception):
                import redis

                redis.Redis.from_url(broker_url, socket_timeout=5).flushdb()
        if created and not args.keep_db:
            try:
                sh(["dropdb", "-h", args.pg_host, "-p", args.pg_port, "-U", "postgres", "--force", "--if-exists",
                    db_name])
            except BenchError as exc:
                print(f"could not drop {db_name}: {exc}", file=sys.stderr)
        shutil.rmtree(var_dir, ignore_errors=True)

    rows = evaluate(phases)
    report = {
        "started_at": stamp, "quick": args.quick, "profile": args.profile, "machine": info,
        "server": {"workers": args.workers, "worker_class": args.worker_class,
                   "threads": args.threads if args.worker_class == "gthread" else 1, "env": args.server_env,
                   "broker": broker_url, "sealer": "celery worker --concurrency 1"},
        "clients": CLIENTS, "sizes": asdict(sizes), "targets": TARGETS,
        "phases": {name: asdict(p) for name, p in phases.items()}, "summary": rows, "integrity": integrity,
        "fixed_cost": fixed_cost(phases),
        "failure": failure, "elapsed_s": round(time.monotonic() - started, 1),
    }
    out_file = OUT_DIR / f"pipeline-{stamp}{'-profile' if args.profile else ''}.json"
    out_file.write_text(json.dumps(report, indent=2))
    if info and phases:
        print(markdown(info, phases, rows, args, integrity))
    if profile_dir is not None and any(profile_dir.glob("*.prof")):
        for phase, text in profile_report(profile_dir).items():
            print(f"\n<details><summary>profile: {phase}</summary>\n\n```\n{text[:6000]}```\n</details>")
        for sql_file in sorted(profile_dir.glob("*.sql")):
            print(f"\n{sql_file.name}:\n{sql_file.read_text()[:5000]}")
    print(f"\nresults: {out_file.relative_to(BASE_DIR)} (elapsed {report['elapsed_s']} s)", file=sys.stderr)
    if failure:
        return 2
    missed = any(t["met"] is False for row in rows for t in row["targets"])
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
