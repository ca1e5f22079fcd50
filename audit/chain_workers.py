"""Worker processes of a parallel chain verification (``audit.selectors.verify_chain``).

The workers are plain child processes started with :mod:`subprocess`
(``python -m audit.chain_workers``), not :mod:`multiprocessing` ones. The nightly
verification runs in a Celery prefork child, a daemonic process: multiprocessing
refuses to start children there, and billiard (Celery's fork of it) replaces
``multiprocessing.current_process()`` with an object whose authentication key the
standard library's spawn cannot pickle. A subprocess depends on neither, so the
nightly task walks in parallel like any other caller.

Protocol, one worker: the parent writes frames (a 4-byte big-endian length, then a
pickle) to the worker's stdin: first ``{"settings_module", "settings_dict",
"snapshot"}``, then one segment (the keyword arguments of
``audit.selectors._walk_segment``) at a time; end of input ends the worker. For
each segment the worker answers one frame, ``("ok", stretch)`` or ``("error",
exception)``, on its original stdout; anything printed while it runs goes to stderr.
Pickle is safe here: both ends are this code, over pipes only they hold.

Importable before Django is set up: the worker sets Django up from the first frame.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Generator
from concurrent.futures import Future
from typing import IO, Any

_SNAPSHOT_STATEMENT = "SET TRANSACTION SNAPSHOT '{}'"
_LENGTH = struct.Struct(">I")


class WorkerLost(Exception):
    """A worker could not be started, or died (killed, out of memory) before answering."""


def _send(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next frame; EOFError at the end of the stream (also in the middle of a frame)."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        raise EOFError
    size = _LENGTH.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)  # noqa: S301 - our own frames, over a pipe only parent and worker hold


# --- The parent's side -----------------------------------------------------------------------


def _child_environment() -> dict[str, str]:
    """The parent's environment, with its import path: the worker must import this project."""
    environment = dict(os.environ)
    paths = [path or os.getcwd() for path in sys.path]
    environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return environment


def _worker_command() -> list[str]:
    return [sys.executable, "-m", "audit.chain_workers"]


def walk_segments(init: dict[str, Any], segments: list[dict[str, Any]], *, workers: int) -> Generator[Any, None, None]:
    """Walk ``segments`` on up to ``workers`` processes; yield their results in order.

    Each process takes the next segment as soon as it is free. Closing the iterator
    early (the caller found a failing segment) stops every worker, walking or not.
    A segment's exception is raised where its result would be yielded;
    :class:`WorkerLost` when a worker could not start or died, after which no
    segment is handed out any more (the caller then walks serially).
    """
    results: list[Future[Any]] = [Future() for _ in segments]
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(segments)):
        pending.put(index)
    stop = threading.Event()
    settling = threading.Lock()
    processes: list[subprocess.Popen[bytes]] = []

    def settle(index: int, kind: str, value: Any) -> None:
        with settling:
            if results[index].done():
                return  # already failed by ``lost``
            if kind == "ok":
                results[index].set_result(value)
            else:
                results[index].set_exception(value)

    def lost(exc: WorkerLost) -> None:
        # One worker gone breaks the whole parallel walk, as a broken process pool does.
        stop.set()
        with settling:
            for result in results:
                if not result.done():
                    result.set_exception(exc)

    def serve(process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        try:
            _send(process.stdin, init)
            while not stop.is_set():
                try:
                    index = pending.get_nowait()
                except queue.Empty:
                    return
                _send(process.stdin, segments[index])
                settle(index, *_receive(process.stdout))
        except Exception as exc:  # a dead pipe, or an answer that cannot be read: never leave a result unset
            if not stop.is_set():
                try:
                    code: int | None = process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
                lost(WorkerLost(f"worker {process.pid} exited with {code} ({type(exc).__name__})"))

    threads: list[threading.Thread] = []
    try:
        for _ in range(max(1, min(workers, len(segments)))):
            try:
                process = subprocess.Popen(  # noqa: S603 - this interpreter, this module, no shell
                    _worker_command(),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_child_environment(),
                )
            except OSError as exc:
                raise WorkerLost(f"cannot start a worker: {exc}") from exc
            processes.append(process)
            thread = threading.Thread(target=serve, args=(process,), name="audit-verify-worker", daemon=True)
            threads.append(thread)
            thread.start()
        for result in results:
            yield result.result()
    finally:
        stop.set()
        for process in processes:
            # Idle workers end at the end of their input; one still walking a segment
            # nobody needs any more (a failure was found before it) is stopped now.
            if process.stdin is not None:
                with contextlib.suppress(OSError):  # a worker that died has closed its end
                    process.stdin.close()
        for process, thread in zip(processes, threads, strict=False):
            thread.join(timeout=0.5)
            if thread.is_alive() or process.poll() is None:
                process.kill()
            process.wait()
            thread.join()
            if process.stdout is not None:
                process.stdout.close()


# --- The worker's side ---------------------------------------------------------------------


def _setup(settings_module: str, settings_dict: dict[str, Any]) -> None:
    """Set Django up in this fresh process, on the parent's database.

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


def main() -> None:
    """Serve segments from stdin until its end (see the module's docstring)."""
    requests = sys.stdin.buffer
    # Answers go to the original stdout; whatever else prints (Django, a library) goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        init = _receive(requests)
    except EOFError:
        return
    _setup(init["settings_module"], init["settings_dict"])
    while True:
        try:
            segment = _receive(requests)
        except EOFError:
            return
        try:
            answer: tuple[str, Any] = ("ok", walk_segment(init["snapshot"], segment))
        except Exception as exc:  # every failure goes back to the parent, which raises it
            answer = ("error", exc)
        try:
            _send(answers, answer)
        except (pickle.PicklingError, TypeError, AttributeError):
            _send(answers, ("error", RuntimeError(repr(answer[1]))))


if __name__ == "__main__":
    main()
