"""KPI dashboard benchmark: a million cases in PostgreSQL, the rollup, and the KPI API and dashboard server time.

Run from the repository root::

    .venv/bin/python bench/kpis.py                    # 1,000,000 cases over 180 days (a few minutes)
    .venv/bin/python bench/kpis.py --cases 100000     # a quicker run
    .venv/bin/python bench/kpis.py --keep-db          # keep the database for inspection

What it does, in one run:

1. Creates a throwaway PostgreSQL database ``hitl_bench_kpi_<pid>`` (``createdb`` as
   the ``postgres`` role on 127.0.0.1, owned by ``--db-user``), migrates it, and
   sets up through the portal's own services three systems with four
   intervention points (one four-eyes, one labeling stage), 30 reviewers (three
   adjudicators) and a manager.
2. Loads ``--cases`` cases spread over ``--days`` days with ``COPY`` (no per-row
   services): weekly seasonality and growth, business-hours arrival, about a third
   routed to people (all of the labeling point), 1 % gold items, 5 % blind, time
   to resolution log-normal around a few minutes with a heavy tail and SLA breaches,
   ~12 % overrides, ground truth for 60 % of the cases older than a week, a live
   queue of the last hours; one decision per routed case (two on the four-eyes
   point, plus an adjudication when they disagree). Then ``ANALYZE``.
3. Builds the rollup from scratch (``rollup_refresh(full=True)``), then measures two
   incremental refreshes: after 10,000 new cases today (with their history rows, as
   ingestion writes them) and after late ground truth on 5,000 cases of the last
   30 days (updated with history rows, as the outcome service does).
4. Times, in-process through Django's test client (the whole request: middleware,
   authentication, view, rendering; no network), after two warm-up requests,
   ``--repeat`` requests each of: the KPI API for the last 90 whole days (all
   systems, and one system), the KPI API over 90 days with partial first and last
   days (both edge days aggregated live from the cases), the KPI API without
   parameters (the last 30 days until now), the series API, the
   dashboard page (90 days, all systems and one system), and the same 90-day KPIs
   computed without the rollup (straight from the cases), for comparison.
5. Times the raw-database baseline: one plain SQL aggregate over the same 90 days
   (counts, overrides, accuracy, SLA breaches and both percentiles of time to
   resolution in a single ``SELECT``, no agreement), and reports every portal
   figure as a ratio to it. Query counts per request are reported too.
6. Prints a Markdown table and writes everything as JSON to ``bench/out/kpis-<timestamp>.json``
   (git-ignored). Target: < 500 ms server time for the 90-day KPI API and dashboard.

This is a benchmark, not a test: it never fails on a missed target (``--strict``
makes it exit 1 then). Whatever happens, the database is dropped at the end
unless ``--keep-db``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
OUT_DIR = BASE_DIR / "bench" / "out"
TARGET_MS = 500.0
PASSWORD = "bench-pass-word-123"


def sh(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    result = subprocess.run(cmd, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def machine_info(dsn: str) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    import psycopg

    with psycopg.connect(dsn) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0]
                    for name in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather")}
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "python": platform.python_version(),
            "postgresql": version, "postgresql_settings": settings, "os": platform.platform()}


# --- Setup through the services ----------------------------------------------------------------------


def setup_fixture() -> dict[str, Any]:
    """Systems, points, reviewers and a manager, created the way production creates them."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from django.contrib.auth.models import User

    from reviews.models import ReviewerProfile
    from reviews.services.people import training_record_add, user_create
    from reviews.services.systems import intervention_point_create, system_create

    admin = User.objects.create_superuser(username="bench-admin", password=PASSWORD, email="bench@example.org")
    # Protected attributes and a positive label so that a bias audit can run over the credit cases
    # (bench/scale.py audits them; the generator writes the attributes into ``subject``).
    credit = system_create(actor=admin, slug="credit", name="Credit scoring", labels=["approve", "reject"],
                           declared_tier="high", annex_iii_area="5b", positive_label="approve",
                           protected_attributes=["gender", "age_band"])
    fraud = system_create(actor=admin, slug="fraud", name="Fraud detection", labels=["legit", "fraud"],
                          declared_tier="high", annex_iii_area="5b")
    moderation = system_create(actor=admin, slug="moderation", name="Content moderation",
                               labels=["allow", "restrict", "remove"], declared_tier="limited")
    points = {
        "loan-review": intervention_point_create(actor=admin, system=credit, slug="loan-review", name="Loan review",
                                                 stage="validation", confidence_below=0.6, sla_seconds=3600),
        "high-amount": intervention_point_create(actor=admin, system=credit, slug="high-amount",
                                                 name="High amounts", stage="exception", sla_seconds=7200,
                                                 high_stakes=[{"field": "amount", "op": "gt", "value": 50000}]),
        "tx-check": intervention_point_create(actor=admin, system=fraud, slug="tx-check", name="Transaction check",
                                              stage="validation", confidence_below=0.5, reviewers_required=2,
                                              sla_seconds=1800),
        "labeling": intervention_point_create(actor=admin, system=moderation, slug="labeling", name="Labeling",
                                              stage="labeling", sla_seconds=86400),
    }
    reviewers = []
    for index in range(30):
        user, _ = user_create(actor=admin, username=f"rev{index + 1:02d}", password=PASSWORD, role="reviewer",
                              systems=["credit", "fraud", "moderation"], validate=False)
        training_record_add(actor=admin, profile=user.reviewer_profile, title="AI literacy",
                               completed_at=dt.date.today())
        reviewers.append(user.pk)
    for profile in ReviewerProfile.objects.filter(user_id__in=reviewers[:3]):
        profile.adjudicator = True
        profile.save(update_fields=["adjudicator"])
    manager, _ = user_create(actor=admin, username="bench-manager", password=PASSWORD, role="manager",
                             validate=False)
    return {
        "admin": admin.pk, "manager": manager.pk, "reviewers": reviewers, "adjudicators": reviewers[:3],
        "points": {slug: {"id": p.pk, "system": p.system_id, "system_slug": p.system.slug,
                          "labels": list(p.system.labels),
                          "required": p.reviewers_required, "sla": p.sla_seconds, "stage": p.stage}
                   for slug, p in points.items()},
    }


