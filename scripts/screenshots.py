#!/usr/bin/env python3
"""Refresh the documentation screenshots (``docs/img/``) from the real pages.

    .venv/bin/python scripts/screenshots.py            # on SQLite, in a throw-away var dir
    DATABASE_URL=postgres://... .venv/bin/python scripts/screenshots.py

It runs the reviewer-workbench browser test (``tests/browser/test_workbench.py``)
with ``HITL_WRITE_DOCS_SCREENSHOTS=1``: the test drives Debian's Chromium through
the real login, queue and case pages, and writes ``docs/img/workbench.png`` (the
case page) besides its usual ``test-artifacts/`` screenshots. So the picture in
the docs always shows what the tested page really looks like. CI does not set the
variable, so CI never rewrites files under ``docs/``.

Needs the dev dependencies (pytest, playwright) and ``/usr/bin/chromium``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/browser/test_workbench.py::test_reviewer_claims_and_overrides_a_case"]
OUTPUTS = [ROOT / "docs" / "img" / "workbench.png"]


def main() -> int:
    if not Path("/usr/bin/chromium").exists():
        print("needs Chromium at /usr/bin/chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    env = dict(os.environ, HITL_WRITE_DOCS_SCREENSHOTS="1")
    with tempfile.TemporaryDirectory(prefix="hitl-screenshots-") as var_dir:
        # A private var dir: the SQLite test database never touches the developer's var/.
        env.setdefault("HITL_VAR_DIR", var_dir)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", *TESTS, "-q", "-p", "no:randomly"],
            cwd=ROOT, env=env, check=False,
        )
    if result.returncode != 0:
        print("the screenshot test failed: docs/img/ may be stale", file=sys.stderr)
        return result.returncode
    for path in OUTPUTS:
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
