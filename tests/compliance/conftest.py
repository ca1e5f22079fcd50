"""Fixtures of the compliance tests: the requirements catalog survives database flushes.

The catalog is loaded by a data migration; transactional and live-server tests
flush the database after themselves, so every compliance test that uses the
database makes sure the current catalog is there (loading is idempotent and
costs one query when it is). Tests without the database are left alone.
"""

from __future__ import annotations

from typing import Any

import pytest

from compliance.catalog import load_catalog


def ensure_catalog(request: pytest.FixtureRequest) -> Any:
    marker = request.node.get_closest_marker("django_db")
    uses_db = marker is not None or any(
        name in request.fixturenames for name in ("db", "transactional_db", "live_server")
    )
    if not uses_db:
        return None
    transactional = bool(marker and marker.kwargs.get("transaction")) or any(
        name in request.fixturenames for name in ("transactional_db", "live_server")
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    return load_catalog()


@pytest.fixture(autouse=True)
def catalog(request: pytest.FixtureRequest) -> Any:
    return ensure_catalog(request)
