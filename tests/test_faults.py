"""Fault tests: killed connections, an unreachable database, an exhausted pool,
a crash of every process, and a graceful shutdown under way."""

from __future__ import annotations

import asyncio
import http.client
import signal
import socket
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import replace
from pathlib import Path

import psutil
import psycopg
import pytest
from falcon import testing

from service.app import create_app
from service.db import Database
from service.errors import DatabaseBusy
from service.migrate import apply_migrations
from service.queries import Query
from tests.conftest import assert_problem, open_database, run, with_database
from tests.proxy import TcpProxy
from tests.servers import gunicorn
from tests.waiting import wait_for

pytestmark = pytest.mark.faults


def pooled_backends(sql) -> int:
    """Connections the app's pools hold open to the test's database."""
    return sql.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pastebin' "
        "AND datname = current_database()"
    ).fetchone()[0]


def app_with_pool(config, size: int) -> tuple[Database, testing.TestClient]:
    """An app on a pool of exactly `size` connections, all open."""
    db = open_database(replace(config, pool_min_size=size, pool_max_size=size))
    return db, testing.TestClient(create_app(config, db=db))


def kill_pooled_backends(sql) -> list[int]:
    """Terminate every connection of the app's pools, behind the pools' backs;
    the pids of those connections."""
    pids = [
        pid
        for (pid,) in sql.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE application_name = 'pastebin' AND datname = current_database()"
        ).fetchall()
    ]
    for pid in pids:
        sql.execute("SELECT pg_terminate_backend(%s)", [pid])
    assert wait_for(
        lambda: (
            not sql.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", [pids]).fetchone()
        ),
        timeout=10,
    )
    return pids


def test_killed_connections_are_replaced_and_the_next_requests_succeed(config, sql):
    db, client = app_with_pool(config, 4)
    try:
        paste = client.simulate_post("/api/v1/pastes", json={"content": "survivor"}).json
        assert len(kill_pooled_backends(sql)) == 4
        statuses = []
        for _ in range(5):
            statuses.append(client.simulate_get(f"/api/v1/pastes/{paste['id']}/raw").status_code)
            statuses.append(client.simulate_get("/api/v1/pastes").status_code)
            statuses.append(
                client.simulate_post("/api/v1/pastes", json={"content": "x"}).status_code
            )
        assert statuses == [200, 200, 201] * 5, client.simulate_get("/api/v1/pastes").text
    finally:
        run(db.close)


def test_a_read_on_a_lost_connection_runs_again_after_the_pool_checks_the_rest(config, sql):
    """A lost connection makes the pool check its idle ones (all of them dead
    here) and an idempotent read run once more: no request fails."""
    db, client = app_with_pool(config, 3)
    try:
        paste = client.simulate_post("/api/v1/pastes", json={"content": "again"}).json
        old = set(kill_pooled_backends(sql))
        result = client.simulate_get(f"/api/v1/pastes/{paste['id']}/raw")
        assert result.status_code == 200
        assert result.text == "again"
        assert db.stats().get("connections_lost", 0) >= 1
        # The pool replaced the dead connections: the next reads need no retry.
        lost = db.stats()["connections_lost"]
        for _ in range(5):
            assert client.simulate_get(f"/api/v1/pastes/{paste['id']}").status_code == 200
        assert db.stats()["connections_lost"] == lost
        assert not old & {
            pid
            for (pid,) in sql.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'pastebin' "
                "AND datname = current_database()"
            ).fetchall()
        }
    finally:
        run(db.close)


def test_a_create_on_a_lost_connection_is_not_run_again(config, sql):
    """A create may have committed before its connection broke: it answers
    503 rather than risk a second insert, and the next create succeeds."""
    db, client = app_with_pool(config, 2)
    try:
        kill_pooled_backends(sql)
        assert_problem(client.simulate_post("/api/v1/pastes", json={"content": "x"}), 503)
        assert sql.execute("SELECT count(*) FROM pastes").fetchone() == (0,)
        assert client.simulate_post("/api/v1/pastes", json={"content": "x"}).status_code == 201
    finally:
        run(db.close)


