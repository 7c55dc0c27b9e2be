"""`make run`: the whole service on one machine, for development.

Uses DATABASE_URL when it is set, else an embedded PostgreSQL (the `pgserver`
package) whose data lives under `.data/pg`. Applies pending migrations, then
starts the web server (gunicorn with gunicorn.conf.py) and one expiry worker,
and stops them all, the embedded database last, on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

from service.migrate import apply_migrations

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data" / "pg"
STOP_TIMEOUT = 30.0


def embedded_postgres() -> Any:
    """Start (or reuse) the embedded server under .data/pg; it stops when we exit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns of a missing XDG_RUNTIME_DIR
        import pgserver

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(DATA_DIR, cleanup_mode="stop")


def main() -> int:
    server = None
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        print(f"run: no DATABASE_URL; starting embedded PostgreSQL in {DATA_DIR}", flush=True)
        server = embedded_postgres()
        database_url = server.get_uri()
    try:
        applied = apply_migrations(database_url)
        print(f"run: migrations applied: {', '.join(applied) or 'none pending'}", flush=True)
        return supervise(database_url)
    finally:
        if server is not None:
            server.cleanup()


def supervise(database_url: str) -> int:
    """Run web + worker until a signal or until either exits; stop both."""
    env = {**os.environ, "DATABASE_URL": database_url}
    commands = {
        "web": [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "service.app:create_app()",
        ],
        "worker": [sys.executable, "-m", "service.worker"],
    }
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    children = {
        name: subprocess.Popen(cmd, cwd=ROOT, env=env)  # noqa: S603 - our own fixed commands
        for name, cmd in commands.items()
    }
    port = env.get("PORT", "8000")
    print(f"run: serving on http://127.0.0.1:{port} (Ctrl-C stops everything)", flush=True)
    status = 0
    while not stop.wait(0.5):
        exited = {name: child.poll() for name, child in children.items()}
        failed = {name: code for name, code in exited.items() if code is not None}
        if failed:
            print(f"run: {', '.join(failed)} exited ({failed}); stopping", flush=True)
            status = 1
            break
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for name, child in children.items():
        try:
            child.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"run: {name} did not stop in {STOP_TIMEOUT:.0f} s; killing it", flush=True)
            child.kill()
            child.wait()
    print("run: stopped", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
