"""Security review, finding 2: the memory one request can cost is bounded.
Worst-case JSON create bodies, 24 at once, against one web process."""

from __future__ import annotations

import http.client
import threading
import time

import psutil
import pytest

from tests.servers import gunicorn

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
# Just under the JSON body limit for the default PASTE_MAX_BYTES (6 MiB + 64 KiB):
# millions of tiny containers, each costing a parser tens of bytes.
NESTED_IN_OBJECT = b'{"content": "x", "pad": [' + b"{}," * 2_100_000 + b"{}]}"
TOP_LEVEL_ARRAY = b"[" + b"[]," * 2_100_000 + b"[]]"


def post(port: int, body: bytes, statuses: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(
            "POST", "/api/v1/pastes", body=body, headers={"Content-Type": "application/json"}
        )
        statuses.append(conn.getresponse().status)
    finally:
        conn.close()


def worker_rss(master_pid: int) -> float:
    children = psutil.Process(master_pid).children()
    return sum(child.memory_info().rss for child in children) / MIB


@pytest.mark.parametrize("body", [NESTED_IN_OBJECT, TOP_LEVEL_ARRAY], ids=["nested", "array"])
def test_24_worst_case_json_bodies_keep_a_process_under_300_mib(database_url, body):
    with gunicorn(database_url, WEB_CONCURRENCY="1") as server:
        statuses: list[int] = []
        threads = [
            threading.Thread(target=post, args=(server.port, body, statuses)) for _ in range(24)
        ]
        peak = worker_rss(server.process.pid)
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            peak = max(peak, worker_rss(server.process.pid))
            time.sleep(0.02)
        after = worker_rss(server.process.pid)
    print(f"RSS peak {peak:.0f} MiB, after {after:.0f} MiB; statuses {sorted(set(statuses))}")
    assert statuses == [422] * 24
    assert peak < 300, f"{peak:.0f} MiB"
