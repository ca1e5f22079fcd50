"""The SDK under clients/python is its own package: tests import it from its source tree."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SDK_SRC = Path(__file__).resolve().parents[2] / "clients" / "python" / "src"
if str(SDK_SRC) not in sys.path:
    sys.path.insert(0, str(SDK_SRC))


@pytest.fixture(autouse=True)
def _requirements_catalog(request: pytest.FixtureRequest) -> None:
    """Live-server tests flush the database: reload the catalog a migration loaded (obligations need it)."""
    if "transactional_db" not in request.fixturenames and "live_server" not in request.fixturenames:
        marker = request.node.get_closest_marker("django_db")
        if marker is None or not marker.kwargs.get("transaction"):
            return
    request.getfixturevalue("transactional_db")
    from compliance.catalog import load_catalog
    from compliance.models import CatalogVersion

    if not CatalogVersion.objects.filter(is_current=True).exists():
        load_catalog()
