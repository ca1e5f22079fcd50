"""Audit-chain benchmark: verify and export a chain of 1,000,000 events (not a test).

Run from the repository root::

    .venv/bin/python bench/audit_chain.py                  # 1,000,000 events (about 5 minutes)
    .venv/bin/python bench/audit_chain.py --events 100000  # smaller run
    .venv/bin/python bench/audit_chain.py --keep-db        # keep the database to look at afterwards

What it does:

1. Creates a throwaway PostgreSQL database ``hitl_bench_audit_<pid>`` (connecting
   with ``--admin-url``, by default ``postgres://root@127.0.0.1:5432/postgres``)
   and migrates it (``manage.py migrate``, as production would).
2. Generates the chain in one pass: realistic events (case ingest, routing,
   decisions, system changes; payloads of 100-300 bytes with non-ASCII text),
   hashed and linked exactly as the sealer does (``audit.canonical.event_hash``),
   streamed into ``audit_auditevent`` with ``COPY`` (the append-only trigger guards
   UPDATE and DELETE, not INSERT); a signed checkpoint every 100,000 events; then
   ``VACUUM ANALYZE``. This stands in for months of sealing.
3. Times, each in a fresh process (so figures do not mix):

   * ``verify``: ``audit.selectors.verify_chain()`` over the whole chain, with the
     checkpoints (target: under 20 s for 1,000,000 events);
   * ``export``: ``audit.export.export_to_file`` of the first 100,000 events, then
     of all of them: time, file size and the process's peak resident memory
     (``VmHWM`` from ``/proc/self/status``): the export streams from a server-side
     cursor, so the peak must stay flat from 100 k to 1 M events;
   * ``offline``: ``tools/verify_audit_export.py FILE --key KEY`` under the system
     ``python3 -I`` (no Django), on the full export: time and peak memory
     (``ru_maxrss`` of that child, from ``os.wait4``).

4. Prints a Markdown table (paste it into ``docs/PERFORMANCE.md``, section "Audit
   chain") and writes ``bench/out/audit-chain-<timestamp>.json``; drops the
   database unless ``--keep-db``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
OUT_DIR = BASE_DIR / "bench" / "out"
sys.path.insert(0, str(BASE_DIR))
CHECKPOINT_EVERY = 100_000
SMALL_EXPORT = 100_000


def vm_status(name: str) -> int:
    """A ``/proc/self/status`` figure in KiB (``VmHWM``: peak resident set; ``VmRSS``: now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitl_portal.settings")
    import django

    django.setup()
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    if not settings.IS_POSTGRES or not str(name).startswith("hitl_bench_audit_"):
        raise SystemExit("bench/audit_chain.py children only run against a hitl_bench_audit_* PostgreSQL database")


# --- Child: generate ----------------------------------------------------------------------

ACTIONS = (
    ("case.created", 0.34), ("case.routed", 0.17), ("case.auto_accepted", 0.17), ("case.claimed", 0.1),
    ("decision.recorded", 0.1), ("case.decided", 0.1), ("system.updated", 0.02),
)


def _event_rows(count: int, seed: int = 7, *, start: dt.datetime | None = None, step_us: int = 2503,
                events_per_case: int = 6) -> Any:
    """Yield ``(row, seq, hash)`` for ``count`` chained events, as the sealer would have made them.

    Events are ``step_us`` microseconds apart from ``start``; about ``events_per_case`` events
    name each case (``bench/scale.py`` spreads 30 M events over its year of 10 M cases).
    """
    from audit.canonical import GENESIS_HASH, envelope_text, sha256_hex

    # The payload is built already normalized (the confidence as its repr, as ``normalize`` spells a
    # float), so plain ``json.dumps`` with the canonical options gives ``canonical_json``'s text; the
    # envelope goes through ``envelope_text``, which a test holds byte-equal to ``event_hash``'s input.
    # Both skip the generic normalizer: this is what lets the generator write tens of millions of events.
    dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    rng = random.Random(seed)
    names, weights = zip(*ACTIONS, strict=True)
    cumulative = list(itertools.accumulate(weights))
    start = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    prev = GENESIS_HASH
    reviewers = [f"reviewer-{n:02d}" for n in range(40)]
    system_payload = dumps({"before": {"labels": ["approve", "reject"]},
                            "after": {"labels": ["approve", "reject", "refer"]}})
    for seq in range(1, count + 1):
        action = rng.choices(names, cum_weights=cumulative)[0]
        case_id = 1 + seq // events_per_case
        at = start + dt.timedelta(microseconds=seq * step_us + rng.randrange(1000))
        if action.startswith("system"):
            payload = system_payload
            actor_type, actor_name, object_type, object_id, case = "user", "officer-ana", "aisystem", "1", None
        else:
            payload = dumps({"data": {
                "external_id": f"app-{case_id}",
                "input_hash": sha256_hex(str(case_id)),
                "label": rng.choice(["approve", "reject"]),
                "confidence": repr(round(rng.random(), 4)),
                "model_version": "v3.1",
                "reasons": ["confidence_below"] if action == "case.routed" else [],
                "note": "Prüfung der Unterlagen / 審査",
            }})
            if action == "decision.recorded":
                actor_type, actor_name = "user", rng.choice(reviewers)
            else:
                actor_type, actor_name = "integration", "bank-backend"
            object_type, object_id, case = "case", str(case_id), case_id
        actor_id = 7
        object_label = f"1:app-{case_id}" if case else "Credit scoring"
        request_id = f"{seq:032x}"
        reason = "" if action != "system.updated" else "Added a referral label."
        payload_sha256 = sha256_hex(payload)
        digest = sha256_hex(envelope_text(seq, at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), actor_type, actor_id, actor_name,
                                          action, object_type, object_id, object_label, 1, case, request_id, reason,
                                          payload_sha256, prev))
        yield (
            seq, at, actor_type, actor_id, actor_name, action, object_type, object_id, object_label, 1, case,
            request_id, reason, payload, payload_sha256, prev, digest, at,
        ), seq, digest
        prev = digest


