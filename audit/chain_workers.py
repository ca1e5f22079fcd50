"""Worker processes of a parallel chain verification (``audit.selectors.verify_chain``).

Importable before Django is set up: a spawned worker unpickles ``init_worker`` from
here first, and only then sets Django up and imports the models.
"""

from __future__ import annotations

import gc
import os
from typing import Any

_SNAPSHOT_STATEMENT = "SET TRANSACTION SNAPSHOT '{}'"


def init_worker(settings_module: str, settings_dict: dict[str, Any]) -> None:
    """Set Django up in a fresh (spawned) process, on the parent's database.

    The connection settings come from the parent, not from the settings module: the
    parent may run on a database chosen at runtime (a test database, ``--db``).
    """
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django

    django.setup()
    from django.db import connection

    connection.settings_dict.update(settings_dict)


def walk_segment(snapshot: str, segment: dict[str, Any]) -> Any:
    """Walk one segment (``audit.selectors._walk_segment``) in the parent's snapshot."""
    from django.db import connection, transaction

    from audit.selectors import _SNAPSHOT_ID, _walk_segment

    if not _SNAPSHOT_ID.match(snapshot):
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Both must come before the transaction's first query.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute(_SNAPSHOT_STATEMENT.format(snapshot))
        # The walk makes no reference cycles, but its millions of short-lived row tuples
        # keep triggering the cyclic collector (about 5 % of the walk). This process does
        # nothing else meanwhile, so it is off for the walk and run once after it.
        gc.disable()
        try:
            return _walk_segment(**segment)
        finally:
            gc.enable()
            gc.collect()
