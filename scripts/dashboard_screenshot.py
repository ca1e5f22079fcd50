#!/usr/bin/env python3
"""Refresh ``docs/img/dashboard.png`` (the KPI dashboard) from the real page.

    .venv/bin/python scripts/dashboard_screenshot.py            # on SQLite, in a throw-away var dir
    DATABASE_URL=postgres://... .venv/bin/python scripts/dashboard_screenshot.py

It runs the dashboard browser test (``tests/browser/test_dashboard.py``) with
``HITL_WRITE_DOCS_SCREENSHOTS=1``: the test loads 90 days of demo cases, logs a
manager in through the real login form, checks the cards and the SVG charts,
and writes the 30-day, all-systems view to ``docs/img/dashboard.png`` besides
its usual ``test-artifacts/`` screenshots. CI does not set the variable, so CI
never rewrites files under ``docs/``.

Needs the dev dependencies (pytest, playwright) and ``/usr/bin/chromium``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/browser/test_dashboard.py::test_manager_reads_the_dashboard_switches_period_and_downloads_csv"
OUTPUT = ROOT / "docs" / "img" / "dashboard.png"


def main() -> int:
    if not Path("/usr/bin/chromium").exists():
        print("needs Chromium at /usr/bin/chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    env = dict(os.environ, HITL_WRITE_DOCS_SCREENSHOTS="1")
    with tempfile.TemporaryDirectory(prefix="hitl-dashboard-screenshot-") as var_dir:
        # A private var dir: the SQLite test database never touches the developer's var/.
        env.setdefault("HITL_VAR_DIR", var_dir)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:randomly"], cwd=ROOT, env=env, check=False
        )
    if result.returncode != 0:
        print("the dashboard browser test failed: docs/img/dashboard.png may be stale", file=sys.stderr)
        return result.returncode
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
