"""A scripted agent whose payment tool needs a human's approval (Python SDK).

Run against a portal that has an action intervention point (the demo's, or your own):

    HITL_PORTAL_URL=http://127.0.0.1:8000 HITL_TOKEN=<integration token> \\
    HITL_SYSTEM=<system slug> HITL_ACTION_POINT=<action point slug> \\
    PYTHONPATH=clients/python/src python examples/sdk_payment_agent.py

It proposes two payments, waits for a reviewer on the workbench (/review/) for
each, and prints what happened: paid (maybe with the reviewer's amount) or denied
with the reviewer's reason. ``run`` is the same agent as a function, which the
tests drive against the live test server.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from hitl_portal_client import Client, Denied, require_approval


def run(portal: Client, *, system: str, intervention_point: str, say: Callable[[str], None] = print,
        timeout: float | None = None) -> list[str]:
    """Propose the agent's payments; return one line per call (paid or denied)."""
    ledger: list[str] = []

    @require_approval(portal, system=system, intervention_point=intervention_point, agent="billing-bot",
                      rationale="Invoices due this week.", timeout=timeout)
    def send_payment(amount: float, to: str, reference: str) -> str:
        # The real side effect would go here; it runs only with approved arguments.
        line = f"paid {amount} to {to} ({reference})"
        ledger.append(line)
        return line

    results = []
    for amount, to, reference in ((1200, "ACME Ltd", "invoice 42"), (25000, "Unknown Payee", "invoice 77")):
        say(f"agent: proposing send_payment({amount}, {to!r}) — waiting for a reviewer…")
        try:
            results.append(send_payment(amount, to, reference))
        except Denied as denied:
            results.append(f"denied: {denied.reason}")
        say(f"agent: {results[-1]}")
    return results


def main() -> int:
    missing = [name for name in ("HITL_PORTAL_URL", "HITL_TOKEN", "HITL_SYSTEM", "HITL_ACTION_POINT")
               if not os.environ.get(name)]
    if missing:
        print(f"set {', '.join(missing)} (see the docstring)", file=sys.stderr)
        return 2
    with Client(os.environ["HITL_PORTAL_URL"], os.environ["HITL_TOKEN"]) as portal:
        run(portal, system=os.environ["HITL_SYSTEM"], intervention_point=os.environ["HITL_ACTION_POINT"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
