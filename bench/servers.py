"""gunicorn servers under test: the service as production runs it, and the
bare ceiling apps, all with the service's own gunicorn.conf.py."""

from __future__ import annotations

import http.client
import os
import secrets
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.common import ROOT
from bench.procs import Registry, TreeProbe

SERVICE_APP = "service.app:create_app()"
# Settings the benchmark changes unless the environment sets them. With the rate
# limiter on, it never refuses: the load is far above any per-client limit.
# Requests carry X-Forwarded-For from 127.0.0.1, as from the reverse proxy in
# front of a service that listens on 127.0.0.1.
BENCH_DEFAULTS = {
    # Off, as the peer has none; RATE_LIMITS=true in the environment measures it.
    "RATE_LIMITS": "false",
    "RATE_LIMIT_CREATES_PER_MINUTE": "1000000000",
    "RATE_LIMIT_CREATE_BURST": "1000000000",
    "RATE_LIMIT_MISSES_PER_MINUTE": "1000000000",
    "RATE_LIMIT_MISS_BURST": "1000000000",
    "TRUSTED_PROXIES": "127.0.0.1",
}
START_TIMEOUT = 60.0
# Above gunicorn.conf.py's 20 s graceful timeout, so workers finish what they hold.
STOP_TIMEOUT = 25.0


def free_port() -> int:
    """A port nobody listens on now, on 127.0.0.1 (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def production_env(database_url: str, port: int, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of a production web process: APP_ENV=production, a real
    SECRET_KEY, this DATABASE_URL and port. Everything else (WEB_CONCURRENCY,
    POOL_*…) passes through from `base`,
    over BENCH_DEFAULTS."""
    env = {**BENCH_DEFAULTS, **base}
    env.pop("BIND", None)  # the port below decides; never another interface
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # gunicorn.conf.py makes one per server
    secret = env.get("SECRET_KEY", "")
    if len(secret) < 32 or secret.startswith("dev-"):
        env["SECRET_KEY"] = secrets.token_urlsafe(48)
    env |= {"APP_ENV": "production", "DATABASE_URL": database_url, "PORT": str(port)}
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    return env


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        try:
            return [child.pid for child in psutil.Process(self.process.pid).children()]
        except psutil.Error:
            return []

    def probe(self) -> TreeProbe:
        return TreeProbe(self.process.pid)

    def truncate_log(self) -> None:
        """Empty the log (the server appends), so it holds the latest run only:
        the service writes one line per request."""
        os.truncate(self.log, 0)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def gunicorn(
    registry: Registry,
    name: str,
    app: str,
    env: Mapping[str, str],
    log: Path,
    *,
    ready_path: str = "/healthz",
    root: Path = ROOT,
) -> Iterator[Server]:
    """`gunicorn -c gunicorn.conf.py APP` in `root` (this checkout unless
    another is given) on env's PORT, until it answers `ready_path` with 200;
    stopped (SIGTERM, then SIGKILL) on exit."""
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(root / "gunicorn.conf.py"), app]
    with log.open("ab") as out:
        process = registry.start(
            name,
            cmd,
            cwd=root,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stop_timeout=STOP_TIMEOUT,
        )
    server = Server(name, int(env["PORT"]), process, log)
    try:
        _wait_ready(server, ready_path)
        yield server
    finally:
        registry.stop(process)


@contextmanager
def started_peer(
    registry: Registry, name: str, command: str, db_url: str, log: Path, *, timeout: float
) -> Iterator[Server]:
    """A peer started by `command` (with {db_url} and {port} filled in), until
    its port answers HTTP; stopped on exit."""
    port = free_port()
    cmd = [part.format(db_url=db_url, port=port) for part in shlex.split(command)]
    with log.open("ab") as out:
        process = registry.start(
            f"peer-{name}", cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stop_timeout=10
        )
    server = Server(f"peer-{name}", port, process, log)
    try:
        _wait_ready(server, "/raw/none", any_status=True, timeout=timeout)
        yield server
    finally:
        registry.stop(process)


def _wait_ready(
    server: Server, path: str, *, any_status: bool = False, timeout: float = START_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode} at start:\n{server.tail()}"
            )
        status = _status(server.port, path)
        if status == 200 or (any_status and status is not None):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not answer {path} in {timeout:.0f} s")


def _status(port: int, path: str) -> int | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()
