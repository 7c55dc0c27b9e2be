"""Purge throughput: N expiry-worker processes draining a backlog of expired rows.

    .venv/bin/python bench/purge.py [--rows 1000000] [--workers 1,2,4] [--batch 1000]

Runs against BENCH_DATABASE_URL / DATABASE_URL (a superuser URL; a scratch
database is created and dropped), else an embedded PostgreSQL. For each worker
count: seed the backlog, start that many `python -m service.worker` processes at
once, and time until no expired row is left. Prints rows/s per worker count.
Also measures the purge ceiling: the worker's own batch statement in a bare
psycopg loop, one transaction per batch.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import baseline
from bench.common import ROOT, scratch_database, seed_expired, server_url
from service.queries import load_queries


def backlog_left(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM pastes WHERE expires_at <= now())").fetchone()
    return bool(row and row[0])


def run_workers(
    db_url: str,
    workers: int,
    batch: int,
    timeout: float,
    *,
    gated: bool = False,
    root: Path = ROOT,
) -> float:
    """Seconds for `workers` worker processes (of the checkout in `root`) to
    drain the backlog.

    `gated`: the clock starts when every process is ready to purge. Until
    then a lock on the table holds their first batch back, so starting an
    interpreter and importing the service are no part of the time, as the
    bare loop's connect is no part of its: each process takes about 0.2 s of
    CPU to start, and four of them on 2 cores are a tenth of a 1,000,000-row
    drain. (Not while the service serves the table: the lock would hold its
    reads back too.)
    """
    env = {
        **baseline.environment(root, os.environ),
        "DATABASE_URL": db_url,
        "APP_ENV": "development",
        "WORKER_BATCH": str(batch),
        "WORKER_INTERVAL": "3600",  # one drain per process, then idle
        "LOG_LEVEL": "WARNING",
        "DB_LOCK_TIMEOUT_MS": "0",  # a gated batch waits for the gate, however long
    }
    with psycopg.connect(db_url, autocommit=True) as conn, psycopg.connect(db_url) as gate:
        if gated:
            # SHARE conflicts with the ROW EXCLUSIVE lock every DELETE takes first.
            gate.execute("LOCK TABLE pastes IN SHARE MODE")
        spawned = time.perf_counter()
        processes = [
            subprocess.Popen([sys.executable, "-m", "service.worker"], cwd=root, env=env)
            for _ in range(workers)
        ]
        try:
            started = spawned
            if gated:
                while waiting_on(conn, "pastes") < workers:
                    if time.perf_counter() - spawned > timeout:
                        raise TimeoutError(f"{workers} worker(s) did not start in {timeout} s")
                    time.sleep(0.01)
                started = time.perf_counter()
                gate.commit()
            while backlog_left(conn):
                if time.perf_counter() - spawned > timeout:
                    raise TimeoutError(f"{workers} worker(s) did not drain in {timeout} s")
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(timeout=30)
    return elapsed


def waiting_on(conn: psycopg.Connection, table: str) -> int:
    """How many sessions wait for a lock on `table`."""
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted", [table]
    ).fetchone()
    return int(row[0]) if row else 0


def bare_loop(db_url: str, batch: int) -> float:
    """Seconds for the purge statement in a bare loop to drain the backlog."""
    statement = load_queries()["purge_expired_batch"].sql
    with psycopg.connect(db_url) as conn:
        started = time.perf_counter()
        after = None  # each batch starts where the last ended, as the worker's do
        while True:
            with conn.transaction():
                row = conn.execute(statement, {"batch": batch, "after": after}).fetchone()
                deleted, after = row if row else (0, None)
            if deleted < batch:
                break
        return time.perf_counter() - started


def measure(
    db_url: str, rows: int, counts: list[int], batch: int, timeout: float
) -> dict[str, float]:
    """Rows/s of the bare loop ("ceiling") and of each worker count ("workers_N"),
    each draining a fresh backlog of `rows` expired rows in `db_url`."""
    results: dict[str, float] = {}
    seed_expired(db_url, rows)
    seconds = bare_loop(db_url, batch)
    results["ceiling"] = rows / seconds
    print(f"purge ceiling (bare loop): {results['ceiling']:,.0f} rows/s", flush=True)
    for workers, rate in worker_rates(db_url, rows, counts, batch, timeout).items():
        results[f"workers_{workers}"] = rate
        print(
            f"{workers} worker(s): {rows:,} rows in {rows / rate:.2f} s = {rate:,.0f} rows/s "
            f"({rate / results['ceiling']:.0%} of ceiling)",
            flush=True,
        )
    return results


def worker_rates(
    db_url: str, rows: int, counts: list[int], batch: int, timeout: float, *, root: Path = ROOT
) -> dict[int, float]:
    """Rows/s of each worker count (the checkout in `root`), each draining a
    fresh backlog of `rows` expired rows in `db_url`."""
    rates: dict[int, float] = {}
    for workers in counts:
        seed_expired(db_url, rows)
        seconds = run_workers(db_url, workers, batch, timeout, gated=True, root=root)
        rates[workers] = rows / seconds
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    with server_url() as url, scratch_database(url) as db_url:
        results = measure(db_url, args.rows, counts, args.batch, args.timeout)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