def child_generate(count: int) -> dict[str, Any]:
    setup_django()
    from django.db import connection

    from audit.models import Checkpoint
    from audit.signing import checkpoint_statement, public_key, sign

    started = time.monotonic()
    key = public_key()
    columns = ("seq, at, actor_type, actor_id, actor_name, action, object_type, object_id, object_label, "
               "system_id, case_id, request_id, reason, payload, payload_sha256, prev_hash, hash, sealed_at")
    checkpoints: list[tuple[int, str]] = []
    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor, cursor.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
        for row, seq, digest in _event_rows(count):
            copy.write_row(row)
            if seq % CHECKPOINT_EVERY == 0 or seq == count:
                checkpoints.append((seq, digest))
    raw.commit()
    for seq, digest in checkpoints:
        signed_at = dt.datetime.now(dt.UTC)
        Checkpoint.objects.create(
            seq=seq, hash=digest, signed_at=signed_at,
            signature=sign(checkpoint_statement(seq=seq, hash=digest, signed_at=signed_at)),
            key_fingerprint=key.fingerprint, public_key=key.hex,
        )
    generated = time.monotonic() - started
    connection.close()
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"],
                         autocommit=True) as admin:
        admin.execute("VACUUM ANALYZE audit_auditevent")
        size = admin.execute("SELECT pg_total_relation_size('audit_auditevent')").fetchone()[0]
    return {"events": count, "checkpoints": len(checkpoints), "seconds": round(generated, 1),
            "table_bytes": size, "public_key_pem": key.pem}


