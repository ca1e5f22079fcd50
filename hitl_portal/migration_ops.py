"""Migration operations shared by the apps."""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db.migrations.operations import AddIndex, RemoveIndex


class AddIndexOnline(AddIndexConcurrently):
    """``AddIndex`` that builds the index ``CONCURRENTLY`` on PostgreSQL, plainly elsewhere.

    A plain ``CREATE INDEX`` blocks every write to the table while it scans it (the
    case table of a busy deployment holds millions of rows, and ingest would stall
    for the whole build); a concurrent build does not. The embedded SQLite default
    has no such option and no such tables. The migration that uses it must set
    ``atomic = False``: PostgreSQL refuses a concurrent build inside a transaction.
    """

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class RemoveIndexOnline(RemoveIndexConcurrently):
    """``RemoveIndex`` that drops the index ``CONCURRENTLY`` on PostgreSQL, plainly elsewhere.

    A plain ``DROP INDEX`` takes a lock that blocks reads and writes of the table until
    it commits; the concurrent drop waits for running transactions instead. The same
    rules as ``AddIndexOnline``: the migration must set ``atomic = False``.
    """

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            RemoveIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            RemoveIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)

