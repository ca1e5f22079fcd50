#!/usr/bin/env python3
"""The two quickstart commands: bring the portal up, and run the test suite.

    python3 scripts/dev.py up     # web server + Celery worker + beat, demo data
    python3 scripts/dev.py test   # pytest (extra arguments go to pytest)

Standard library only: this runs before any dependency is installed. Both
commands first make sure ``.venv`` exists, sees this checkout (a ``.pth`` file) and
holds a pinned lock: ``up`` only the runtime (``requirements.lock``), ``test`` also
the test, benchmark and lint tools (``requirements-dev.lock``). A hash of the files
each level was installed from, kept inside ``.venv``, skips the install when
nothing changed (``python3 scripts/lock.py`` regenerates both locks).

With no configuration the portal runs on the embedded default: SQLite under
``var/`` and an embedded Celery broker (a SQLite file beside it), so the worker
and beat run exactly as they do against Redis in production. Every setting comes
from the environment (see README.md, "Production").
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

if sys.version_info < (3, 11):  # noqa: UP036 - the point is a clear message on an old interpreter
    sys.exit(f"Python >= 3.11 is required (this is {sys.version.split()[0]}).")

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
# One stamp per level; the dev level's covers both locks (requirements-dev.lock includes the runtime one).
STAMPS = {
    "runtime": (VENV / ".hitl-lock.sha256", (LOCK,)),
    "dev": (VENV / ".hitl-dev-lock.sha256", (LOCK, DEV_LOCK)),
}

STOP_GRACE_S = 20  # how long children get to finish their work after SIGTERM
READY_TIMEOUT_S = 120


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


# --- virtualenv ---------------------------------------------------------------------


def lock_digest(files: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def installed(level: str) -> bool:
    stamp, files = STAMPS[level]
    return stamp.exists() and stamp.read_text().strip() == lock_digest(files)


def ensure_venv(*, dev: bool) -> None:
    """Create ``.venv`` if missing and install the runtime lock (and with ``dev`` the dev lock) unless done."""
    if not PYTHON.exists():
        say(f"creating the virtualenv {VENV.relative_to(ROOT)}/")
        run([sys.executable, "-m", "venv", str(VENV)])
    level = "dev" if dev else "runtime"
    # A venv holding the dev level holds the runtime too: `up` after `test` installs nothing.
    if installed(level) or (not dev and installed("dev")):
        return
    lock = DEV_LOCK if dev else LOCK
    say(f"installing the pinned dependencies ({lock.name})")
    # --no-compile: pip would byte-compile every installed module up front (a large
    # share of a first install); Python compiles what is imported, when it is imported.
    run([str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "--no-compile", "-r", str(lock)])
    link_checkout()
    for name, (stamp, files) in STAMPS.items():
        if name == level or (dev and name == "runtime"):
            stamp.write_text(lock_digest(files) + "\n")


def link_checkout() -> None:
    """Make the checkout importable from the venv: one ``.pth`` line, what an editable install amounts to.

    ``pip install -e .`` would first build the project in an isolated environment
    (downloading and installing setuptools into it): a large share of a first start,
    for a result this line gives at once (the portal runs from the checkout).
    """
    purelib = subprocess.run(
        [str(PYTHON), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    (Path(purelib) / "hitl_portal_checkout.pth").write_text(f"{ROOT}\n")


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    """Run one setup step; stop with its exit code if it fails."""
    result = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        sys.exit(f"failed (exit {result.returncode}): {' '.join(cmd)}")


def describe_configuration(env: dict[str, str]) -> None:
    if env.get("DATABASE_URL"):
        say("database: DATABASE_URL (" + env["DATABASE_URL"].split("://", 1)[0] + ")")
    else:
        var_dir = env.get("HITL_VAR_DIR") or str(ROOT / "var")
        say(f"database: SQLite in {var_dir}/ (set DATABASE_URL to use PostgreSQL)")
    if env.get("CELERY_BROKER_URL"):
        say("broker: CELERY_BROKER_URL")
    else:
        say("broker: embedded (SQLite file beside the database; set CELERY_BROKER_URL for Redis)")


# --- up ---------------------------------------------------------------------------


class Child:
    """One long-running process whose output lines are prefixed with its name."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], width: int, lock: threading.Lock) -> None:
        self.name = name
        # Its own session: a Ctrl-C reaches only this script, which then stops each
        # child in order, and killpg reaches the child's own children (gunicorn
        # workers, the Celery pool) if one does not stop in time.
        self.process = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._prefix = f"{name:<{width}} | ".encode()
        self._lock = lock
        self._reader = threading.Thread(target=self._pump, name=f"{name}-output", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        out = sys.stdout.buffer
        for line in iter(self.process.stdout.readline, b""):
            with self._lock:
                out.write(self._prefix + line if line.endswith(b"\n") else self._prefix + line + b"\n")
                out.flush()

    def poll(self) -> int | None:
        return self.process.poll()

    def terminate(self) -> None:
        # Only the main process: gunicorn's master and Celery's main process stop
        # their own workers gracefully (signalling the whole group would cut them short).
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def finish_output(self) -> None:
        self._reader.join(timeout=2)


def stop_all(children: list[Child]) -> None:
    for child in children:
        child.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop within {STOP_GRACE_S}s: killing it")
            child.kill()
            child.process.wait()
        child.kill()  # whatever the child left behind in its process group
        child.finish_output()


def wait_until_ready(url: str, children: list[Child]) -> bool:
    """Poll /healthz until it answers 200 (or a child dies, or time runs out)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(host: str, port: int, *, explicit: bool) -> int:
    """The asked port; without ``--port``, the next free one when the default is taken."""
    if port_free(host, port):
        return port
    if explicit:
        sys.exit(f"port {port} on {host} is in use (choose another with --port)")
    for candidate in range(port + 1, port + 100):
        if port_free(host, candidate):
            say(f"port {port} is in use: using {candidate}")
            return candidate
    sys.exit(f"no free port in {port}..{port + 99} on {host} (choose one with --port)")


def command_up(args: argparse.Namespace) -> int:
    ensure_venv(dev=False)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    describe_configuration(env)
    manage = [str(PYTHON), "manage.py"]
    port = choose_port(args.host, args.port, explicit=args.port_given)
    base_url = f"http://{args.host}:{port}"
    # collectstatic needs no database: it runs beside the migration and the demo data.
    say("collecting static files (in the background)")
    static = subprocess.Popen([*manage, "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    say("migrating the database")
    run([*manage, "migrate", "--noinput"], env)
    say("loading demo data")
    demo = subprocess.run([*manage, "demo_data", "--base-url", base_url], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    sys.stderr.write(demo.stderr)
    if demo.returncode != 0:
        sys.stdout.write(demo.stdout)
        sys.exit(f"failed (exit {demo.returncode}): manage.py demo_data")
    static_output, _ = static.communicate()
    if static.returncode != 0:
        sys.stdout.write(static_output)
        sys.exit(f"failed (exit {static.returncode}): manage.py collectstatic")

    specs = [
        # uvicorn: /api/v1/cases/{id}/wait/ long-polls are async views (hitl_portal.asgi).
        ("web", [str(BIN / "uvicorn"), "hitl_portal.asgi:application", "--host", args.host, "--port", str(port),
                 "--workers", str(args.web_workers), "--timeout-graceful-shutdown", "10"]),
        ("worker", [str(BIN / "celery"), "-A", "hitl_portal", "worker", "-l", "info",
                    "--concurrency", str(args.worker_concurrency)]),
        ("beat", [str(BIN / "celery"), "-A", "hitl_portal", "beat", "-l", "info"]),
    ]
    width = max(len(name) for name, _ in specs)
    lock = threading.Lock()
    children: list[Child] = []

    stopping = {"signal": None}

    def on_signal(signum: int, _frame: object) -> None:
        stopping["signal"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    for name, cmd in specs:
        children.append(Child(name, cmd, env, width, lock))

    def banner() -> None:
        if not wait_until_ready(f"{base_url}/healthz", children):
            return
        with lock:
            print(
                f"\n==> The portal is up at {base_url}/\n"
                f"    review workbench   {base_url}/review/\n"
                f"    oversight console  {base_url}/admin/\n"
                f"    API docs           {base_url}/api/docs/\n"
                f"    health             {base_url}/healthz\n"
                + (f"\n{demo.stdout.rstrip()}\n" if demo.stdout.strip() else "")
                + "\n    Ctrl-C stops the web server, the worker and beat.\n",
                flush=True,
            )

    threading.Thread(target=banner, name="banner", daemon=True).start()

    exit_code = 0
    while stopping["signal"] is None:
        dead = next((child for child in children if child.poll() is not None), None)
        if dead is not None:
            code = dead.poll()
            say(f"{dead.name} exited with code {code}: stopping the others")
            exit_code = code if code and code > 0 else 1
            break
        time.sleep(0.3)
    if stopping["signal"] is not None:
        say("stopping the web server, the worker and beat")
    stop_all(children)
    return exit_code


# --- test ---------------------------------------------------------------------------


def command_test(pytest_args: list[str]) -> int:
    ensure_venv(dev=True)
    env = dict(os.environ)
    describe_configuration(env)
    if not env.get("DATABASE_URL"):
        say("tests marked 'postgres' are skipped on SQLite; the summary below lists every skip and why")
    result = subprocess.run([str(PYTHON), "-m", "pytest", *pytest_args], cwd=ROOT, env=env, check=False)
    return result.returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/dev.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="migrate, load demo data, run web server + worker + beat")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=None, help="default 8000, or the next free port if it is taken")
    up.add_argument("--web-workers", type=int, default=2)
    up.add_argument("--worker-concurrency", type=int, default=2)
    commands.add_parser("test", help="run the test suite; further arguments go to pytest", add_help=False)
    if argv[:1] == ["test"]:
        # Everything after "test" belongs to pytest (including -h, -k, -m ...).
        return command_test(argv[1:])
    args = parser.parse_args(argv)
    args.port_given = args.port is not None
    if args.port is None:
        args.port = 8000
    return command_up(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