def test_unreachable_database_gives_fast_503s_and_recovers_by_itself(config, database_url):
    proxy = TcpProxy(database_url)
    proxy.restore()
    app_config = replace(
        config, database_url=proxy.url(database_url), pool_timeout=1.0, readiness_timeout=1.0
    )
    db = Database.from_config(app_config)
    run(db.open)
    client = testing.TestClient(create_app(app_config, db=db))
    try:
        paste = client.simulate_post("/api/v1/pastes", json={"content": "kept"}).json
        assert client.simulate_get("/readyz").status_code == 200

        proxy.cut()
        for path in (f"/api/v1/pastes/{paste['id']}", "/api/v1/pastes", "/readyz"):
            started = time.monotonic()
            result = client.simulate_get(path)
            elapsed = time.monotonic() - started
            assert_problem(result, 503)
            assert int(result.headers["retry-after"]) >= 1
            assert elapsed < 4, f"{path} took {elapsed:.1f} s to fail"
        create = client.simulate_post("/api/v1/pastes", json={"content": "x"})
        assert_problem(create, 503)
        assert client.simulate_get("/healthz").status_code == 200

        proxy.restore()
        restored = time.monotonic()
        assert wait_for(
            lambda: client.simulate_get(f"/api/v1/pastes/{paste['id']}/raw").status_code == 200,
            timeout=5,
            step=0.2,
        ), "did not recover within 5 s of the database coming back"
        assert time.monotonic() - restored < 5
        assert client.simulate_get("/readyz").status_code == 200
        assert client.simulate_post("/api/v1/pastes", json={"content": "y"}).status_code == 201
    finally:
        run(db.close)
        proxy.close()


def test_exhausted_pool_sheds_excess_requests_quickly(config):
    small = replace(config, pool_min_size=2, pool_max_size=2, pool_max_waiting=2, pool_timeout=1.0)
    db = open_database(small)
    app = create_app(small, db=db)

    async def timed_requests() -> list[tuple[int, float]]:
        held = [await db.pool.getconn() for _ in range(2)]  # two slow requests in progress
        try:
            async with testing.ASGIConductor(app) as conductor:

                async def request() -> tuple[int, float]:
                    started = time.monotonic()
                    result = await conductor.simulate_get("/api/v1/pastes")
                    return result.status_code, time.monotonic() - started

                return list(await asyncio.gather(*(request() for _ in range(8))))
        finally:
            for conn in held:
                await db.pool.putconn(conn)

    try:
        results = run(timed_requests)
        assert [status for status, _ in results] == [503] * 8
        fast = [elapsed for _, elapsed in results if elapsed < 0.5]
        # Two may wait the pool timeout; the rest are turned away at once.
        assert len(fast) >= 6
        assert max(elapsed for _, elapsed in results) < 3
        # Once connections are free again, requests are served.
        assert testing.TestClient(app).simulate_get("/api/v1/pastes").status_code == 200
    finally:
        run(db.close)


def test_runaway_statements_and_transactions_are_bounded(config):
    bounded = replace(config, statement_timeout_ms=200, idle_in_transaction_timeout_ms=300)
    db = Database(open_database(bounded).pool, {"slow": Query("slow", "SELECT pg_sleep(5)")})

    async def settings() -> list[tuple[str, ...]]:
        async with db.pool.connection() as conn:
            return [
                await (await conn.execute(f"SHOW {name}")).fetchone()
                for name in ("statement_timeout", "idle_in_transaction_session_timeout")
            ]

    try:
        started = time.monotonic()
        with pytest.raises(DatabaseBusy):
            run(db.one, "slow")
        assert time.monotonic() - started < 2
        assert run(settings) == [("200ms",), ("300ms",)]
    finally:
        run(db.close)


# --- whole processes --------------------------------------------------------


