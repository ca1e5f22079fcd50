"""gunicorn configuration for ``bench/pipeline.py --profile``: dump profiles as workers exit."""

from __future__ import annotations

import sys
from typing import Any


def worker_exit(server: Any, worker: Any) -> None:
    module = sys.modules.get("profiled_wsgi")
    if module is not None:
        module.dump()
