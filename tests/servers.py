"""Real gunicorn processes for end-to-end and fault tests."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A running gunicorn, spoken to over HTTP on 127.0.0.1."""

    def __init__(self, port: int, process: subprocess.Popen) -> None:
        self.port = port
        self.process = process
        self.returncode: int | None = None
        self.log = ""

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict | None = None,
        timeout: float = 10,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()


@contextmanager
def gunicorn(database_url: str, **env: str) -> Iterator[Server]:
    """gunicorn with gunicorn.conf.py in production mode; SIGTERM on exit."""
    port = free_port()
    environ = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": "e2e-secret-key-" + "x" * 32,
        "DATABASE_URL": database_url,
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        # Every request comes from 127.0.0.1: limits would throttle the tests
        # themselves. test_rate_limits.py covers them.
        "RATE_LIMITS": "false",
        **env,
    }
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "service.app:create_app()"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = Server(port, process)
    try:
        wait_until_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            _, server.log = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, server.log = process.communicate()
        server.returncode = process.returncode


def wait_until_ready(server: Server, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if server.request("GET", "/readyz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.process.kill()
            log = server.process.communicate()[1]
            raise RuntimeError(f"gunicorn did not start: {log[-3000:]}")
        time.sleep(0.1)
