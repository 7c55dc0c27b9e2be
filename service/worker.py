"""The expiry worker: deletes expired pastes in batches, forever.

Run `python -m service.worker` (or `make worker`). Each batch is claimed and
deleted by one statement with `FOR UPDATE SKIP LOCKED`, in its own short
transaction, so any number of replicas share the work without waiting on each
other or deleting a row twice. SIGTERM/SIGINT stop it after the batch in hand.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from types import FrameType
from typing import NamedTuple

import structlog
from prometheus_client import CollectorRegistry, Counter, start_http_server

from service.config import Config, ConfigError
from service.db import SyncDatabase
from service.errors import DatabaseUnavailable
from service.logs import configure_logging
from service.ratelimit import delete_stale_buckets

log = structlog.get_logger("service.worker")

JITTER = 0.1  # each sleep is the interval ± 10 %, so replicas drift apart
BACKOFF_START = 1.0
BACKOFF_CAP = 30.0
ORPHAN_REPORT_BATCH = 10_000


class Batch(NamedTuple):
    purged: int
    last_expiry: datetime | None  # the latest expiry among them; None if none


def purge_batch(db: SyncDatabase, batch: int, after: datetime | None = None) -> Batch:
    """Claim and delete up to `batch` expired pastes that expired at or after
    `after` (pass the previous batch's last_expiry while draining)."""
    row = db.one("purge_expired_batch", batch=batch, after=after)
    assert row is not None  # count(*) always yields a row
    return Batch(purged=row["purged"], last_expiry=row["last_expiry"])


@dataclass(frozen=True, slots=True)
class Tick:
    purged: int
    batches: int
    seconds: float
    stale_buckets: int = 0
    orphan_reports: int = 0


class WorkerMetrics:
    """The worker's own counters, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.purged = Counter(
            "pastebin_worker_purged_total", "Expired pastes deleted.", registry=self.registry
        )
        self.failed_ticks = Counter(
            "pastebin_worker_failed_ticks_total",
            "Ticks that failed (database unavailable or a query error).",
            registry=self.registry,
        )
        self.ticks = Counter("pastebin_worker_ticks_total", "Ticks run.", registry=self.registry)


class Worker:
    """Purges expired pastes every `interval` seconds until `stop` is set."""

    def __init__(
        self,
        db: SyncDatabase,
        *,
        batch: int = 1000,
        interval: float = 10.0,
        stop: threading.Event | None = None,
        worker_id: str | None = None,
        metrics: WorkerMetrics | None = None,
        rate_limit_retention: int = 3600,
    ) -> None:
        self.db = db
        self.rate_limit_retention = rate_limit_retention
        self.batch = batch
        self.interval = interval
        self.stop = stop or threading.Event()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.metrics = metrics or WorkerMetrics()

    def run_once(self) -> Tick:
        """Drain the backlog: take batches, each its own short transaction,
        until one comes back short or a stop is asked for. Raises
        DatabaseUnavailable if the database fails."""
        started = time.perf_counter()
        purged = batches = 0
        after = None
        while True:
            deleted, after = purge_batch(self.db, self.batch, after)
            batches += 1
            purged += deleted
            self.metrics.purged.inc(deleted)
            if deleted < self.batch or self.stop.is_set():
                break
        stale = orphans = 0
        if not self.stop.is_set():
            stale = delete_stale_buckets(self.db, idle_seconds=self.rate_limit_retention)
            # Reports of pastes that are gone: a paste's reports do not
            # cascade (that would cost every purge), so they go here.
            orphans = self.db.execute("delete_orphan_reports", batch=ORPHAN_REPORT_BATCH)
        tick = Tick(
            purged=purged,
            batches=batches,
            seconds=time.perf_counter() - started,
            stale_buckets=stale,
            orphan_reports=orphans,
        )
        self.metrics.ticks.inc()
        if purged or stale or orphans:
            log.info(
                "expired_pastes_deleted",
                purged=purged,
                batches=batches,
                stale_rate_limit_buckets=stale,
                orphan_reports=orphans,
                duration_ms=round(tick.seconds * 1000, 1),
                worker_id=self.worker_id,
            )
        return tick

    def run(self) -> None:
        """Tick until stopped; database failures are logged and backed off."""
        log.info(
            "worker_started", worker_id=self.worker_id, interval=self.interval, batch=self.batch
        )
        backoff = 0.0
        delay = 0.0  # the first tick runs at once
        while not self.stop.wait(delay):
            try:
                self.run_once()
            except Exception as exc:  # never die of a failed tick: log, back off, go on
                self.metrics.failed_ticks.inc()
                backoff = min(BACKOFF_CAP, backoff * 2 if backoff else BACKOFF_START)
                log.warning(
                    "worker_tick_failed",
                    unexpected=not isinstance(exc, DatabaseUnavailable),
                    worker_id=self.worker_id,
                    error=type(exc).__name__,
                    cause=type(exc.__cause__).__name__ if exc.__cause__ else None,
                    retry_in_s=backoff,
                )
                delay = backoff
                continue
            backoff = 0.0
            delay = self.interval * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 - jitter, not crypto
        log.info("worker_stopped", worker_id=self.worker_id)


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop`; the batch in hand still commits."""

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("worker_stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main() -> int:
    try:
        config = Config.from_env()
        if not config.database_url:
            raise ConfigError("DATABASE_URL is required")
        db = SyncDatabase.from_config(config)
    except ConfigError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    configure_logging(config)
    stop = threading.Event()
    install_signal_handlers(stop)
    metrics = WorkerMetrics()
    if config.worker_metrics_port:
        start_http_server(
            config.worker_metrics_port, addr=config.worker_metrics_host, registry=metrics.registry
        )
    worker = Worker(
        db,
        batch=config.worker_batch,
        interval=config.worker_interval,
        stop=stop,
        metrics=metrics,
        rate_limit_retention=config.rate_limit_retention_seconds,
    )
    try:
        worker.run()
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
