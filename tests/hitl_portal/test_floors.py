"""The floors at run time: importing any module of an app pulls in no module of a higher floor.

import-linter checks the source (``lint-imports`` in CI, contracts in pyproject.toml);
this checks what Python actually loads. Each app is imported in a fresh interpreter
after ``django.setup()``, module by module, and every module that appeared is checked
against the floors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Bottom to top; apps on one floor must not know each other either.
FLOORS = [["hitl_portal"], ["audit"], ["reviews"], ["quality", "incidents"], ["fairness", "records", "dashboard"],
          ["compliance"]]
FLOOR_OF = {app: index for index, apps in enumerate(FLOORS) for app in apps}

PROBE = r"""
import importlib, json, os, pkgutil, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hitl_portal.settings")
import django
django.setup()
app = sys.argv[1]
# The composition root names every app's URL module by design (the one place that does).
COMPOSITION_ROOT = {"hitl_portal.urls", "hitl_portal.wsgi", "hitl_portal.asgi"}
before = set(sys.modules)
package = importlib.import_module(app)
pulled = {}
for info in pkgutil.walk_packages(package.__path__, prefix=app + "."):
    if ".migrations" in info.name or ".management.commands" in info.name or info.name in COMPOSITION_ROOT:
        continue
    seen = set(sys.modules)
    importlib.import_module(info.name)
    for name in set(sys.modules) - seen:
        pulled.setdefault(name, info.name)
print(json.dumps({name: by for name, by in pulled.items() if name not in before}))
"""


@pytest.mark.parametrize("app", list(FLOOR_OF))
def test_importing_an_app_pulls_in_no_higher_floor(app: str) -> None:
    result = subprocess.run([sys.executable, "-c", PROBE, app], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    pulled: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    mine = FLOOR_OF[app]
    wrong = {
        name: by for name, by in pulled.items()
        if name.split(".")[0] in FLOOR_OF and name.split(".")[0] != app
        and FLOOR_OF[name.split(".")[0]] >= mine
    }
    assert not wrong, f"{app} pulls in modules of its own or a higher floor: {wrong}"
