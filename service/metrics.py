"""Prometheus metrics of the web process.

Under gunicorn every worker process writes its samples to
PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py) and /metrics aggregates
them all; without it, the process's own registry is served.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
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
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

REQUESTS = Counter(
    "pastebin_http_requests_total",
    "HTTP requests handled, by route template, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "pastebin_http_request_duration_seconds",
    "Time to handle an HTTP request, by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
PASTES_CREATED = Counter("pastebin_pastes_created_total", "Pastes created.")
PASTES_READ = Counter(
    "pastebin_pastes_read_total", "Reads that returned a paste's content (GET, not 304)."
)
PASTES_DELETED = Counter(
    "pastebin_pastes_deleted_total",
    "Pastes deleted, by reason: token (DELETE), burn (the one read of a "
    "burn-after-read paste), views (the last view), operator (removed).",
    ["reason"],
)
# Counted by this process; "operator" removals happen in `service.admin` and
# are counted from the tombstones they leave, at each scrape.
DELETE_REASONS = ("token", "burn", "views")
for _reason in DELETE_REASONS:  # every reason is exported from the start, at 0
    PASTES_DELETED.labels(_reason)
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


# Routes are templates, and methods and statuses few: `labels()` builds a
# key and takes a lock on every call, so each labelled child is kept.
@functools.cache
def _request_counter(route: str, method: str, status: int) -> Any:
    return REQUESTS.labels(route, method, str(status))


@functools.cache
def _latency(route: str, method: str, status: int) -> Any:
    return LATENCY.labels(route, method, str(status))


def record_request(route: str, method: str, status: int, seconds: float) -> None:
    _request_counter(route, method, status).inc()
    _latency(route, method, status).observe(seconds)


def record_pool(stats: dict[str, int]) -> None:
    size = stats.get("pool_size", 0)
    idle = stats.get("pool_available", 0)
    POOL_CONNECTIONS.labels("idle").set(idle)
    POOL_CONNECTIONS.labels("busy").set(max(0, size - idle))
    POOL_WAITING.set(stats.get("requests_waiting", 0))


class _WithOperatorRemovals(Collector):
    """`source`'s metrics, with the operator's removals added to the deleted counter."""

    def __init__(self, source: Any, removed_by_operator: int | None) -> None:
        self.source = source
        self.removed = removed_by_operator

    def collect(self) -> Iterable[Metric]:
        for family in self.source.collect():
            if family.name == "pastebin_pastes_deleted" and self.removed is not None:
                family.add_sample(
                    "pastebin_pastes_deleted_total", {"reason": "operator"}, self.removed
                )
            yield family


def exposition(removed_by_operator: int | None = None) -> tuple[bytes, str]:
    """The current metrics in Prometheus text format, and its content type;
    `removed_by_operator` is left out when unknown (the database is down)."""
    source: Any = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        source = prometheus_multiprocess.MultiProcessCollector(None)
    registry = CollectorRegistry()
    registry.register(_WithOperatorRemovals(source, removed_by_operator))
    return generate_latest(registry), CONTENT_TYPE_LATEST
