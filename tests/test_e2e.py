"""End to end: real gunicorn with gunicorn.conf.py, spoken to over HTTP."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Server, gunicorn

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    with gunicorn(database_url, PASTE_MAX_BYTES="65536") as server:
        yield server
    assert server.returncode == 0


def test_readme_round_trip_with_curl_style_headers(server):
    readme = (ROOT / "README.md").read_bytes()
    status, headers, body = server.request(
        "POST",
        "/api/v1/pastes",
        body=readme,
        headers={"Content-Type": "text/plain", "Accept": "text/plain"},
    )
    assert status == 201
    raw_url = body.decode().strip()
    assert raw_url == headers["location"] + "/raw"
    path = re.sub(r"^http://[^/]+", "", raw_url)
    status, headers, content = server.request("GET", path)
    assert status == 200
    assert content == readme
    assert headers["content-type"] == "text/plain; charset=utf-8"


def test_links_never_come_from_the_host_header_in_production(server):
    """Security review, finding 5: `Host: evil.example:443` with
    `X-Forwarded-Proto: https` put https://evil.example:443/… into replies
    that shared caches keep. Production links come from PUBLIC_BASE_URL."""
    forged = {"Host": "evil.example:443", "X-Forwarded-Proto": "https"}
    status, headers, body = server.request(
        "POST",
        "/api/v1/pastes",
        body=b"x",
        headers={"Content-Type": "text/plain", "Accept": "text/plain", **forged},
    )
    assert status == 201
    base = f"http://127.0.0.1:{server.port}/api/v1/pastes/"
    assert body.startswith(base.encode())
    assert headers["location"].startswith(base)
    path = body.decode().strip().removeprefix(f"http://127.0.0.1:{server.port}")
    status, _, read = server.request("GET", path.removesuffix("/raw"), headers=forged)
    assert status == 200
    assert b"evil.example" not in read


def test_exactly_one_concurrent_http_reader_gets_a_burn_paste(server):
    for _ in range(3):
        path = server.create_text(b"secret", "?burn_after_read=true")
        readers = 12
        barrier = threading.Barrier(readers)
        statuses: list[int] = []

        def read(path: str, barrier: threading.Barrier, statuses: list[int]) -> None:
            barrier.wait()
            statuses.append(server.request("GET", path)[0])

        threads = [
            threading.Thread(target=read, args=(path, barrier, statuses)) for _ in range(readers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(statuses) == [200] + [404] * (readers - 1)


def test_declared_oversize_is_refused_before_the_body_is_sent(server):
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        conn.sendall(
            b"POST /api/v1/pastes HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 999999999\r\n\r\n"
        )
        reply = conn.recv(65536)
    finally:
        conn.close()
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"application/problem+json" in reply


def test_chunked_body_over_the_limit_is_cut_off(server):
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sent = 0
    reply = b""
    try:
        conn.sendall(
            b"POST /api/v1/pastes HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"a" * 16384
        # Offer up to 64 MiB; the server must answer long before taking it all.
        conn.settimeout(0.05)
        while sent < 64 * 1024 * 1024:
            try:
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            except OSError:
                break
            try:
                reply += conn.recv(65536)
            except TimeoutError:
                continue
            if reply:
                break
        conn.settimeout(10)
        if not reply:
            reply = conn.recv(65536)
    finally:
        conn.close()
    assert reply.startswith(b"HTTP/1.1 413")
    assert sent < 4 * 1024 * 1024


def test_metrics_aggregate_every_worker_process(server):
    for _ in range(20):
        server.request("GET", "/healthz")

    def counted() -> float:
        status, _, body = server.request("GET", "/metrics")
        assert status == 200
        match = re.search(
            rb'pastebin_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)',
            body,
        )
        return float(match.group(1)) if match else 0.0

    assert counted() >= 20


def test_unknown_route_and_bad_method_are_problems_over_http(server):
    status, headers, _ = server.request("GET", "/does/not/exist")
    assert status == 404
    assert headers["content-type"] == "application/problem+json"
    status, headers, _ = server.request("PUT", "/api/v1/pastes")
    assert status == 405
    assert "GET" in headers["allow"]