@pytest.fixture
def own_postgres():
    """A PostgreSQL of this test's own (fsync on), which it may crash at will."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
        from pgserver._commands import pg_ctl

    datadir = Path(tempfile.mkdtemp(prefix="pastebin-crash-pg-"))
    server = pgserver.get_server(datadir, cleanup_mode="delete")
    url = server.get_uri()

    def crash() -> None:
        pg_ctl(["-w", "stop", "-m", "immediate"], pgdata=datadir, user=server.system_user)

    try:
        yield url, crash, server.ensure_postgres_running
    finally:
        server.cleanup()


@pytest.mark.slow
def test_every_acknowledged_create_survives_a_crash_of_every_process(own_postgres):
    postgres_url, crash, restart = own_postgres
    name = "crash_" + uuid.uuid4().hex[:8]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = with_database(postgres_url, name)
    apply_migrations(database_url)

    acknowledged: dict[str, bytes] = {}
    lock = threading.Lock()
    stop = threading.Event()

    with gunicorn(database_url, LOG_LEVEL="WARNING") as server:

        def load(worker: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                content = f"worker {worker} paste {n}\r\n{uuid.uuid4()} ✓".encode()
                try:
                    status, _, body = server.request(
                        "POST",
                        "/api/v1/pastes",
                        body=content,
                        headers={"Content-Type": "text/plain", "Accept": "text/plain"},
                        timeout=5,
                    )
                except (OSError, http.client.HTTPException):  # killed mid-reply: not acknowledged
                    continue
                if status == 201:
                    paste_id = body.decode().strip().split("/")[-2]
                    with lock:
                        acknowledged[paste_id] = content

        threads = [threading.Thread(target=load, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        assert wait_for(lambda: len(acknowledged) >= 200, timeout=30)
        web = psutil.Process(server.process.pid)
        processes = [web, *web.children(recursive=True)]
        for process in processes:
            process.send_signal(signal.SIGKILL)
        crash()
        stop.set()
        for thread in threads:
            thread.join(timeout=10)

    restart()
    with psycopg.connect(database_url) as conn:
        rows = dict(
            conn.execute(
                "SELECT id, content FROM pastes WHERE id = ANY(%s)", [list(acknowledged)]
            ).fetchall()
        )
    missing = set(acknowledged) - set(rows)
    assert not missing, f"{len(missing)} acknowledged pastes were lost"
    for paste_id, content in acknowledged.items():
        assert rows[paste_id].encode() == content


def served_a_new_connection(port: int) -> bool:
    """Whether a connection opened now gets an HTTP answer. A stopping gunicorn
    no longer accepts: the connect is refused, or the kernel's backlog holds it
    until the listener closes and resets it, unanswered."""
    try:
        conn = socket.create_connection(("127.0.0.1", port), timeout=2)
    except ConnectionRefusedError:
        return False
    try:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        return conn.recv(100).startswith(b"HTTP/1.1")
    except OSError:  # reset, or no answer within the timeout
        return False
    finally:
        conn.close()


@pytest.mark.slow
def test_sigterm_finishes_accepted_requests_refuses_new_ones_and_closes_pools(database_url, sql):
    with gunicorn(database_url) as server:
        assert wait_for(lambda: pooled_backends(sql) >= 1, timeout=10)
        body = b"slow upload " * 1000
        conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        conn.sendall(
            b"POST /api/v1/pastes HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
            b"Accept: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:100]
        )
        time.sleep(0.5)  # the request is accepted and being read
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert not served_a_new_connection(server.port)
        conn.sendall(body[100:])
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.endswith(b"/raw\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
        conn.close()
        assert reply.startswith(b"HTTP/1.1 201"), reply[:200]
        server.process.wait(timeout=25)
        assert time.monotonic() - signalled < 20  # graceful_timeout
    assert server.returncode == 0
    assert "Traceback" not in server.log
    assert wait_for(lambda: pooled_backends(sql) == 0, timeout=5), (
        "pooled connections were left open"
    )
    raw_url = reply.split(b"\r\n\r\n", 1)[1].decode().strip()
    paste_id = raw_url.split("/")[-2]
    assert sql.execute("SELECT content FROM pastes WHERE id = %s", [paste_id]).fetchone() == (
        body.decode(),
    )
