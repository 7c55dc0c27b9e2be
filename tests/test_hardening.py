"""Hardening over real HTTP: headers, request-size limits, malformed HTTP, and
logs that never carry paste content, delete tokens or SECRET_KEY."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import pytest

from tests.servers import Server, gunicorn

pytestmark = pytest.mark.slow
SECRET_KEY = "hardening-secret-key-" + "k" * 32


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    with gunicorn(database_url, SECRET_KEY=SECRET_KEY, LOG_LEVEL="DEBUG") as server:
        yield server


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
        return reply


def test_no_versions_in_headers_and_nosniff_everywhere(server):
    for method, path in [("GET", "/healthz"), ("GET", "/nope"), ("POST", "/healthz")]:
        _, headers, _ = server.request(method, path)
        assert not re.search(r"\d", headers.get("server", "")), headers.get("server")
        assert "x-powered-by" not in headers
        assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-H%d: v\r\n" % i for i in range(60))
            + b"\r\n",
            431,
        ),
    ],
)
def test_requests_over_the_size_limits_get_problem_documents(server, request_bytes, status):
    reply = raw_request(server.port, request_bytes)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d" % status), head[:100]
    assert b"content-type: application/problem+json" in head.lower()
    document = json.loads(body)
    assert document["status"] == status
    assert b"aaaa" not in body


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /api/v1/pastes HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /api/v1/pastes HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    ],
)
def test_malformed_http_is_refused_by_the_server_and_the_connection_closed(server, request_bytes):
    # uvicorn's parser owns these: its own plain 400, before the app (README, Operations).
    reply = raw_request(server.port, request_bytes)
    head = reply.partition(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 400")
    assert b"connection: close" in head
    assert server.request("GET", "/healthz")[0] == 200


def test_logs_carry_no_content_tokens_or_secret(server):
    content = "TOP-SECRET-PASTE-CONTENT-" + "z" * 20
    status, _, body = server.request(
        "POST",
        "/api/v1/pastes",
        body=json.dumps({"content": content, "title": "t"}).encode(),
        headers={"Content-Type": "application/json", "X-Request-ID": "hardening-1"},
    )
    assert status == 201
    created = json.loads(body)
    token = created["delete_token"]
    path = f"/api/v1/pastes/{created['id']}"
    assert server.request("GET", path)[0] == 200
    assert server.request("GET", path + "/raw")[0] == 200
    assert server.request("DELETE", path, headers={"Authorization": "Bearer wrong"})[0] == 403
    assert server.request("DELETE", path, headers={"Authorization": f"Bearer {token}"})[0] == 204
    text_status, text_headers, _ = server.request(
        "POST",
        "/api/v1/pastes",
        body=content.encode(),
        headers={"Content-Type": "text/plain", "Accept": "text/plain"},
    )
    assert text_status == 201
    other_token = text_headers["x-delete-token"]
    server.process.terminate()
    server.process.wait(timeout=30)
    log = server.read_log()
    assert "hardening-1" in log  # the request lines are there...
    assert "request_handled" in log
    for secret in (content, token, other_token, SECRET_KEY, "Bearer wrong"):
        assert secret not in log  # ...but none of the secrets