# --- The data -----------------------------------------------------------------------------------------

CASE_COLUMNS = [
    "id", "external_id", "input", "input_hash", "prediction_label", "prediction_confidence", "model_version",
    "subject", "callback_url", "status", "routed", "routing_reasons", "rules_version", "reviewers_required",
    "is_gold", "gold_label", "blind", "review_round", "received_at", "sla_deadline", "sla_breached", "resolution",
    "final_label", "decided_at", "true_label", "true_label_at", "system_id", "intervention_point_id",
]
AGE_BANDS = ("18-24", "25-34", "35-44", "45-64", "65+")
# The last two are the case's system and AI label, which the decision path copies onto each decision.
DECISION_COLUMNS = ["case_id", "reviewer_id", "round", "outcome", "label", "rationale", "ai_shown",
                    "is_adjudication", "time_spent_ms", "decided_at", "form_values", "category", "system_id",
                    "prediction_label"]


def generate(fixture: dict[str, Any], *, cases: int, days: int, now: dt.datetime, seed: int, first_id: int,
             only_today: bool = False, part: tuple[int, int] = (0, 1)):
    """Yield ``(case_row, decision_rows)`` with realistic distributions (see the module docstring).

    ``part=(k, n)`` yields only the k-th of n consecutive runs of days (ids continue where the
    earlier parts' cases end), so that n processes can load one span side by side.
    """
    rng = random.Random(seed)
    points = fixture["points"]
    reviewers, adjudicators = fixture["reviewers"], fixture["adjudicators"]
    # Cases per day: weekly seasonality (weekends at 45 %) and +50 % growth over the span.
    start_day = now.date() - dt.timedelta(days=days - 1)
    weights = []
    for i in range(days):
        day = start_day + dt.timedelta(days=i)
        weights.append((0.45 if day.weekday() >= 5 else 1.0) * (1 + 0.5 * i / max(days - 1, 1)))
    total = sum(weights)
    point_mix = [("loan-review", 0.5), ("high-amount", 0.1), ("tx-check", 0.3), ("labeling", 0.1)]
    # Cases in received order (ids follow time, as ingestion writes them): per-day counts first,
    # then the moments one day at a time (a generator: memory stays flat at 10 million cases).
    if only_today:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        span = max(1.0, min(36000.0, (now - midnight).total_seconds()))
        moments: Any = sorted(now - dt.timedelta(seconds=rng.uniform(0, span)) for _ in range(cases))
    else:
        per_day = [int(cases * w / total) for w in weights]
        per_day[-1] += cases - sum(per_day)
        k, n = part
        bounds = [days * i // n for i in range(n + 1)]
        first_id += sum(per_day[:bounds[k]])

        def daily() -> Any:
            for index, count in enumerate(per_day):
                if not bounds[k] <= index < bounds[k + 1]:
                    continue
                day_start = dt.datetime.combine(start_day + dt.timedelta(days=index), dt.time.min, tzinfo=dt.UTC)
                seconds = sorted(min(86399.0, max(0.0, rng.gauss(13.5 * 3600, 3.5 * 3600))) for _ in range(count))
                for second in seconds:
                    moment = day_start + dt.timedelta(seconds=second)
                    yield moment if moment <= now else now - dt.timedelta(seconds=rng.uniform(1, 60))

        moments = daily()
    for n, received in enumerate(moments):
        case_id = first_id + n
        pick_point = rng.random()
        slug = point_mix[-1][0]
        for name, share in point_mix:
            if pick_point < share:
                slug = name
                break
            pick_point -= share
        point = points[slug]
        labels = point["labels"]
        labeling = point["stage"] == "labeling"
        confidence = round(rng.betavariate(5, 2), 3)
        subject = "{}"
        first_label_rate = 0.7
        if point["system_slug"] == "credit":
            # The credit system declares gender and age band as protected attributes: the subject carries
            # them, with a mild planted disparity (the AI approves group f less often) for the bias audit.
            draw = rng.random()
            gender = "f" if draw < 0.45 else "m" if draw < 0.95 else "x"
            subject = json.dumps({"gender": gender, "age_band": rng.choice(AGE_BANDS)})
            first_label_rate = 0.62 if gender == "f" else 0.74
        ai = None if labeling and rng.random() < 0.5 else (
            labels[0] if rng.random() < first_label_rate else rng.choice(labels[1:]))
        if labeling:
            routed = True
        elif slug == "high-amount":
            routed = rng.random() < 0.8
        else:
            routed = confidence < (0.6 if slug == "loan-review" else 0.5)
        truth = ai if ai is not None and rng.random() < 0.84 else rng.choice(labels)
        age_s = (now - received).total_seconds()
        gold = routed and rng.random() < 0.01
        blind = routed and not gold and ai is not None and rng.random() < 0.05
        status, resolution, final, decided_at = "auto_accepted", "auto_accepted", ai, received
        breached = False
        decisions: list[tuple[Any, ...]] = []
        sla_deadline = received + dt.timedelta(seconds=point["sla"]) if routed else None
        if routed:
            wait = rng.lognormvariate(math.log(240), 1.2)
            if wait > age_s:
                status = "queued" if rng.random() < 0.8 else "escalated"
                resolution, final, decided_at = None, None, None
                breached = age_s > point["sla"]
            else:
                breached = wait > point["sla"]
                decided_at = received + dt.timedelta(seconds=wait)
                status, resolution = "decided", "reviewed"
                chosen = rng.sample(reviewers, point["required"])
                verdicts = []
                for reviewer in chosen:
                    right = rng.random() < (0.93 if blind else 0.9)
                    label = truth if right else rng.choice([x for x in labels if x != truth] or labels)
                    verdicts.append(label)
                    outcome = "approve" if label == ai else "override"
                    decisions.append((case_id, reviewer, 1, outcome, label, "" if outcome == "approve" else "checked",
                                      not blind and ai is not None, False,
                                      int(rng.lognormvariate(math.log(25000), 0.7)), decided_at, "{}", "",
                                      point["system"], ai))
                final = verdicts[0]
                if len(set(verdicts)) > 1:
                    final = truth if rng.random() < 0.9 else verdicts[0]
                    adjudicator = rng.choice([a for a in adjudicators if a not in chosen] or adjudicators)
                    decisions.append((case_id, adjudicator, 1, "approve" if final == ai else "override", final,
                                      "adjudicated", True, True, int(rng.lognormvariate(math.log(60000), 0.5)),
                                      decided_at, "{}", "", point["system"], ai))
                    resolution = "adjudicated"
        known = status in ("decided", "auto_accepted") and age_s > 7 * 86400 and rng.random() < 0.6
        row = (
            case_id, f"b-{case_id}", json.dumps({"amount": rng.randrange(100, 80000)}), f"{case_id:064x}", ai,
            confidence if ai is not None else None, "v3" if ai is not None else "", subject, "", status, routed,
            json.dumps(["labeling"] if labeling else ["confidence_below"] if routed else []), 1, point["required"],
            gold, truth if gold else None, blind, 1, received, sla_deadline, breached, resolution, final, decided_at,
            truth if known else None, (decided_at or received) + dt.timedelta(days=7) if known else None,
            point["system"], point["id"],
        )
        yield row, decisions


def load(dsn: str, fixture: dict[str, Any], *, cases: int, days: int, now: dt.datetime, seed: int,
         first_id: int = 1, only_today: bool = False, batch: int = 200_000, creation_history: bool = False,
         progress: Any = None, part: tuple[int, int] = (0, 1)) -> dict[str, int]:
    """COPY the cases and their decisions in batches of ``batch`` cases; returns how many rows went in.

    Each batch is one transaction: the cases, then their decisions (the decision's foreign key is
    checked at commit), then with ``creation_history`` the history row ingestion writes for each new
    case (``+``, dated when the case was received), copied server-side. Only one batch of decisions is
    held in memory, so memory stays flat whatever ``cases`` is.
    """
    import psycopg

    counts = {"cases": 0, "decisions": 0, "history": 0}
    rows = generate(fixture, cases=cases, days=days, now=now, seed=seed, first_id=first_id, only_today=only_today,
                    part=part)
    history_sql = None
    with psycopg.connect(dsn) as conn:
        if creation_history:
            columns = history_columns(conn)
            history_sql = (f"INSERT INTO reviews_historicalcase ({columns}, history_date, history_change_reason, "
                           f"history_type) SELECT {columns}, received_at, '', '+' FROM reviews_case "
                           "WHERE id >= %s AND id <= %s")
        done = False
        while not done:
            decisions: list[tuple[Any, ...]] = []
            first = last = None
            with conn.cursor() as cur:
                with cur.copy(f"COPY reviews_case ({', '.join(CASE_COLUMNS)}) FROM STDIN") as copy:
                    taken = 0
                    for row, its_decisions in rows:
                        copy.write_row(row)
                        decisions.extend(its_decisions)
                        first = row[0] if first is None else first
                        last = row[0]
                        taken += 1
                        if taken == batch:
                            break
                    else:
                        done = True
                with cur.copy(f"COPY reviews_decision ({', '.join(DECISION_COLUMNS)}) FROM STDIN") as copy:
                    for decision in decisions:
                        copy.write_row(decision)
                if history_sql is not None and first is not None:
                    counts["history"] += cur.execute(history_sql, [first, last]).rowcount
            conn.commit()
            counts["cases"] += taken
            counts["decisions"] += len(decisions)
            if progress is not None and taken:
                progress(counts)
        # Never move a sequence back: with parts loading side by side, the part that ends first sees
        # only the rows committed so far, while the other still draws decision ids from the sequence
        # (setting it to that max made the other part's next decisions collide, at 10 M cases).
        for table in ("reviews_case", "reviews_decision"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST("
                         f"(SELECT max(id) FROM {table}), "
                         f"COALESCE(pg_sequence_last_value(pg_get_serial_sequence('{table}', 'id')::regclass), 1)))")
        conn.commit()
    return counts


def history_columns(conn: Any) -> str:
    """The columns reviews_historicalcase shares with reviews_case (all but ``history_*``), comma-separated."""
    return ", ".join(r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'reviews_historicalcase' "
        "AND column_name NOT LIKE 'history_%%' ORDER BY ordinal_position").fetchall())


def history_rows_for(dsn: str, where: str, params: list[Any], *, at: dt.datetime) -> int:
    """Write one history row per matching case, as the services do on every save (dated ``at``)."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        cols = history_columns(conn)
        result = conn.execute(
            f"INSERT INTO reviews_historicalcase ({cols}, history_date, history_change_reason, history_type) "
            f"SELECT {cols}, %s, '', '~' FROM reviews_case WHERE {where}", [at, *params])
        conn.commit()
        return result.rowcount


# --- Measurements ---------------------------------------------------------------------------------------


def timed(fn: Any, repeat: int) -> dict[str, Any]:
    for _ in range(2):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 1),
            "p90_ms": round(samples[min(len(samples) - 1, math.ceil(0.9 * len(samples)) - 1)], 1),
            "max_ms": round(samples[-1], 1), "n": repeat}


BASELINE_SQL = """
SELECT count(*),
       count(*) FILTER (WHERE NOT routed),
       count(*) FILTER (WHERE routed AND status = 'decided'),
       count(*) FILTER (WHERE routed AND status = 'decided' AND prediction_label IS NOT NULL
                        AND final_label IS DISTINCT FROM prediction_label),
       count(*) FILTER (WHERE status IN ('decided', 'auto_accepted') AND true_label IS NOT NULL
                        AND prediction_label IS NOT NULL),
       count(*) FILTER (WHERE status IN ('decided', 'auto_accepted') AND true_label IS NOT NULL
                        AND prediction_label = true_label),
       count(*) FILTER (WHERE status IN ('decided', 'auto_accepted') AND true_label IS NOT NULL
                        AND prediction_label IS NOT NULL AND final_label = true_label),
       count(*) FILTER (WHERE sla_breached),
       percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY decided_at - received_at)
           FILTER (WHERE routed AND status = 'decided')
