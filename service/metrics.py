"""Prometheus metrics of the web process.

Under gunicorn every worker process writes its samples to
PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py) and /metrics aggregates
them all; without it, the process's own registry is served.
"""

from __future__ import annotations

import bisect
import functools
import os
import threading
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

from service.background import Periodic

REQUESTS = Counter(
    "pastebin_http_requests_total",
    "HTTP requests handled, by route template, method and status.",
    ["route", "method", "status"],
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY = Histogram(
    "pastebin_http_request_duration_seconds",
    "Time to handle an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
# Pastes created and read are requests_total of their routes with status 201
# and 200; deletions are counted here because a burn is not a DELETE request.
PASTES_DELETED = Counter(
    "pastebin_pastes_deleted_total",
    "Pastes deleted by the web process, by reason (token or burn).",
    ["reason"],
)
POOL_CONNECTIONS = Gauge(
    "pastebin_db_pool_connections",
    "Connections of this process's pool, by state.",
    ["state"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "pastebin_db_pool_requests_waiting",
    "Requests waiting for a pooled connection.",
    multiprocess_mode="livesum",
)


FLUSH_SECONDS = 1.0


class RequestTally:
    """Request counts and latencies, summed in this process and added to the
    Prometheus metrics at most FLUSH_SECONDS later.

    Under gunicorn every increment of a multiprocess metric takes a global
    lock, asks the kernel for the pid and writes the shared file; with three
    per request (count, latency sum, latency bucket) and a per-route counter,
    that was 9 % of a raw read's instructions in the service's own process.
    Summing here costs a dict update; a scrape sees this process's requests
    at once (`flush` runs first) and the other processes' within FLUSH_SECONDS
    (their flusher threads).
    """

    def __init__(self, counter: Counter, histogram: Histogram, buckets: tuple[float, ...]):
        self.counter = counter
        self.histogram = histogram
        self.buckets = buckets
        self._lock = threading.Lock()
        # (route, method, status) -> count; (route, method) -> [per bucket…, +Inf, sum]
        self._counts: dict[tuple[str, str, int], int] = {}
        self._latencies: dict[tuple[str, str], list[float]] = {}
        # One thread per process, so that an idle worker's last requests show too.
        self._flusher = Periodic(self.flush, FLUSH_SECONDS, "metrics-flush")
        # A forked child's counts are the parent's to flush, not its own.
        os.register_at_fork(after_in_child=self._forget_pending)

    def add(self, route: str, method: str, status: int, seconds: float) -> None:
        # A bucket's bound is inclusive (`le`): the first bound >= seconds.
        bucket = bisect.bisect_left(self.buckets, seconds)
        with self._lock:
            key = (route, method, status)
            self._counts[key] = self._counts.get(key, 0) + 1
            latency = self._latencies.get((route, method))
            if latency is None:
                latency = self._latencies[route, method] = [0.0] * (len(self.buckets) + 2)
            latency[bucket] += 1
            latency[-1] += seconds
        if not self._flusher.started:
            self._flusher.start()

    def flush(self) -> None:
        """Add what was summed since the last flush to the metrics."""
        with self._lock:
            counts, self._counts = self._counts, {}
            latencies, self._latencies = self._latencies, {}
        for (route, method, status), count in counts.items():
            _request_counter(self.counter, route, method, status).inc(count)
        for (route, method), latency in latencies.items():
            child = _latency_histogram(self.histogram, route, method)
            # prometheus_client has no public "observe n values": the child's
            # own bucket and sum values are what observe() increments.
            for bucket, observed in enumerate(latency[:-1]):
                if observed:
                    child._buckets[bucket].inc(observed)
            child._sum.inc(latency[-1])

    def _forget_pending(self) -> None:
        self._lock = threading.Lock()  # the parent's may have been held at the fork
        self._counts, self._latencies = {}, {}


# Routes are templates and methods and statuses few, so the labelled children
# are cached: `labels()` takes a lock and builds a key on every call otherwise.
@functools.cache
def _request_counter(counter: Counter, route: str, method: str, status: int) -> Any:
    return counter.labels(route, method, str(status))


@functools.cache
def _latency_histogram(histogram: Histogram, route: str, method: str) -> Any:
    return histogram.labels(route, method)


REQUEST_TALLY = RequestTally(REQUESTS, LATENCY, LATENCY_BUCKETS)


def record_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one request and its latency (in the metrics within FLUSH_SECONDS)."""
    REQUEST_TALLY.add(route, method, status, seconds)


def flush() -> None:
    """Put this process's pending request counts into the metrics now."""
    REQUEST_TALLY.flush()


def record_pool(stats: dict[str, int]) -> None:
    size = stats.get("pool_size", 0)
    idle = stats.get("pool_available", 0)
    POOL_CONNECTIONS.labels("idle").set(idle)
    POOL_CONNECTIONS.labels("busy").set(max(0, size - idle))
    POOL_WAITING.set(stats.get("requests_waiting", 0))


def exposition() -> tuple[bytes, str]:
    """The current metrics in Prometheus text format, and its content type."""
    flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
