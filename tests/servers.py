"""Real gunicorn processes for end-to-end and fault tests."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A running gunicorn, spoken to over HTTP on 127.0.0.1."""

    def __init__(self, port: int, process: subprocess.Popen, log_file: IO[str]) -> None:
        self.port = port
        self.process = process
        self.returncode: int | None = None
        self.log = ""
        self._log_file = log_file

    def create_text(self, content: bytes, query: str = "") -> str:
        """Create a paste from a plain-text body; the path of its raw view."""
        status, _, body = self.request(
            "POST",
            f"/api/v1/pastes{query}",
            body=content,
            headers={"Content-Type": "text/plain", "Accept": "text/plain"},
        )
        assert status == 201, body
        return re.sub(r"^https?://[^/]+", "", body.decode().strip())

    def read_log(self) -> str:
        """What the server has written to stderr so far."""
        self._log_file.seek(0)
        return self._log_file.read()

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
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        # Every request comes from 127.0.0.1: limits would throttle the tests
        # themselves. test_rate_limits.py covers them.
        "RATE_LIMITS": "false",
        **env,
    }
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # A file, not a pipe: a full pipe that nobody reads would block every
    # worker's event loop on its next log line.
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed when the server is
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "service.app:create_app()"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    server = Server(port, process, log)
    try:
        wait_until_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        server.returncode = process.returncode
        server.log = server.read_log()
        log.close()


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
            server.process.wait()
            raise RuntimeError(f"gunicorn did not start: {server.read_log()[-3000:]}")
        time.sleep(0.1)
