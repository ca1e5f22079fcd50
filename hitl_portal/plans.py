"""Generic query plans for the write hot paths, custom plans for every other request.

PostgreSQL plans a prepared statement either for its parameters on every execution
(a *custom* plan) or once for all parameters (a *generic* plan). Generic plans
nearly halve the database CPU of ingest and of the claim cycle, whose statements are
key lookups and inserts (docs/PERFORMANCE.md). They are wrong for the portal's
analytical reads: a generic plan cannot tell that a parameter meets a partial
index's condition, and the reviewer quality page became 3x slower at 1 M cases.

So the connection's own default stays ``DB_PLAN_CACHE_MODE`` (custom plans), and a
view that is a hot path asks for ``HITL_HOT_PATH_PLAN_CACHE_MODE`` (``auto``: PostgreSQL
keeps custom plans for any statement whose generic plan would cost more) with
``prefer_hot_path_plans()``. Every request starts by wanting the default again
(``request_started``). The session's mode is switched lazily, by a ``SET`` sent just
before the first statement that wants another mode, and only on a change: a worker
serving one kind of request in a row pays nothing.

A session-level ``SET`` inside a transaction is undone if the transaction rolls
back, so a switch is only made in autocommit; inside a transaction a statement that
wants the default gets it for that transaction with ``SET LOCAL`` instead, and one
that wants the hot-path mode keeps the session's (only slower, never wrong).

The ``SET`` goes to the driver's connection, past Django's query log: query-count
tests do not see it, and its round trip is counted in the wrapped statement's time.
It needs a session of the portal's own: behind a pooler in transaction mode, set
``DB_HOT_PATH_PLAN_CACHE_MODE=force_custom_plan`` (README, settings).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.pq import TransactionStatus

MODES = ("auto", "force_custom_plan", "force_generic_plan")  # as settings.PLAN_CACHE_MODES
# On the connection wrapper (Django's DatabaseWrapper, one per thread and alias).
_WANTED = "_hitl_plan_wanted"  # the mode this request wants; None: the connection's default
_SESSION = "_hitl_plan_session"  # the mode the database session is in; None: the connection's default
_LOCAL = "_hitl_plan_local"  # the current transaction got the default with SET LOCAL


def default_mode() -> str:
    return str(getattr(settings, "HITL_DB_PLAN_CACHE_MODE", "force_custom_plan"))


def hot_path_mode() -> str:
    return str(getattr(settings, "HITL_HOT_PATH_PLAN_CACHE_MODE", default_mode()))


def prefer_hot_path_plans(using: str = DEFAULT_DB_ALIAS) -> None:
    """Let this request's statements on ``using`` be planned the hot paths' way."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        setattr(connection, _WANTED, hot_path_mode())


def session_mode(connection: BaseDatabaseWrapper) -> str:
    """The mode the connection's session is in, as this module last set it."""
    return getattr(connection, _SESSION, None) or default_mode()


def reset_wanted(**_: Any) -> None:
    """``request_started``: every request wants the connection's default until its view says otherwise."""
    for connection in connections.all(initialized_only=True):
        if getattr(connection, _WANTED, None) is not None:
            setattr(connection, _WANTED, None)


def install(sender: Any, connection: BaseDatabaseWrapper, **_: Any) -> None:
    """``connection_created``: a new session is in the default mode; switch it when asked."""
    if connection.vendor != "postgresql":
        return
    setattr(connection, _SESSION, None)
    setattr(connection, _LOCAL, False)
    if _switch_plan_mode not in connection.execute_wrappers:
        # First, so that ``execute_wrapper()``'s pop at its exit never removes this one.
        connection.execute_wrappers.insert(0, _switch_plan_mode)


def _switch_plan_mode(execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    connection = context["connection"]
    wanted = getattr(connection, _WANTED, None) or default_mode()
    if wanted != session_mode(connection):
        _switch(connection, wanted)
    return execute(sql, params, many, context)


def _switch(connection: BaseDatabaseWrapper, wanted: str) -> None:
    if wanted not in MODES:  # never interpolate anything but a known keyword
        raise ValueError(f"unknown plan_cache_mode {wanted!r}")
    driver = connection.connection
    if connection.get_autocommit() and not connection.in_atomic_block:
        _send(connection, f"SET plan_cache_mode = {wanted}")
        setattr(connection, _SESSION, wanted)
    elif wanted == default_mode():
        # Once per transaction: the driver is idle between transactions, so an idle
        # connection means this statement starts a new one (an ``Atomic`` object cannot
        # tell: ``@transaction.atomic`` reuses one for every call).
        if driver.info.transaction_status == TransactionStatus.IDLE:
            setattr(connection, _LOCAL, False)
        if not getattr(connection, _LOCAL, False):
            setattr(connection, _LOCAL, True)
            _send(connection, f"SET LOCAL plan_cache_mode = {wanted}")


def _send(connection: BaseDatabaseWrapper, statement: str) -> None:
    # On the driver's connection, not the statement's cursor: that may be a server-side
    # cursor (``.iterator()``), which would DECLARE it, or run an executemany. Errors are
    # Django's, as the statement's own would be (and mark the connection for the health check).
    with connection.wrap_database_errors:
        connection.connection.execute(statement)
