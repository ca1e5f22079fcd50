"""Bias-audit benchmark: an audit over 1,000,000 decided cases on PostgreSQL against the raw GROUP BY.

Run from the repository root::

    .venv/bin/python bench/bias_audit.py                 # 1,000,000 cases (+200,000 of another system)
    .venv/bin/python bench/bias_audit.py --cases 100000  # smaller smoke run
    .venv/bin/python bench/bias_audit.py --write-docs    # also append the figures to docs/PERFORMANCE.md

What it does, in one run:

1. Creates a throwaway PostgreSQL database ``hitl_bench_bias_<pid>`` (``createdb``
   as the ``postgres`` role on 127.0.0.1, owned by ``--db-user``) and migrates it.
2. Registers, through the portal's services, a high-risk credit-scoring system
   (positive label ``approve``, protected attributes ``gender`` and ``age_band``)
   and a second system whose cases are interleaved with the first's.
3. Bulk-loads the cases with ``COPY`` (every column of ``reviews_case``; values
   not set here are the model's defaults): ``--cases`` cases of the audited
   system received over the last 30 days, in arrival order, all decided (about
   60 % auto-accepted, 40 % reviewed with some overrides), 30 % with ground
   truth, a few gold items (which the audit must skip), and a planted disparity
   (the AI approves 40 % of group ``f`` against 55 % of group ``m``). Then
   ``VACUUM ANALYZE``. None of this is timed.
4. Times, on a warm cache:

   * ``raw``: the audit's aggregate as one plain SQL statement over the whole
     period (``GROUP BY subject->>'gender', prediction_label, final_label,
     true_label, routed, status``), best of three;
   * ``audit``: the portal's audit, chunks executed inline in this process, one
     after the other (request → plan → every chunk → finalize, the services the
     Celery tasks call; a chunk is a UTC day of received cases), with each step timed;
   * ``audit_parallel``: the same with the chunks on ``--threads`` threads at once
     (each its own database connection), as that many Celery workers would run them.

5. Prints a Markdown table (figures, ratio to the raw baseline, the < 10 s target)
   and, with ``--write-docs``, appends it with the command and the machine to the
   end of ``docs/PERFORMANCE.md`` under ``## Bias audit``.

It is a benchmark, not a test: nothing in CI runs it and it never fails on a
missed target (``--strict`` exits 1 then). The database is dropped at the end
(``--keep-db`` keeps it). Loopback only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
HOST = "127.0.0.1"
TARGET_S = 10.0
SYSTEM = "bench-credit"
OTHER = "bench-fraud"
GROUPS = (("f", 0.45, 0.40), ("m", 0.50, 0.55), ("x", 0.05, 0.50))  # value, share, AI approval rate
AGE_BANDS = ("18-24", "25-34", "35-44", "45-64", "65+")


def sh(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=BASE_DIR, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": memory, "python": platform.python_version(),
            "os": platform.platform(terse=True)}


def setup_systems() -> tuple[Any, Any, Any, Any]:
    from reviews.services.systems import intervention_point_create, system_create

    audited = system_create(
        actor=None, slug=SYSTEM, name="Bench credit scoring", labels=["approve", "reject"],
        purpose="Consumer credit decisions (benchmark)", declared_tier="high", annex_iii_area="5b",
        positive_label="approve", protected_attributes=["gender", "age_band"],
    )
    point = intervention_point_create(actor=None, system=audited, slug="loan-review", name="Loan review",
                                      stage="validation", confidence_below=0.6)
    other = system_create(actor=None, slug=OTHER, name="Bench fraud", labels=["fraud", "ok"],
                          declared_tier="limited", positive_label="fraud", protected_attributes=["gender"])
    other_point = intervention_point_create(actor=None, system=other, slug="tx-check", name="Transaction check",
                                            stage="validation")
    return audited, point, other, other_point


def load_cases(dsn: str, *, audited: Any, point: Any, other: Any, other_point: Any, cases: int,
               other_cases: int, seed: int, now: dt.datetime) -> dict[str, int]:
    """COPY the cases into reviews_case: every concrete column, defaults for those not set here."""
    import psycopg
    from django.db import connection

    from reviews.models import Case

    fields = [f for f in Case._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields]
    defaults = {f.column: f.get_db_prep_save(f.get_default(), connection) for f in fields}
    for column, value in defaults.items():
        if hasattr(value, "obj"):  # psycopg's Jsonb wrapper: COPY takes the JSON text
            defaults[column] = json.dumps(value.obj)
    rnd = random.Random(seed)
    start = now - dt.timedelta(days=30)
    total = cases + other_cases
    step = dt.timedelta(days=30) / total
    other_every = (total // other_cases) if other_cases else 0
    stats = {"audited": 0, "other": 0, "gold": 0}
    with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY reviews_case ({', '.join(columns)}) FROM STDIN") as copy:
            for index in range(total):
                received = start + step * index
                is_other = other_every and index % other_every == other_every - 1 and stats["other"] < other_cases
                row = dict(defaults)
                if is_other:
                    stats["other"] += 1
                    ai = "fraud" if rnd.random() < 0.1 else "ok"
                    row.update(system_id=other.pk, intervention_point_id=other_point.pk,
                               external_id=f"tx-{index}", prediction_label=ai, final_label=ai,
                               status="auto_accepted", resolution="auto_accepted",
                               subject=json.dumps({"gender": rnd.choice("fm")}))
                else:
                    stats["audited"] += 1
                    draw = rnd.random()
                    group = "f" if draw < GROUPS[0][1] else "m" if draw < GROUPS[0][1] + GROUPS[1][1] else "x"
                    approve_rate = dict((g, r) for g, _, r in GROUPS)[group]
                    truth = "approve" if rnd.random() < 0.5 else "reject"
                    # The AI leans on the truth (so TPR/FPR mean something) and on the group (the planted bias).
                    p_approve = approve_rate + (0.2 if truth == "approve" else -0.2)
                    ai = "approve" if rnd.random() < p_approve else "reject"
                    confidence = rnd.random()
                    routed = confidence < 0.4
                    final = ai
                    if routed and rnd.random() < 0.15:
                        final = "reject" if ai == "approve" else "approve"
                    gold = rnd.random() < 0.005
                    stats["gold"] += gold
                    row.update(
                        system_id=audited.pk, intervention_point_id=point.pk, external_id=f"app-{index}",
                        prediction_label=ai, prediction_confidence=confidence, model_version="v3.1",
                        final_label=final, routed=routed,
                        status="decided" if routed else "auto_accepted",
                        resolution="reviewed" if routed else "auto_accepted",
                        routing_reasons=json.dumps(["confidence_below"] if routed else []),
                        true_label=truth if rnd.random() < 0.3 else None,
                        is_gold=gold, gold_label=final if gold else None,
                        subject=json.dumps({"gender": group, "age_band": rnd.choice(AGE_BANDS)}),
                    )
                row.update(
                    input=json.dumps({"amount": rnd.randint(500, 50_000), "term_months": rnd.choice((12, 24, 36)),
                                      "text": "Loan application for a used car; two years at the employer."}),
                    input_hash=f"{index:064x}", received_at=received, decided_at=received,
                )
                copy.write_row([row[c] for c in columns])
        conn.commit()
    return stats


def raw_baseline(dsn: str, *, system_id: int, period_from: dt.datetime, period_to: dt.datetime,
                 attribute: str) -> tuple[float, int]:
    """The same aggregate as plain SQL, one statement over the whole period: best of three (seconds)."""
    import psycopg

    sql = (
        "SELECT subject ->> %s, prediction_label, final_label, true_label, routed, status, count(*) "
        "FROM reviews_case WHERE system_id = %s AND received_at >= %s AND received_at < %s AND NOT is_gold "
        "GROUP BY 1, 2, 3, 4, 5, 6"
    )
    timings = []
    rows = 0
    with psycopg.connect(dsn) as conn:
        for _ in range(3):
            t = time.perf_counter()
            result = conn.execute(sql, [attribute, system_id, period_from, period_to]).fetchall()
            timings.append(time.perf_counter() - t)
            rows = sum(r[-1] for r in result)
    return min(timings), rows


def run_audit(system: Any, *, attribute: str, threads: int, period: tuple[dt.datetime, dt.datetime]) -> dict[str, Any]:
    """Request, plan, run every chunk inline (on ``threads`` threads), finalize: each step timed."""
    from django.db import connections

    from fairness import services
    from fairness.models import BiasAudit

    finish_time: list[float] = []
    original_finish = services._finish

    def timed_finish(audit: Any) -> Any:
        t = time.perf_counter()
        try:
            return original_finish(audit)
        finally:
            finish_time.append(time.perf_counter() - t)

    services._finish = timed_finish  # type: ignore[assignment]
    services._enqueue_run = lambda audit_id: None  # type: ignore[assignment]
    services._enqueue_chunks = lambda audit_id, indexes: None  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        audit = services.bias_audit_request(actor=None, system=system, attribute=attribute, period_from=period[0],
                                            period_to=period[1])
        requested = time.perf_counter()
        indexes = services.bias_audit_start(audit_id=audit.pk)
        planned = time.perf_counter()
        chunk_times: list[float] = []

        def one(index: int) -> None:
            t = time.perf_counter()
            try:
                services.bias_audit_run_chunk(audit_id=audit.pk, index=index)
            finally:
                chunk_times.append(time.perf_counter() - t)
                if threads > 1:
                    connections.close_all()

        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(one, indexes))
        else:
            for index in indexes:
                one(index)
        finished = time.perf_counter()
    finally:
        services._finish = original_finish  # type: ignore[assignment]
    audit = BiasAudit.objects.get(pk=audit.pk)
    assert audit.status == "done", audit.status
    return {
        "total_s": finished - started,
        "request_s": requested - started,
        "plan_s": planned - requested,
        "chunks": len(indexes),
        "chunks_s": finished - planned,
        "chunk_mean_s": statistics.mean(chunk_times) if chunk_times else 0.0,
        "chunk_max_s": max(chunk_times) if chunk_times else 0.0,
        "finalize_s": finish_time[0] if finish_time else 0.0,
        "cases": audit.cases_counted,
        "flagged": audit.flagged,
        "metrics": audit.results["metrics"],
        "audit": audit,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1_000_000, help="cases of the audited system")
    parser.add_argument("--other-cases", type=int, default=200_000, help="interleaved cases of another system")
    parser.add_argument("--threads", type=int, default=2, help="threads of the parallel run (say, workers)")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--pg-port", default="5432")
    parser.add_argument("--db-user", default=os.environ.get("HITL_BENCH_DB_USER", "root"))
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--write-docs", action="store_true", help="append the figures to docs/PERFORMANCE.md")
    args = parser.parse_args(argv)

    load_at_start = os.getloadavg()[0]
    db_name = f"hitl_bench_bias_{os.getpid()}"
    db_url = f"postgres://{args.db_user}@{HOST}:{args.pg_port}/{db_name}"
    dsn = f"host={HOST} port={args.pg_port} user={args.db_user} dbname={db_name}"
    var_dir = Path(tempfile.mkdtemp(prefix="hitl-bench-bias-"))
    sh(["createdb", "-h", HOST, "-p", args.pg_port, "-U", "postgres", "-O", args.db_user, db_name])
    try:
        env = {**{k: v for k, v in os.environ.items() if k not in ("DJANGO_ENV", "HITL_TESTING")},
               "DATABASE_URL": db_url, "HITL_VAR_DIR": str(var_dir)}
        sh([sys.executable, "manage.py", "migrate", "--skip-checks", "-v", "0"], env=env)
        os.environ.update({"DATABASE_URL": db_url, "HITL_VAR_DIR": str(var_dir),
                           "DJANGO_SETTINGS_MODULE": "hitl_portal.settings"})
        os.environ.pop("DJANGO_ENV", None)
        import django

        django.setup()
        from django.conf import settings
        from django.db import connection

        assert settings.DATABASES["default"]["NAME"] == db_name
        # Audit events seal after commit; the sealer is measured by the pipeline benchmark, not here.
        settings.HITL_AUDIT_SEAL_ON_COMMIT = False
        audited, point, other, other_point = setup_systems()
        t = time.monotonic()
        loaded_at = dt.datetime.now(dt.UTC)
        stats = load_cases(dsn, audited=audited, point=point, other=other, other_point=other_point,
                           cases=args.cases, other_cases=args.other_cases, seed=args.seed, now=loaded_at)
        load_s = time.monotonic() - t
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE reviews_case")
            cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('reviews_case')), version()")
            table_size, pg_version = cursor.fetchone()
        print(f"setup: {stats} loaded with COPY in {load_s:.1f} s; reviews_case is {table_size}", file=sys.stderr)

        # The 30 days the cases were received in (the load spread them up to its start).
        period = (loaded_at - dt.timedelta(days=30), loaded_at)
        raw_s, raw_cases = raw_baseline(dsn, system_id=audited.pk, period_from=period[0], period_to=period[1],
                                        attribute="gender")
        runs = {
            "audit": run_audit(audited, attribute="gender", threads=1, period=period),
            "audit_parallel": run_audit(audited, attribute="gender", threads=args.threads, period=period),
        }
        first = runs["audit"]
        assert first["audit"].results == runs["audit_parallel"]["audit"].results
        expected = stats["audited"] - stats["gold"]
        print(f"check: raw baseline counted {raw_cases}, the audit {first['cases']}, expected {expected}",
              file=sys.stderr)
        assert raw_cases == first["cases"] == expected

        lines = [
            f"| run | total | ratio to raw | plan | chunks (n × mean, max) | finalize | target < {TARGET_S:.0f} s |",
            "|---|---|---|---|---|---|---|",
            f"| raw GROUP BY (one SQL statement, best of 3) | {raw_s:.2f} s | 1.00 | – | – | – | – |",
        ]
        for name, label in (("audit", "audit, chunks inline one after the other"),
                            ("audit_parallel", f"audit, chunks on {args.threads} threads")):
            run = runs[name]
            met = "met" if run["total_s"] < TARGET_S else "missed"
            lines.append(
                f"| {label} | {run['total_s']:.2f} s | {run['total_s'] / raw_s:.2f} | {run['plan_s']:.2f} s | "
                f"{run['chunks']} × {run['chunk_mean_s']:.2f} s, max {run['chunk_max_s']:.2f} s | "
                f"{run['finalize_s'] * 1000:.0f} ms | {met} |"
            )
        final = first["metrics"]["final"]
        ai = first["metrics"]["ai"]
        table = "\n".join(lines)
        info = machine()
        summary = (
            f"{first['cases']:,} cases of the audited system counted ({stats['other']:,} of another system "
            f"interleaved, {stats['gold']:,} gold items skipped); table {table_size}; {pg_version.split(',')[0]}; "
            f"{info['cpu']}, {info['cores']} cores, {info['memory']}; Python {info['python']}; "
            f"load average {load_at_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (other work on "
            "the same cores slows both the baseline and the audit).\n"
            f"Planted disparity found: disparate impact ratio AI {ai['disparate_impact_ratio']:.3f}, "
            f"final {final['disparate_impact_ratio']:.3f} (flagged: {first['flagged']})."
        )
        print(table)
        print()
        print(summary)
        if args.write_docs:
            options = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write-docs"]
            command = " ".join([".venv/bin/python bench/bias_audit.py", *options])
            docs = BASE_DIR / "docs" / "PERFORMANCE.md"
            with docs.open("a", encoding="utf-8") as out:
                out.write(
                    f"\n## Bias audit\n\n"
                    f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `{command}` "
                    "(a benchmark, not a test; see the module's docstring).\n\n"
                    f"{table}\n\n{summary}\n\n"
                    "The audit is the chunked path the Celery tasks take (request; plan: the period cut at UTC "
                    f"midnights into {runs['audit']['chunks']} daily slices, no data read; one GROUP BY per slice "
                    "over the (system, received_at) index with its upsert; the finalizer summing the chunks, "
                    "computing the metrics, filing the incident), run inline for timing; the raw baseline is the "
                    "same GROUP BY as one statement over the whole period. The ratio is the price of chunking "
                    "(per chunk: the audit row read and locked, the upsert, the count of chunks done, a commit) "
                    "and of the finalizer; and, on this machine, PostgreSQL runs the single raw statement as a "
                    "parallel sequential scan (two workers and the leader), where each chunk is one process "
                    "reading one day of the (system, received_at) index. No index was added: a chunk already "
                    "reads only its own system's rows of its day, in arrival (physical) order, and a covering "
                    "index would have to copy the labels and the subject attribute into a write-hot table "
                    "(and be per attribute).\n"
                )
        if args.strict and first["total_s"] >= TARGET_S:
            return 1
        return 0
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # Django may not be set up yet
            pass
        if not args.keep_db:
            subprocess.run(["dropdb", "-h", HOST, "-p", args.pg_port, "-U", "postgres", "--force", "--if-exists",
                            db_name], check=False, capture_output=True, timeout=120)


if __name__ == "__main__":
    raise SystemExit(main())
