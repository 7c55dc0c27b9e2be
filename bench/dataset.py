"""The data a benchmark runs on: pastes created through the API, the listing's
deep page, id files for wrk and the create body."""

from __future__ import annotations

import http.client
import json
import random
import string
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import psycopg

PASTES = "/api/v1/pastes"
PEER_CREATE = "/documents"  # haste-server's API
PASTE_BYTES = 1024
REQUEST_TIMEOUT = 10.0


def paste_content(rng: random.Random, size: int = PASTE_BYTES) -> str:
    """`size` bytes of printable ASCII in 64-byte lines, different for every paste."""
    chars = rng.choices(string.ascii_letters + string.digits + " ", k=size)
    for newline in range(63, size, 64):
        chars[newline] = "\n"
    return "".join(chars)


def write_create_body(path: Path, size: int = PASTE_BYTES) -> str:
    """The JSON body the create scenarios POST: {"content": size bytes}; the
    content alone goes beside it, as `path` with `.txt`, for a peer."""
    content = paste_content(random.Random(42), size)
    path.write_text(json.dumps({"content": content}))
    path.with_suffix(".txt").write_text(content)
    return content


class _Client:
    """One keep-alive HTTP connection to the service, re-opened on failure."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)
            raise

    def close(self) -> None:
        self.conn.close()


def create_pastes(
    host: str, port: int, count: int, *, threads: int = 4, timeout: float = 600, peer: bool = False
) -> list[str]:
    """Create `count` public 1 KiB pastes with POSTs from a few threads; their
    ids. With `peer`, through a haste-server-style API (POST /documents with
    the raw text, answered {"key": …})."""
    ids: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + timeout
    shares = [count // threads + (1 if n < count % threads else 0) for n in range(threads)]

    def create(share: int, seed: int) -> None:
        rng = random.Random(seed)
        client = _Client(host, port)
        try:
            for _ in range(share):
                if time.monotonic() > deadline or failures:
                    return
                if peer:
                    content = paste_content(rng).encode()
                    status, reply = client.request("POST", PEER_CREATE, content, "text/plain")
                    made = json.loads(reply)["key"] if status == 200 else None
                else:
                    body = json.dumps({"content": paste_content(rng), "visibility": "public"})
                    status, reply = client.request("POST", PASTES, body.encode())
                    made = json.loads(reply)["id"] if status == 201 else None
                with lock:
                    if made is not None:
                        ids.append(made)
                    else:
                        failures.append(f"{status} {reply[:200]!r}")
        except (OSError, http.client.HTTPException) as exc:
            with lock:
                failures.append(repr(exc))
        finally:
            client.close()

    workers = [
        threading.Thread(target=create, args=(share, n), daemon=True)
        for n, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()) + 1)
    if failures or len(ids) != count:
        raise RuntimeError(f"seeding made {len(ids)} of {count} pastes; first failure: {failures}")
    return ids


def walk_cursors(host: str, port: int, depth: int, limit: int) -> str:
    """Follow next_cursor `depth` times from the first page; the path of the
    page reached (the one the deep-listing scenario asks for again and again)."""
    client = _Client(host, port)
    path = f"{PASTES}?{urlencode({'limit': limit})}"
    try:
        for step in range(depth):
            status, reply = client.request("GET", path)
            cursor = json.loads(reply).get("next_cursor") if status == 200 else None
            if not cursor:
                raise RuntimeError(f"the listing ended after {step} cursor(s) (status {status})")
            path = f"{PASTES}?{urlencode({'limit': limit, 'cursor': cursor})}"
        status, reply = client.request("GET", path)
        if status != 200 or len(json.loads(reply)["items"]) != limit:
            raise RuntimeError(f"page {depth + 1} of the listing is not a full page")
        return path
    finally:
        client.close()


def count_listed(db_url: str) -> int:
    """Rows the public listing can show: public and live. The bench makes no
    view-limited or password pastes, and a baseline's older schema has no
    such columns."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            """
            SELECT count(*) FROM pastes
             WHERE visibility = 'public' AND (expires_at IS NULL OR expires_at > now())
            """
        ).fetchone()
    return int(row[0]) if row else 0


def count_rows(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM pastes").fetchone()
    return int(row[0]) if row else 0


def sample_ids(db_url: str, count: int) -> list[str]:
    """`count` random readable ids from the whole table (one scan, before the run)."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            """
            SELECT id FROM pastes
             WHERE max_views IS NULL AND (expires_at IS NULL OR expires_at > now())
             ORDER BY random() LIMIT %(count)s
            """,
            {"count": count},
        ).fetchall()
    return [row[0] for row in rows]


def write_ids(path: Path, ids: list[str]) -> Path:
    path.write_text("".join(f"{paste_id}\n" for paste_id in ids))
    return path
