"""Benchmark (not a test): single-case ingest while N agents long-poll ``/cases/{id}/wait/``.

Issue 14's target: with 200 agents waiting at once, single-case ingest keeps at
least 80 % of its rate without waiters. Run it against a portal served by uvicorn
(``uvicorn hitl_portal.asgi:application``) with Redis (``REDIS_URL``), an
integration token and an action intervention point that always routes::

    .venv/bin/python bench/agents_waiting.py --portal http://127.0.0.1:8000 --token <integration token> \\
        --system <system> --classification-point <point> --action-point <action point> \\
        [--waiters 200] [--seconds 20] [--clients 4] [--settle 10]

Phases: (1) ingest alone for ``--seconds`` with ``--clients`` concurrent
submitters; (2) ``--waiters`` action cases submitted, one agent long-polling
each (``timeout=60``, re-polling when answered), ``--settle`` seconds for them
all to be parked, then ingest again for ``--seconds``. Prints both rates and their ratio as JSON. Loopback only: every
request goes to ``--portal``, the loops are bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
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


async def _ingest_rate(client: httpx.AsyncClient, args: argparse.Namespace) -> float:
    started = time.monotonic()
    counts = await asyncio.gather(*(_ingest(client, args, started + args.seconds) for _ in range(args.clients)))
    return sum(counts) / (time.monotonic() - started)


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
        alone = await _ingest_rate(client, args)
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
        with_waiters = await _ingest_rate(client, args)
        stop.set()
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    return {"waiters": args.waiters, "clients": args.clients, "seconds": args.seconds,
            "ingest_per_s_alone": round(alone, 1), "ingest_per_s_with_waiters": round(with_waiters, 1),
            "ratio": round(with_waiters / alone, 3) if alone else None, "wait_answers_during_run": len(polls)}


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
    parser.add_argument("--settle", type=float, default=10.0, help="seconds between starting the waiters and measuring")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