FROM reviews_case
WHERE received_at >= %s AND received_at < %s AND NOT is_gold
"""


def measure(args: argparse.Namespace, dsn: str, fixture: dict[str, Any]) -> dict[str, Any]:
    from unittest import mock

    import psycopg
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from knox.models import AuthToken

    import dashboard.selectors as kpi_module
    from dashboard.aggregation import utc_day
    from dashboard.selectors import KpiScope, kpis
    from hitl_portal.days import day_start

    manager = User.objects.get(pk=fixture["manager"])
    token = AuthToken.objects.create(user=manager, expiry=None)[1]
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    page = Client()
    page.force_login(manager)
    now = dt.datetime.now(dt.UTC)
    today = utc_day(now)
    start, end = day_start(today - dt.timedelta(days=89)), day_start(today + dt.timedelta(days=1))
    aligned = {"from": start.isoformat(), "to": end.isoformat()}
    partial = {"from": (start + dt.timedelta(hours=9, minutes=30)).isoformat(),
               "to": (now - dt.timedelta(hours=2)).isoformat()}
    results: dict[str, Any] = {}

    def request(client: Client, path: str, params: dict[str, str]) -> Any:
        def call() -> None:
            response = client.get(path, params)
            assert response.status_code == 200, (path, response.status_code, response.content[:300])
        return call

    cases = [
        ("kpi_api_90d_all", api, "/api/v1/kpis/", aligned),
        ("kpi_api_90d_system", api, "/api/v1/kpis/", {**aligned, "system": "fraud"}),
        ("kpi_api_90d_partial_days", api, "/api/v1/kpis/", partial),
        ("kpi_api_default", api, "/api/v1/kpis/", {}),
        ("series_api_90d_all", api, "/api/v1/kpis/series/", aligned),
        ("dashboard_90d_all", page, "/dashboard/", {"period": "90"}),
        ("dashboard_90d_system", page, "/dashboard/", {"period": "90", "system": "credit"}),
    ]
    results["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    for name, client, path, params in cases:
        results[name] = timed(request(client, path, params), args.repeat)
        with CaptureQueriesContext(connection) as queries:
            request(client, path, params)()
        results[name]["queries"] = len(queries)
        print(f"  {name}: p50 {results[name]['p50_ms']} ms, {results[name]['queries']} queries", file=sys.stderr)

    scope = KpiScope(start=start, end=end)
    with mock.patch.object(kpi_module, "rollup_state", return_value=None):
        results["kpi_90d_without_rollup"] = timed(lambda: kpis(scope), max(2, args.repeat // 5))
    print(f"  without rollup: p50 {results['kpi_90d_without_rollup']['p50_ms']} ms", file=sys.stderr)

    with psycopg.connect(dsn) as conn:
        def baseline() -> None:
            conn.execute(BASELINE_SQL, [start, end]).fetchone()
        results["raw_sql_baseline_90d"] = timed(baseline, args.repeat)
        plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + BASELINE_SQL, [start, end]).fetchall()
        results["raw_sql_baseline_plan"] = [r[0] for r in plan]
    print(f"  raw SQL baseline: p50 {results['raw_sql_baseline_90d']['p50_ms']} ms", file=sys.stderr)
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    base = results["raw_sql_baseline_90d"]["p50_ms"]
    for name in [n for n, *_ in cases] + ["kpi_90d_without_rollup"]:
        results[name]["ratio_to_raw_sql"] = round(results[name]["p50_ms"] / base, 2) if base else None
    return results


def markdown(info: dict[str, Any], load_info: dict[str, Any], rollup: dict[str, Any],
             results: dict[str, Any]) -> str:
    lines = [
        f"Machine: {info['cores']} cores ({info['cpu']}), {info['memory_gb']} GB RAM, PostgreSQL "
        f"{info['postgresql']} (shared_buffers {info['postgresql_settings']['shared_buffers']}, work_mem "
        f"{info['postgresql_settings']['work_mem']}), Python {info['python']}.",
        f"Data: {load_info['cases']:,} cases over {load_info['days']} days ({load_info['cases_90d']:,} in the last "
        f"90 days), {load_info['decisions']:,} decisions; loaded in {load_info['load_s']} s.",
        f"Rollup: full build {rollup['full_s']} s ({rollup['full_days']} days, {rollup['rows']:,} rows); "
        f"incremental refresh after 10,000 new cases today {rollup['after_new_cases_ms']} ms "
        f"({rollup['after_new_cases_days']} days); after late ground truth on 5,000 cases of the last 30 days "
        f"{rollup['after_ground_truth_ms']} ms ({rollup['after_ground_truth_days']} days).",
        f"Load average (1, 5, 15 min) before/after the measurements: {results['load_average_before']} / "
        f"{results['load_average_after']} (other work on the machine inflates every figure alike).",
        "",
        "| request (server time, in-process) | p50 ms | p90 ms | queries | × raw SQL | target < 500 ms |",
        "|---|---:|---:|---:|---:|---|",
    ]
    labels = {
        "kpi_api_90d_all": "`GET /api/v1/kpis/`, 90 whole days, all systems",
        "kpi_api_90d_system": "`GET /api/v1/kpis/?system=fraud`, 90 whole days",
        "kpi_api_90d_partial_days": "`GET /api/v1/kpis/`, 90 days from 09:30 to 2 h ago (both edge days live)",
        "kpi_api_default": "`GET /api/v1/kpis/` without parameters (30 days until now: first day live)",
        "series_api_90d_all": "`GET /api/v1/kpis/series/`, 90 days",
        "dashboard_90d_all": "`GET /dashboard/?period=90` (cards, 7 charts, reviewer table)",
        "dashboard_90d_system": "`GET /dashboard/?period=90&system=credit`",
        "kpi_90d_without_rollup": "KPIs for 90 days without the rollup (from the cases; not served)",
        "raw_sql_baseline_90d": "raw SQL baseline: one aggregate `SELECT` over the 90 days",
    }
    for name, label in labels.items():
        r = results[name]
        target = "" if name in ("kpi_90d_without_rollup", "raw_sql_baseline_90d") else (
            "met" if r["p90_ms"] < TARGET_MS else "MISSED")
        lines.append(f"| {label} | {r['p50_ms']} | {r['p90_ms']} | {r.get('queries', '')} | "
                     f"{r.get('ratio_to_raw_sql', 1.0) if name != 'raw_sql_baseline_90d' else 1.0} | {target} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--db-user", default=os.environ.get("HITL_BENCH_DB_USER", "root"))
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", default="5432")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    db_name = f"hitl_bench_kpi_{os.getpid()}"
    dsn = f"postgres://{args.db_user}@{args.pg_host}:{args.pg_port}/{db_name}"
    var_dir = Path(f"/tmp/{db_name}-var")
    # HITL_TESTING: plain static-file storage (no collectstatic for a throwaway database);
    # nothing else on the measured path depends on it.
    env = dict(os.environ, DATABASE_URL=dsn, HITL_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="hitl_portal.settings",
               HITL_TESTING="1")
    sh(["createdb", "-h", args.pg_host, "-p", args.pg_port, "-U", "postgres", "-O", args.db_user, db_name])
    try:
        t = time.monotonic()
        sh([sys.executable, "manage.py", "migrate", "--skip-checks", "-v", "0"], env=env, timeout=300)
        print(f"setup: {db_name} migrated in {time.monotonic() - t:.1f} s", file=sys.stderr)
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "HITL_VAR_DIR", "DJANGO_SETTINGS_MODULE",
                                                "HITL_TESTING")})
        sys.path.insert(0, str(BASE_DIR))
        import django

        django.setup()
        import psycopg
        from django.utils import timezone

        from dashboard.models import DailyRollup, ReviewerDailyRollup
        from dashboard.services import OVERLAP, rollup_refresh

        fixture = setup_fixture()
        now = timezone.now()
        t = time.monotonic()
        counts = load(dsn, fixture, cases=args.cases, days=args.days, now=now, seed=args.seed)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE reviews_case")
            conn.execute("VACUUM ANALYZE reviews_decision")
            cases_90d = conn.execute("SELECT count(*) FROM reviews_case WHERE received_at >= %s",
                                     [now - dt.timedelta(days=90)]).fetchone()[0]
        load_info = {**counts, "days": args.days, "cases_90d": cases_90d, "load_s": round(time.monotonic() - t, 1)}
        print(f"load: {counts['cases']:,} cases, {counts['decisions']:,} decisions in {load_info['load_s']} s",
              file=sys.stderr)

        # The rollup: a full build, then incremental refreshes (run "later", past the look-back overlap).
        t = time.monotonic()
        full = rollup_refresh(full=True)
        rollup = {"full_s": round(time.monotonic() - t, 1), "full_days": full.days,
                  "rows": DailyRollup.objects.count() + ReviewerDailyRollup.objects.count()}
        print(f"rollup: full build {rollup['full_s']} s", file=sys.stderr)
        # The refreshes below run on a simulated clock, one look-back overlap apart (as if
        # the writes happened between beat runs), so each sees only the writes made since.
        later = timezone.now() + OVERLAP + dt.timedelta(minutes=1)
        first_new = args.cases + 1
        load(dsn, fixture, cases=10_000, days=1, now=now, seed=args.seed + 1, first_id=first_new, only_today=True)
        history_rows_for(dsn, "id >= %s", [first_new], at=later - dt.timedelta(seconds=30))
        refreshed = rollup_refresh(now=later)
        rollup.update(after_new_cases_ms=refreshed.duration_ms, after_new_cases_days=refreshed.days)
        with psycopg.connect(dsn) as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM reviews_case WHERE received_at >= %s AND received_at < %s AND true_label IS NULL "
                "AND status IN ('decided', 'auto_accepted') ORDER BY md5(id::text) LIMIT 5000",
                [now - dt.timedelta(days=30), now - dt.timedelta(days=1)]).fetchall()]
            conn.execute("UPDATE reviews_case SET true_label = coalesce(final_label, prediction_label), "
                         "true_label_at = now() WHERE id = ANY(%s)", [ids])
            conn.commit()
        latest = later + OVERLAP + dt.timedelta(minutes=1)
        history_rows_for(dsn, "id = ANY(%s)", [ids], at=latest - dt.timedelta(seconds=30))
        refreshed = rollup_refresh(now=latest)
        rollup.update(after_ground_truth_ms=refreshed.duration_ms, after_ground_truth_days=refreshed.days)
        print(f"rollup: incremental {rollup['after_new_cases_ms']} ms / {rollup['after_ground_truth_ms']} ms",
              file=sys.stderr)

        results = measure(args, dsn, fixture)
        info = machine_info(dsn)
        table = markdown(info, load_info, rollup, results)
        print(table)
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = OUT_DIR / f"kpis-{stamp}.json"
        out.write_text(json.dumps({"machine": info, "load": load_info, "rollup": rollup, "results": results,
                                   "command": " ".join([Path(sys.executable).name, *sys.argv])}, indent=2,
                                  default=str))
        print(f"wrote {out.relative_to(BASE_DIR)}", file=sys.stderr)
        missed = [n for n in ("kpi_api_90d_all", "kpi_api_90d_system", "dashboard_90d_all", "dashboard_90d_system")
                  if results[n]["p90_ms"] >= TARGET_MS]
        return 1 if args.strict and missed else 0
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass  # Django may not be set up yet: nothing to close then
        if not args.keep_db:
            sh(["dropdb", "-h", args.pg_host, "-p", args.pg_port, "-U", "postgres", "--force", "--if-exists",
                db_name])
        else:
            print(f"kept database {db_name}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
