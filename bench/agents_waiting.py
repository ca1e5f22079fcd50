"""Benchmark (not a test): single-case ingest while N agents long-poll ``/cases/{id}/wait/``.

Issue 14's target: with 200 agents waiting at once, single-case ingest keeps at
least 80 % of its rate without waiters. Run it against a portal served by uvicorn
(``uvicorn hitl_portal.asgi:application``) with Redis (``REDIS_URL``), an
integration token and an action intervention point that always routes::

    .venv/bin/python bench/agents_waiting.py --portal http://127.0.0.1:8000 --token <integration token> \\
        --system <system> --classification-point <point> --action-point <action point> \\
        [--waiters 200] [--seconds 20] [--clients 4] [--settle 30] [--server-pid <uvicorn pid>]

Phases: (1) ingest alone for ``--seconds`` with ``--clients`` concurrent
submitters; (2) ``--waiters`` action cases submitted, one agent long-polling
each (``timeout=60``, re-polling when answered), ``--settle`` seconds for them
all to be parked, 5 s with only the parked waiters, then ingest again for
``--seconds``. With ``--server-pid`` (same machine) it also reports the server's
CPU per ingest request in both phases and per second while the waiters are
parked, from /proc: on a shared machine the rates move with other tenants' load,
the CPU per request much less. Prints both rates and their ratio as JSON. Loopback only: every
request goes to ``--portal``, the loops are bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx


async def _ingest(client: httpx.AsyncClient, args: argparse.Namespace, stop_at: float) -> int:
    done = 0
    while time.monotonic() < stop_at:
        body = {"system": args.system, "intervention_point": args.classification_point,
                "external_id": f"bench-{uuid.uuid4()}", "input": {"amount": 100},
                "prediction": {"label": args.label, "confidence": 0.99}}
        response = await client.post("/api/v1/cases/", json=body)
        response.raise_for_status()
        done += 1
    return done


def _server_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) of the server process and its children (uvicorn's workers), from /proc."""
    if pid is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


async def _ingest_rate(client: httpx.AsyncClient, args: argparse.Namespace) -> tuple[float, float | None]:
    """Requests/s, and the server's CPU milliseconds per request (with --server-pid)."""
    cpu = _server_cpu_s(args.server_pid)
    started = time.monotonic()
    counts = await asyncio.gather(*(_ingest(client, args, started + args.seconds) for _ in range(args.clients)))
    done = sum(counts)
    cpu_ms = (_server_cpu_s(args.server_pid) - cpu) * 1000 / done if args.server_pid and done else None
    return done / (time.monotonic() - started), cpu_ms


async def _waiter(client: httpx.AsyncClient, case_id: int, stop: asyncio.Event, polls: list[int]) -> None:
    while not stop.is_set():
        response = await client.get(f"/api/v1/cases/{case_id}/wait/", params={"timeout": 60}, timeout=75)
        response.raise_for_status()
        polls.append(1)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    headers = {"Authorization": f"Token {args.token}"}
    limits = httpx.Limits(max_connections=args.waiters + args.clients + 10)
    async with httpx.AsyncClient(base_url=args.portal, headers=headers, limits=limits, timeout=30) as client:
        await _ingest_rate(client, argparse.Namespace(**{**vars(args), "seconds": 2}))  # warm-up
        alone, cpu_alone = await _ingest_rate(client, args)
        case_ids = []
        for _ in range(args.waiters):
            response = await client.post("/api/v1/cases/", json={
                "system": args.system, "intervention_point": args.action_point,
                "external_id": f"bench-wait-{uuid.uuid4()}",
                "action": {"tool": "bench_tool", "arguments": {"n": 1}, "agent": "bench"}})
            response.raise_for_status()
            case_ids.append(response.json()["id"])
        stop = asyncio.Event()
        polls: list[int] = []
        waiters = [asyncio.create_task(_waiter(client, pk, stop, polls)) for pk in case_ids]
        # Every waiter parked on the server before measuring: their first requests are full
        # requests, and on a loaded machine 200 of them take seconds.
        await asyncio.sleep(args.settle)
        idle_cpu = _server_cpu_s(args.server_pid)
        await asyncio.sleep(5)  # nothing but the parked waiters: what they cost
        parked_cpu_ms_per_s = (_server_cpu_s(args.server_pid) - idle_cpu) * 1000 / 5 if args.server_pid else None
        with_waiters, cpu_with = await _ingest_rate(client, args)
        stop.set()
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    return {"waiters": args.waiters, "clients": args.clients, "seconds": args.seconds,
            "ingest_per_s_alone": round(alone, 1), "ingest_per_s_with_waiters": round(with_waiters, 1),
            "ratio": round(with_waiters / alone, 3) if alone else None, "wait_answers_during_run": len(polls),
            "server_cpu_ms_per_ingest_alone": _round(cpu_alone),
            "server_cpu_ms_per_ingest_with_waiters": _round(cpu_with),
            "server_cpu_ms_per_s_waiters_parked": _round(parked_cpu_ms_per_s)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--portal", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--system", required=True)
    parser.add_argument("--classification-point", required=True)
    parser.add_argument("--action-point", required=True)
    parser.add_argument("--label", default="approve", help="a label of the system")
    parser.add_argument("--waiters", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=30.0, help="seconds between starting the waiters and measuring")
    parser.add_argument("--server-pid", type=int, help="the uvicorn master's pid: report the server's CPU per request")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
