"""Slow clients against a running server: many connections that send their
headers or their body at one byte a second, and meanwhile probes that time
`/healthz` and a paste read on fresh connections. Also the server's RSS
before, at the end of, and after the slow clients.

    .venv/bin/python bench/slowclients.py PORT PASTE_PATH [--connections 500] [--seconds 20]

Bounded: every connection is closed after `seconds`, and traffic goes to
127.0.0.1 only. Used by `make bench` (scenario slow-clients) and by
tests/test_slow_clients.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import psutil

HOST = "127.0.0.1"
PROBE_TIMEOUT = 5.0


@dataclass
class SlowClientResult:
    connections_opened: int
    healthz_ms: dict[str, float]
    read_ms: dict[str, float]
    probe_failures: int
    rss_mib_before: float
    rss_mib_during: float
    rss_mib_after: float


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {}
    cut = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered
    return {
        "p50": round(statistics.median(ordered), 2),
        "p99": round(cut[-1], 2),
        "max": round(ordered[-1], 2),
    }


async def _dribble(port: int, body: bool, stop: asyncio.Event, opened: list[int]) -> None:
    """One connection that sends a request's start, then a byte a second
    (of a header value, or of a declared body) until `stop`."""
    try:
        _, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return
    if body:
        head = (
            b"POST /api/v1/pastes HTTP/1.1\r\nHost: slow\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 100000\r\n\r\n"
        )
    else:
        head = b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: "
    try:
        writer.write(head)
        await writer.drain()
        opened.append(1)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except TimeoutError:
                writer.write(b"a")
                await writer.drain()
    except OSError:
        pass  # the server closed it (a timeout of its own): fine
    finally:
        writer.close()


async def _probe(port: int, path: str) -> float | None:
    """Milliseconds for one GET on a fresh connection; None when it failed."""
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), PROBE_TIMEOUT)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        reply = await asyncio.wait_for(reader.read(), PROBE_TIMEOUT)
        writer.close()
    except (OSError, TimeoutError):
        return None
    if not reply.startswith(b"HTTP/1.1 200"):
        return None
    return (time.perf_counter() - started) * 1000


def rss_mib(pids: Callable[[], list[int]]) -> float:
    """The summed resident memory of the processes, in MiB."""
    total = 0
    for pid in pids():
        with contextlib.suppress(psutil.Error):  # it exited meanwhile
            total += psutil.Process(pid).memory_info().rss
    return round(total / 2**20, 1)


async def _measure(
    port: int,
    paste_path: str,
    connections: int,
    seconds: float,
    probes: int,
    server_pids: Callable[[], list[int]],
    settle: float,
) -> SlowClientResult:
    before = rss_mib(server_pids)
    stop = asyncio.Event()
    opened: list[int] = []
    dribblers = [
        asyncio.create_task(_dribble(port, n % 2 == 1, stop, opened)) for n in range(connections)
    ]
    deadline = time.monotonic() + seconds
    while len(opened) < connections and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # every one has dribbled a byte or more
    healthz: list[float] = []
    reads: list[float] = []
    failures = 0
    for _ in range(probes):
        for path, samples in (("/healthz", healthz), (paste_path, reads)):
            elapsed = await _probe(port, path)
            if elapsed is None:
                failures += 1
            else:
                samples.append(elapsed)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    during = rss_mib(server_pids)
    stop.set()
    await asyncio.gather(*dribblers)
    await asyncio.sleep(settle)
    return SlowClientResult(
        connections_opened=len(opened),
        healthz_ms=_summary(healthz),
        read_ms=_summary(reads),
        probe_failures=failures,
        rss_mib_before=before,
        rss_mib_during=during,
        rss_mib_after=rss_mib(server_pids),
    )


def measure(
    port: int,
    paste_path: str,
    server_pids: Callable[[], list[int]],
    *,
    connections: int = 500,
    seconds: float = 20.0,
    probes: int = 50,
    settle: float = 2.0,
) -> SlowClientResult:
    """Hold `connections` slow clients open for `seconds` (half dribbling
    headers, half a body) while timing `probes` tries of each probe."""
    return asyncio.run(
        _measure(port, paste_path, connections, seconds, probes, server_pids, settle)
    )


def server_workers(master_pid: int) -> Callable[[], list[int]]:
    """The pids of a gunicorn master's worker processes, read when asked."""

    def pids() -> list[int]:
        try:
            return [child.pid for child in psutil.Process(master_pid).children()]
        except psutil.Error:
            return []

    return pids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("paste_path", help="a GET path that answers 200, e.g. /api/v1/pastes/ID")
    parser.add_argument("--master-pid", type=int, help="gunicorn's master, for the RSS figures")
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--probes", type=int, default=50)
    args = parser.parse_args()
    pids = server_workers(args.master_pid) if args.master_pid else list
    result = measure(
        args.port,
        args.paste_path,
        pids,
        connections=args.connections,
        seconds=args.seconds,
        probes=args.probes,
    )
    print(json.dumps(asdict(result), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