# --- Child: verify ------------------------------------------------------------------------


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def backend_cpu_seconds() -> float | None:
    """CPU used so far by this connection's PostgreSQL backend (same host only: /proc)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_verify() -> dict[str, Any]:
    setup_django()
    from audit.selectors import verify_chain

    backend_before = backend_cpu_seconds()
    cpu_before = cpu_seconds()
    started = time.monotonic()
    result = verify_chain()
    seconds = time.monotonic() - started
    backend_after = backend_cpu_seconds()
    return {"ok": result.ok, "events": result.events, "checkpoints": result.checkpoints,
            "problem": result.problem, "seconds": round(seconds, 2),
            "events_per_s": round(result.events / seconds) if seconds else None, "peak_rss_kib": vm_status("VmHWM"),
            "cpu_s": round(cpu_seconds() - cpu_before, 2),
            "db_cpu_s": None if backend_before is None or backend_after is None
            else round(backend_after - backend_before, 2)}


# --- Child: export ------------------------------------------------------------------------


def child_export(last_seq: int, path: str) -> dict[str, Any]:
    setup_django()
    from audit.export import export_to_file
    from audit.selectors import export_range

    rss_before = vm_status("VmRSS")
    backend_before = backend_cpu_seconds()
    cpu_before = cpu_seconds()
    started = time.monotonic()
    rng = export_range(from_seq=1, to_seq=last_seq)
    sha256, size = export_to_file(actor=None, rng=rng, path=Path(path))
    seconds = time.monotonic() - started
    backend_after = backend_cpu_seconds()
    return {"events": rng.count, "seconds": round(seconds, 2), "bytes": size, "sha256": sha256,
            "cpu_s": round(cpu_seconds() - cpu_before, 2),
            "db_cpu_s": None if backend_before is None or backend_after is None
            else round(backend_after - backend_before, 2),
            "events_per_s": round(rng.count / seconds) if seconds else None,
            "rss_before_kib": rss_before, "peak_rss_kib": vm_status("VmHWM")}


# --- Parent -------------------------------------------------------------------------------


def run_child(env: dict[str, str], *args: str) -> dict[str, Any]:
    load = os.getloadavg()[0]
    out = subprocess.run([sys.executable, __file__, "--child", *args], env=env, cwd=BASE_DIR,
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{out.stdout}\n{out.stderr}")
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load_before": round(load, 1)}


def wait_quiet(limit_s: float, threshold: float = 1.5) -> float:
    """Wait (at most ``limit_s``) for the 1-minute load average to drop below ``threshold``."""
    deadline = time.monotonic() + limit_s
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def run_offline(export: Path, key_path: Path) -> dict[str, Any]:
    """The stdlib verifier in the system interpreter; its own peak RSS from ``wait4``."""
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"
    load = os.getloadavg()[0]
    started = time.monotonic()
    proc = subprocess.Popen([python, "-I", str(BASE_DIR / "tools" / "verify_audit_export.py"), str(export),
                             "--key", str(key_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    return {"exit_code": proc.returncode, "output": stdout.strip(), "seconds": round(seconds, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "peak_rss_kib": usage.ru_maxrss, "python": python,
            "load_before": round(load, 1)}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return (f"{os.cpu_count()} vCPU ({cpu}), {mem_kib / 1048576:.0f} GiB RAM, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.1f} at start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--admin-url", default="postgres://root@127.0.0.1:5432/postgres",
                        help="A PostgreSQL role that may create databases (the benchmark's owner too).")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="Before each timed step, wait up to this long for the load average to drop below 1.5.")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        result = {"generate": lambda: child_generate(int(rest[0])), "verify": child_verify,
                  "export": lambda: child_export(int(rest[0]), rest[1])}[kind]()
        print(json.dumps(result))
        return

    import psycopg
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    # A TERM (or an INT, which background jobs ignore) still drops the database and the files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    db_name = f"hitl_bench_audit_{os.getpid()}"
    admin_url = args.admin_url
    db_url = admin_url.rsplit("/", 1)[0] + f"/{db_name}"
    work = Path(tempfile.mkdtemp(prefix="hitl-bench-audit-"))
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    env = {**{k: v for k, v in os.environ.items() if k not in ("DJANGO_ENV", "HITL_TESTING")},
           "DATABASE_URL": db_url, "HITL_VAR_DIR": str(work / "var"), "MEDIA_ROOT": str(work / "media"),
           "HITL_AUDIT_SIGNING_KEY": pem, "HITL_AUDIT_SEAL_ON_COMMIT": "false"}
    report: dict[str, Any] = {"events": args.events, "machine": machine(),
                              "command": " ".join([".venv/bin/python", "bench/audit_chain.py", *sys.argv[1:]]),
                              "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db_name}"')
    try:
        t = time.monotonic()
        subprocess.run([sys.executable, "manage.py", "migrate", "--skip-checks", "-v", "0"], env=env, cwd=BASE_DIR,
                       check=True, timeout=600)
        print(f"migrated {db_name} in {time.monotonic() - t:.1f} s", file=sys.stderr)
        generated = run_child(env, "generate", str(args.events))
        key_path = work / "public.pem"
        key_path.write_text(generated.pop("public_key_pem"))
        report["generate"] = generated
        print(f"generated {generated['events']} events in {generated['seconds']} s", file=sys.stderr)
        wait_quiet(args.wait_quiet)
        report["verify"] = run_child(env, "verify")
        print(f"verify: {report['verify']}", file=sys.stderr)
        small = min(SMALL_EXPORT, args.events)
        wait_quiet(args.wait_quiet)
        report["export_small"] = run_child(env, "export", str(small), str(work / "small.jsonl"))
        print(f"export {small}: {report['export_small']}", file=sys.stderr)
        full_path = work / "full.jsonl"
        wait_quiet(args.wait_quiet)
        report["export_full"] = run_child(env, "export", str(args.events), str(full_path))
        print(f"export {args.events}: {report['export_full']}", file=sys.stderr)
        wait_quiet(args.wait_quiet)
        report["offline"] = run_offline(full_path, key_path)
        print(f"offline: {report['offline']}", file=sys.stderr)
    finally:
        if not args.keep_db:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out_file = OUT_DIR / f"audit-chain-{dt.datetime.now():%Y%m%dT%H%M%S}.json"
    out_file.write_text(json.dumps(report, indent=2))
    print(markdown(report))
    print(f"\n(raw figures: {out_file.relative_to(BASE_DIR)})")


def markdown(r: dict[str, Any]) -> str:
    """The figures as the Markdown table of docs/PERFORMANCE.md."""

    def mib(kib: int) -> str:
        return f"{kib / 1024:.0f} MiB"

    def cpu(step: dict[str, Any]) -> str:
        db = f" + {step['db_cpu_s']} s DB" if step.get("db_cpu_s") is not None else ""
        return f"{step['cpu_s']} s{db}"

    g, v, s, f, o = r["generate"], r["verify"], r["export_small"], r["export_full"], r["offline"]
    rows = [
        (f"verify (`verify_chain`, {v['checkpoints']} checkpoints)", v["events"], v, f"ok={v['ok']}; target < 20 s"),
        ("export (`export_to_file`)", s["events"], s,
         f"{s['bytes'] / 1048576:.0f} MiB file; RSS before {mib(s['rss_before_kib'])}"),
        ("export (`export_to_file`)", f["events"], f,
         f"{f['bytes'] / 1048576:.0f} MiB file; RSS before {mib(f['rss_before_kib'])}"),
        ("offline verifier (`python3 -I`, `--key`)", f["events"], o, f"exit {o['exit_code']}"),
    ]
    lines = [
        f"Machine: {r['machine']}. Command: `{r['command']}` ({r['started_at']}).",
        f"Chain: {g['events']:,} events, {g['checkpoints']} signed checkpoints, table and indexes "
        f"{g['table_bytes'] / 1048576:.0f} MiB, generated in {g['seconds']} s.",
        "",
        "| Step | Events | Wall time | Events/s | CPU (process + DB backend) | Peak RSS | Load before | Notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, events, step, note in rows:
        rate = round(events / step["seconds"]) if step["seconds"] else 0
        lines.append(f"| {name} | {events:,} | {step['seconds']} s | {rate:,} | {cpu(step)} | "
                     f"{mib(step['peak_rss_kib'])} | {step.get('load_before', '-')} | {note} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
