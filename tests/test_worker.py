"""The expiry worker against a real PostgreSQL: purging, replicas, faults, shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from service.config import Config
from service.db import SyncDatabase
from service.queries import load_queries
from service.worker import Worker, purge_batch
from tests.proxy import TcpProxy
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


def insert_pastes(sql, count: int, *, prefix: str, expired: bool, never: bool = False) -> None:
    """Bulk-insert `count` pastes: expired ones, live ones that expire later,
    or (never=True) ones that never expire."""
    if never:
        expires = "NULL"
    elif expired:
        expires = "now() - interval '1 second' - n * interval '1 millisecond'"
    else:
        expires = "now() + interval '1 day'"
    sql.execute(
        f"""
        INSERT INTO pastes (id, content, size, created_at, expires_at, delete_token_hash)
        SELECT %(prefix)s || lpad(n::text, 10, '0'), 'x', 1,
               now() - interval '2 days', {expires}, '\\x00'
          FROM generate_series(1, %(count)s) AS n
        """,
        {"prefix": prefix, "count": count},
    )


def count(sql, where: str = "true") -> int:
    return sql.execute(f"SELECT count(*) FROM pastes WHERE {where}").fetchone()[0]


def ids_left(sql) -> list[str]:
    return [row[0] for row in sql.execute("SELECT id FROM pastes ORDER BY id").fetchall()]


@contextmanager
def running(worker: Worker) -> Iterator[threading.Thread]:
    """`worker.run()` in a thread for the block; stopped and joined after it."""
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        yield thread
    finally:
        worker.stop.set()
        thread.join(timeout=10)


def worker_db(config: Config, **changes) -> SyncDatabase:
    return SyncDatabase.from_config(replace(config, **changes))


def test_run_once_deletes_only_expired_pastes(config, sql):
    insert_pastes(sql, 2500, prefix="old", expired=True)
    insert_pastes(sql, 300, prefix="live", expired=False)
    insert_pastes(sql, 200, prefix="ever", expired=False, never=True)
    db = worker_db(config)
    try:
        worker = Worker(db, batch=1000, interval=10)
        tick = worker.run_once()
    finally:
        db.close()
    assert tick.purged == 2500
    assert tick.batches == 3  # 1000 + 1000 + 500: drained in one tick
    assert count(sql, "id LIKE 'old%'") == 0
    assert count(sql) == 500


def test_a_drain_resumes_where_its_last_batch_ended_and_misses_no_tie(config, sql):
    # 2,500 rows share one expiry: every batch boundary falls inside the tie.
    sql.execute(
        """
        INSERT INTO pastes (id, content, size, created_at, expires_at, delete_token_hash)
        SELECT 'tie' || lpad(n::text, 10, '0'), 'x', 1, now() - interval '2 days',
               date_trunc('second', now()) - interval '1 hour', '\\x00'
          FROM generate_series(1, 2500) AS n
        """
    )
    insert_pastes(sql, 1500, prefix="old", expired=True)  # later expiries, all distinct
    expiries = sql.execute("SELECT max(expires_at) FROM pastes WHERE id LIKE 'tie%'").fetchone()
    db = worker_db(config)
    try:
        first = purge_batch(db, 1000)
        assert first.purged == 1000
        assert first.last_expiry == expiries[0]
        # Rows that expired before `after` are left alone; the tie itself is not.
        later = purge_batch(db, 10_000, after=expiries[0] + timedelta(microseconds=1))
        assert later.purged == 1500
        assert count(sql, "id LIKE 'tie%'") == 1500
        tick = Worker(db, batch=1000, interval=10).run_once()
    finally:
        db.close()
    assert tick.purged == 1500
    assert count(sql) == 0


def test_purge_query_is_served_by_the_partial_expiry_index(sql):
    insert_pastes(sql, 5000, prefix="live", expired=False)
    insert_pastes(sql, 5000, prefix="ever", expired=False, never=True)
    sql.execute("ANALYZE pastes")
    plan = "\n".join(
        row[0]
        for row in sql.execute(
            "EXPLAIN " + load_queries()["purge_expired_batch"].sql,
            {"batch": 1000, "after": None},
        ).fetchall()
    )
    assert "pastes_expires_at_idx" in plan
    assert "Seq Scan" not in plan


def test_three_replicas_drain_a_backlog_disjointly_without_waiting(config, sql):
    insert_pastes(sql, 50_000, prefix="old", expired=True)
    insert_pastes(sql, 5_000, prefix="live", expired=False)
    insert_pastes(sql, 1_000, prefix="ever", expired=False, never=True)
    # A low lock_timeout turns any wait on another replica's row locks into an error.
    dbs = [worker_db(config, lock_timeout_ms=50) for _ in range(3)]
    workers = [Worker(db, batch=500, interval=10, worker_id=f"w{i}") for i, db in enumerate(dbs)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)
    purged: dict[str, int] = {}

    def run(worker: Worker) -> None:
        barrier.wait()
        try:
            purged[worker.worker_id] = worker.run_once().purged
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        for db in dbs:
            db.close()
    assert errors == []
    # Every row gone and the counts add up exactly: no row counted by two replicas.
    assert sum(purged.values()) == 50_000
    assert all(purged[w.worker_id] > 0 for w in workers), "every replica took a share"
    assert count(sql, "id LIKE 'old%'") == 0
    assert count(sql) == 6_000


def test_purge_skips_rows_another_transaction_holds(config, sql, database_url):
    import psycopg

    insert_pastes(sql, 10, prefix="old", expired=True)
    db = worker_db(config, lock_timeout_ms=50)
    try:
        with psycopg.connect(database_url) as holder:
            holder.execute("SELECT id FROM pastes WHERE id <= 'old0000000004' FOR UPDATE")
            assert purge_batch(db, 100).purged == 6
            assert ids_left(sql) == [f"old{n:010d}" for n in range(1, 5)]
        assert purge_batch(db, 100).purged == 4
        assert ids_left(sql) == []
    finally:
        db.close()


def test_unreachable_database_is_backed_off_not_spun_on():
    config = Config(
        app_env="testing",
        database_url="postgresql://nobody@127.0.0.1:9/none",
        pool_timeout=0.2,
        connect_timeout=1,
        log_level="CRITICAL",
    )
    db = worker_db(config)
    worker = Worker(db, interval=0.01)
    try:
        with running(worker) as thread:
            time.sleep(3.5)
    finally:
        db.close()
    assert not thread.is_alive()
    failed = worker.metrics.failed_ticks._value.get()
    # Backoff 1 s, 2 s, ...: a handful of attempts, not hundreds.
    assert 2 <= failed <= 4


def test_an_unexpected_query_error_is_survived_too(config, sql):
    from service.queries import Query

    insert_pastes(sql, 1, prefix="old", expired=True)  # so that a batch is run
    db = worker_db(config)
    broken = SyncDatabase(db.pool, {**db.queries, "purge_expired_batch": Query("p", "SELECT 1/0")})
    worker = Worker(broken, interval=0.01)
    try:
        with running(worker) as thread:
            assert wait_for(lambda: worker.metrics.failed_ticks._value.get() >= 2, timeout=10)
            assert thread.is_alive()
    finally:
        db.close()


@pytest.mark.faults
def test_worker_started_while_database_is_down_purges_once_it_is_up(config, sql, database_url):
    proxy = TcpProxy(database_url)  # not listening yet: the database is "down"
    db = worker_db(replace(config, database_url=proxy.url(database_url), pool_timeout=0.5))
    worker = Worker(db, interval=0.2)
    try:
        with running(worker) as thread:
            time.sleep(1.5)
            assert worker.metrics.failed_ticks._value.get() >= 1
            insert_pastes(sql, 100, prefix="old", expired=True)
            proxy.restore()
            assert wait_for(lambda: count(sql) == 0, timeout=40)
    finally:
        db.close()
        proxy.close()
    assert not thread.is_alive()


@pytest.mark.faults
def test_worker_recovers_when_its_connection_is_terminated(config, sql):
    db = worker_db(config)
    worker = Worker(db, interval=0.2)
    try:
        with running(worker) as thread:
            assert wait_for(lambda: worker.metrics.ticks._value.get() >= 1, timeout=10)
            terminated = sql.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'pastebin-worker' AND datname = current_database()"
            ).fetchone()[0]
            assert terminated >= 1
            insert_pastes(sql, 100, prefix="old", expired=True)
            assert wait_for(lambda: count(sql) == 0, timeout=20)
            assert thread.is_alive()
    finally:
        db.close()


def worker_process(database_url: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "service.worker"],
        cwd=ROOT,
        env={
            **os.environ,
            "APP_ENV": "testing",
            "LOG_JSON": "true",
            "DATABASE_URL": database_url,
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_sigterm_mid_drain_exits_zero_soon_having_deleted_what_it_reported(sql, database_url):
    insert_pastes(sql, 300_000, prefix="old", expired=True)
    insert_pastes(sql, 1_000, prefix="live", expired=False)
    process = worker_process(database_url, WORKER_BATCH="500", WORKER_INTERVAL="10")
    try:
        assert wait_for(lambda: count(sql, "id LIKE 'old%'") < 300_000, timeout=30, step=0.02)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
        elapsed = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert elapsed < 3.0
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    reported = sum(e["purged"] for e in events if e["event"] == "expired_pastes_deleted")
    names = [e["event"] for e in events]
    assert "worker_started" in names
    assert "worker_stopped" in names
    remaining = count(sql, "id LIKE 'old%'")
    assert remaining > 0, "the drain was interrupted, not finished"
    assert reported == 300_000 - remaining
    assert count(sql, "id LIKE 'live%'") == 1_000


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORKER_INTERVAL": "abc"}, "WORKER_INTERVAL"),
        ({"WORKER_INTERVAL": "0"}, "WORKER_INTERVAL"),
        ({"WORKER_BATCH": "-3"}, "WORKER_BATCH"),
        ({"DATABASE_URL": "not a url = ="}, "DATABASE_URL"),
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
    ],
)
def test_configuration_errors_exit_nonzero_at_once_with_a_reason(database_url, env, message):
    process = worker_process(env.pop("DATABASE_URL", database_url), **env)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode != 0
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_worker_metrics_are_served(database_url, sql):
    import socket
    import urllib.request

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    insert_pastes(sql, 10, prefix="old", expired=True)
    process = worker_process(database_url, WORKER_METRICS_PORT=str(port), WORKER_INTERVAL="0.2")
    try:

        def purged_metric() -> float:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                return -1
            for line in text.splitlines():
                if line.startswith("pastebin_worker_purged_total "):
                    return float(line.split()[1])
            return -1

        assert wait_for(lambda: purged_metric() == 10, timeout=20)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
    assert process.returncode == 0


def test_a_purge_in_progress_never_blocks_live_traffic(make_client, sql, database_url):
    import psycopg

    client = make_client()
    live = client.simulate_post("/api/v1/pastes", json={"content": "live"}).json
    burn = client.simulate_post(
        "/api/v1/pastes", json={"content": "b", "burn_after_read": True}
    ).json
    insert_pastes(sql, 2000, prefix="old", expired=True)
    with psycopg.connect(database_url) as purger:
        # A purge that has claimed and deleted every expired row but not committed.
        purger.execute("SET lock_timeout = 0")
        purger.execute(
            load_queries()["purge_expired_batch"].sql,
            {"batch": 5000, "after": None},
        )
        with psycopg.connect(database_url, autocommit=True) as other:
            other.execute("SET lock_timeout = '200ms'")
            other.execute("SELECT id FROM pastes WHERE id = %s FOR UPDATE", [live["id"]])
        started = time.monotonic()
        assert client.simulate_get(f"/api/v1/pastes/{live['id']}/raw").text == "live"
        assert client.simulate_get(f"/api/v1/pastes/old{1:010d}").status_code == 404
        assert client.simulate_get(f"/api/v1/pastes/{burn['id']}").status_code == 200
        assert client.simulate_post("/api/v1/pastes", json={"content": "new"}).status_code == 201
        assert client.simulate_get("/api/v1/pastes").status_code == 200
        deleted = client.simulate_delete(
            f"/api/v1/pastes/{live['id']}",
            headers={"Authorization": f"Bearer {live['delete_token']}"},
        )
        assert deleted.status_code == 204
        expired_delete = client.simulate_delete(
            f"/api/v1/pastes/old{2:010d}", headers={"Authorization": "Bearer x"}
        )
        assert expired_delete.status_code == 404
        assert time.monotonic() - started < 1.5
        purger.rollback()
