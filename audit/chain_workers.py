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
exception)``, on a pipe of its own whose descriptor is its only argument
(``python -P -m audit.chain_workers FD``): nothing the worker or a library prints
can garble an answer. Pickle is safe here: both ends are this code, over pipes
only they hold.

Importable before Django is set up: the worker sets Django up from the first frame.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import traceback
from collections.abc import Generator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import IO, Any

logger = logging.getLogger(__name__)

_SNAPSHOT_STATEMENT = "SET TRANSACTION SNAPSHOT '{}'"
_LENGTH = struct.Struct(">I")
# A segment's result is a few counts and checkpoint seqs: anything this big is not one.
_MAX_FRAME = 64 * 1024 * 1024


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
    if size > _MAX_FRAME:
        raise ValueError(f"a frame of {size} bytes: not an answer of this protocol")
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
    # -P: nothing from the current directory on the import path before this project's.
    return [sys.executable, "-P", "-m", "audit.chain_workers"]


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    answers: IO[bytes]  # the read end of the worker's answer pipe
    thread: threading.Thread | None = None


def _start_worker() -> _Worker:
    """One worker process; its answers come on a pipe of their own (its stdout stays its own)."""
    read_fd, write_fd = os.pipe()
    try:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, this module, no shell
            [*_worker_command(), str(write_fd)], stdin=subprocess.PIPE, pass_fds=(write_fd,),
            env=_child_environment(),
        )
    except OSError as exc:
        os.close(read_fd)
        raise WorkerLost(f"cannot start a worker: {exc}") from exc
    finally:
        os.close(write_fd)  # the worker's copy only: its exit then ends our reads
    return _Worker(process, os.fdopen(read_fd, "rb"))


def walk_segments(init: dict[str, Any], segments: list[dict[str, Any]], *, workers: int) -> Generator[Any, None, None]:
    """Walk ``segments`` on up to ``workers`` processes; yield their results in order.

    Each process takes the next segment as soon as it is free. Closing the iterator
    early (the caller found a failing segment) stops every worker, walking or not.
    A segment's exception is raised where its result would be yielded;
    :class:`WorkerLost` when a worker could not start, died or answered something
    unreadable, after which no segment is handed out any more (the caller then
    walks serially). A worker alive but stuck is waited for: the nightly task's
    time limit bounds that.
    """
    results: list[Future[Any]] = [Future() for _ in segments]
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(segments)):
        pending.put(index)
    stop = threading.Event()
    settling = threading.Lock()
    started: list[_Worker] = []

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

    def serve(worker: _Worker) -> None:
        process = worker.process
        assert process.stdin is not None
        try:
            _send(process.stdin, init)
            while not stop.is_set():
                try:
                    index = pending.get_nowait()
                except queue.Empty:
                    return
                _send(process.stdin, segments[index])
                settle(index, *_receive(worker.answers))
        except Exception as exc:  # a dead pipe, or an answer that cannot be read: never leave a result unset
            if not stop.is_set():
                # No waiting here for the worker to exit: one that answered garbage may still be
                # alive, and the cleanup below stops and reaps every worker anyway.
                state = "running" if process.poll() is None else f"exit code {process.returncode}"
                lost(WorkerLost(f"worker {process.pid} failed ({state}): {type(exc).__name__}: {exc}"))

    try:
        for _ in range(max(1, min(workers, len(segments)))):
            worker = _start_worker()
            started.append(worker)
            worker.thread = threading.Thread(target=serve, args=(worker,), name="audit-verify-worker", daemon=True)
            try:
                worker.thread.start()
            except RuntimeError as exc:  # no thread to be had
                worker.thread = None
                raise WorkerLost(f"cannot start a thread for a worker: {exc}") from exc
        for result in results:
            yield result.result()
    finally:
        stop.set()
        for worker in started:
            # Idle workers end at the end of their input; one still walking a segment
            # nobody needs any more (a failure was found before it) is stopped now.
            if worker.process.stdin is not None:
                with contextlib.suppress(OSError):  # a worker that died has closed its end
                    worker.process.stdin.close()
        for worker in started:
            if worker.thread is not None:
                worker.thread.join(timeout=0.5)
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait()
            # Its answer pipe is at its end now (unless a process forked meanwhile holds a copy
            # of the write end): the thread ends. Closing a file another thread is reading
            # could block, so a thread still reading keeps it (a descriptor leaked, not a hang).
            if worker.thread is not None:
                worker.thread.join(timeout=5)
            if worker.thread is None or not worker.thread.is_alive():
                worker.answers.close()
            else:
                logger.warning("audit chain verification: worker %s's reader did not end", worker.process.pid)


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
    answers = os.fdopen(int(sys.argv[1]), "wb")
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
            exc.add_note("".join(traceback.format_exception(exc)))  # the worker's traceback, for the log
            answer = ("error", exc)
        try:
            _send(answers, answer)
        except (pickle.PicklingError, TypeError, AttributeError):
            _send(answers, ("error", RuntimeError(repr(answer[1]))))


if __name__ == "__main__":
    main()
