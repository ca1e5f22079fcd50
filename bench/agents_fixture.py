"""Set up the agent benchmarks' accounts and points through the portal's own services.

``bench/fixture.py`` (a system whose classification point auto-accepts confident
cases, an integration, reviewers, tokens) plus an ``action`` point whose tools
``bench_tool`` and ``send_payment`` always go to a human. Runs only against a
``hitl_bench_*`` PostgreSQL database (``DATABASE_URL``); prints one JSON line::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hitl_bench_agents .venv/bin/python bench/agents_fixture.py

Used by ``bench/agents_waiting.py`` and ``bench/approval_roundtrip.py`` (see their docstrings).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixture  # bench/ is not a package: imported from its folder

ACTION_POINT = "agent-tools"  # bench/agents_waiting.py's waiters
APPROVAL_POINT = "agent-approvals"  # bench/approval_roundtrip.py: its own queue, untouched by the waiters


def main(reviewers: int) -> dict[str, object]:
    out = fixture.main(reviewers)  # sets Django up and refuses any database but hitl_bench_*
    from django.contrib.auth.models import User

    from reviews.models import AISystem
    from reviews.services.systems import intervention_point_create

    admin = User.objects.get(username="bench-admin")
    system = AISystem.objects.get(slug=fixture.SYSTEM)
    for slug, name in ((ACTION_POINT, "Agent tools"), (APPROVAL_POINT, "Agent approvals")):
        intervention_point_create(
            actor=admin, system=system, slug=slug, name=name, stage="validation", kind="action",
            confidence_below=None, sla_seconds=3600, tool_rules={"always": ["bench_tool", "send_payment"]},
        )
    return {**out, "action_point": ACTION_POINT, "approval_point": APPROVAL_POINT}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)))
