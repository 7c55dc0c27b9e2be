"""The service behind pgbouncer in transaction mode (DB_PREPARED_STATEMENTS=false):
every query path, the burn race, worker replicas and outages, through a real
pgbouncer (tests/pgbouncer.py) whose few server connections every client shares.

The timeouts are the role's defaults in the test's database, as README,
Operations, tells operators to set them. Tests marked `pgbouncer` skip when
the binary is missing; the two first tests need no pgbouncer.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import psycopg
import pytest
import structlog
from falcon import testing

from service.app import create_app
from service.config import Config
from service.db import Database, SyncDatabase, connection_kwargs
from service.errors import DatabaseBusy
from service.queries import Query, load_queries
from tests.conftest import assert_problem, concurrently, open_database, run
from tests.pgbouncer import PgBouncer, running_pgbouncer, set_role_defaults
from tests.proxy import TcpProxy
from tests.servers import gunicorn
from tests.test_worker import count, insert_pastes, worker_process
from tests.waiting import wait_for

PATH = "/api/v1/pastes"
through_pgbouncer = pytest.mark.pgbouncer

# Statements that leave state on a server connection past their transaction:
# behind a transaction-mode pooler the next client would find it there.
SESSION_STATE = re.compile(
    r"^\s*(SET(?!\s+LOCAL\b)|RESET|LISTEN|UNLISTEN|PREPARE|DEALLOCATE|DISCARD|LOAD)\b"
    r"|pg_(try_)?advisory_lock(_shared)?\s*\("
    r"|set_config\s*\([^)]*,\s*false\s*\)"
    r"|\bCREATE\s+(TEMP|TEMPORARY)\b"
    r"|\bWITH\s+HOLD\b",
    re.IGNORECASE | re.MULTILINE,
)


def test_no_named_query_leaves_session_state():
    offenders = {
        name: match.group(0)
        for name, query in load_queries().items()
        if (match := SESSION_STATE.search(query.sql))
    }
    assert offenders == {}


def test_pooler_mode_prepares_nothing_and_sends_no_startup_options():
    direct = connection_kwargs(Config(), "pastebin")
    assert "-c statement_timeout=5000" in direct["options"]
    assert "prepare_threshold" not in direct  # psycopg's default: prepare after 5 runs
    pooled = connection_kwargs(Config(db_prepared_statements=False), "pastebin")
    assert pooled["prepare_threshold"] is None
    assert "options" not in pooled
    assert Config.from_env({"DB_PREPARED_STATEMENTS": "false"}).db_prepared_statements is False


# --- through pgbouncer -------------------------------------------------------


@pytest.fixture
def bounced(config: Config, database_url: str, pgbouncer: PgBouncer) -> Config:
    """`config` through the session's pgbouncer, with DB_PREPARED_STATEMENTS=false."""
    set_role_defaults(database_url, config)
    return replace(config, database_url=pgbouncer.url(database_url), db_prepared_statements=False)


@pytest.fixture
def bounced_client(bounced: Config) -> Iterator[testing.TestClient]:
    db = open_database(bounced)
    try:
        yield testing.TestClient(create_app(bounced, db=db))
    finally:
        run(db.close)


@contextmanager
def client_through(
    bouncer: PgBouncer, config: Config, database_url: str
) -> Iterator[testing.TestClient]:
    """A client of the app on `database_url` through `bouncer`, its pool open,
    waiting at most a second for a connection (an outage is a quick 503)."""
    through = replace(
        config,
        database_url=bouncer.url(database_url),
        db_prepared_statements=False,
        pool_timeout=1.0,
    )
    db = open_database(through)
    try:
        yield testing.TestClient(create_app(through, db=db))
    finally:
        run(db.close)


def create(client: testing.TestClient, content: str = "hello", **fields: object) -> dict:
    result = client.simulate_post(PATH, json={"content": content, **fields})
    assert result.status_code == 201, result.text
    return result.json


@through_pgbouncer
def test_prepared_statements_break_behind_a_transaction_pooler(
    config, database_url, postgres_url, pgbouncer
):
    """Why the setting exists: with psycopg's prepared statements two clients
    of one server connection clash ("_pg3_0" already exists); without, not."""
    # Told to ignore `options` (else it refuses the connection, below), with
    # one server connection that both of the pool's connections share.
    with running_pgbouncer(
        postgres_url, pool_size=1, ignore_startup_parameters=["options"]
    ) as bouncer:
        url = bouncer.url(database_url)
        errors_by_mode = {}
        for prepared in (True, False):
            db = open_database(
                replace(
                    config,
                    database_url=url,
                    pool_min_size=2,
                    pool_max_size=2,
                    db_prepared_statements=prepared,
                )
            )
            errors = []
            try:
                for _ in range(20):  # the pool hands out its two connections in turn
                    try:
                        run(db.one, "ping")
                    except psycopg.errors.ProgrammingError as exc:
                        errors.append(str(exc))
            finally:
                run(db.close)
            errors_by_mode[prepared] = errors
        assert errors_by_mode[False] == []
        assert errors_by_mode[True], "prepared statements did not clash"
        assert all(re.search(r'prepared statement "_pg3_\d+"', e) for e in errors_by_mode[True])
    # And the startup options a direct connection carries are refused outright.
    with running_pgbouncer(postgres_url) as strict:
        kwargs = connection_kwargs(config, "pastebin")
        with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"):
            psycopg.connect(strict.url(database_url), **kwargs).close()


@through_pgbouncer
def test_create_every_read_delete_and_list(bounced_client, sql):
    client = bounced_client
    public = create(client, "listed\n", visibility="public", title="t", expires_in=3600)
    text = client.simulate_post(
        PATH, body="plain", headers={"Content-Type": "text/plain", "Accept": "text/plain"}
    )
    assert text.status_code == 201
    plain_id = text.text.strip().split("/")[-2]
    # More runs of each statement than psycopg's prepare threshold (5).
    for _ in range(8):
        json_read = client.simulate_get(f"{PATH}/{public['id']}")
        assert json_read.status_code == 200
        assert json_read.json["content"] == "listed\n"
        raw = client.simulate_get(f"{PATH}/{plain_id}/raw")
        assert (raw.status_code, raw.text) == (200, "plain")
        assert (
            client.simulate_get(
                f"{PATH}/{plain_id}/raw", headers={"If-None-Match": raw.headers["etag"]}
            ).status_code
            == 304
        )
        for path in (f"{PATH}/{public['id']}", f"{PATH}/{public['id']}/raw"):
            head = client.simulate_head(path)
            assert head.status_code == 200
            assert head.content == b""
        listing = client.simulate_get(PATH, params={"limit": "10"})
        assert listing.status_code == 200
        assert [item["id"] for item in listing.json["items"]] == [public["id"]]
        assert_problem(client.simulate_get(f"{PATH}/NoSuchPaste123"), 404)
    deleted = [create(client, f"bye {n}") for n in range(8)]
    for paste in deleted:
        result = client.simulate_delete(
            f"{PATH}/{paste['id']}", headers={"Authorization": f"Bearer {paste['delete_token']}"}
        )
        assert result.status_code == 204
        assert_problem(client.simulate_get(f"{PATH}/{paste['id']}"), 404)
    wrong = client.simulate_delete(
        f"{PATH}/{public['id']}", headers={"Authorization": "Bearer wrong"}
    )
    assert_problem(wrong, 403)
    assert sql.execute("SELECT count(*) FROM pastes").fetchone() == (2,)


@through_pgbouncer
def test_burn_race_and_concurrent_reads(bounced_client):
    client = bounced_client
    for suffix in ("", "/raw", "", "/raw"):
        paste_id = create(client, "only once", burn_after_read=True)["id"]
        results = concurrently(client, "GET", f"{PATH}/{paste_id}{suffix}", 20)
        assert sorted(r.status_code for r in results) == [200] + [404] * 19
    # The case: 50 concurrent reads of one paste, many times over.
    paste_id = create(client, "for everyone")["id"]
    for _ in range(4):
        results = concurrently(client, "GET", f"{PATH}/{paste_id}", 50)
        assert [r.status_code for r in results] == [200] * 50


@through_pgbouncer
@pytest.mark.slow
def test_burn_race_over_http_across_gunicorn_processes(bounced, database_url):
    assert bounced.database_url
    with gunicorn(
        bounced.database_url, DB_PREPARED_STATEMENTS="false", LOG_LEVEL="WARNING"
    ) as server:
        for _ in range(4):
            path = server.create_text(b"secret", "?burn_after_read=true")
            barrier = threading.Barrier(12)
            statuses: list[int] = []

            def read(path: str, barrier: threading.Barrier, statuses: list[int]) -> None:
                barrier.wait()
                statuses.append(server.request("GET", path)[0])

            threads = [
                threading.Thread(target=read, args=(path, barrier, statuses)) for _ in range(12)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert sorted(statuses) == [200] + [404] * 11
    assert server.returncode == 0
    assert "prepared statement" not in server.log


@through_pgbouncer
@pytest.mark.slow
def test_three_worker_replicas_purge_through_pgbouncer(bounced, sql):
    assert bounced.database_url
    insert_pastes(sql, 3000, prefix="live", expired=False)
    workers = [
        worker_process(
            bounced.database_url,
            DB_PREPARED_STATEMENTS="false",
            WORKER_INTERVAL="0.2",
            WORKER_BATCH="100",
        )
        for _ in range(3)
    ]
    try:
        for round_ in range(3):  # each replica runs the purge many times
            insert_pastes(sql, 2000, prefix=f"old{round_}", expired=True)
            assert wait_for(lambda: count(sql) == 3000, timeout=30, step=0.1)
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        logs = [process.communicate(timeout=20)[1] for process in workers]
    assert [process.returncode for process in workers] == [0, 0, 0], logs
    assert count(sql, "id LIKE 'live%'") == 3000
    assert all("worker_tick_failed" not in log for log in logs), logs
    purged = [sum(map(int, re.findall(r'"purged": ?(\d+)', log))) for log in logs]
    assert sum(purged) == 6000, purged  # no row deleted twice


@through_pgbouncer
def test_runaway_statements_are_bounded_by_the_role_defaults(bounced, database_url):
    set_role_defaults(database_url, replace(bounced, statement_timeout_ms=200))
    base = open_database(bounced)
    db = Database(base.pool, {"slow": Query("slow", "SELECT pg_sleep(5)")})
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseBusy):
            run(db.one, "slow")
        assert time.monotonic() - started < 2
    finally:
        run(base.close)


@through_pgbouncer
def test_missing_role_defaults_are_logged(config, database_url, pgbouncer):
    """Without the role's defaults the timeouts are the server's (none by
    default): each pool says so once."""
    bounced = replace(
        config, database_url=pgbouncer.url(database_url), db_prepared_statements=False
    )
    with structlog.testing.capture_logs() as logs:
        db = open_database(replace(bounced, pool_min_size=3))
        run(db.close)
        worker_db = SyncDatabase.from_config(bounced)
        worker_db.pool.wait(timeout=10)
        worker_db.close()
    warnings = [e for e in logs if e["event"] == "db_role_defaults_differ"]
    assert len(warnings) == 2
    assert warnings[0]["actual_ms"]["statement_timeout"] == "0"


@through_pgbouncer
def test_pgbouncer_killed_gives_fast_503s_and_recovery(
    config, database_url, postgres_url, pgbouncer
):
    set_role_defaults(database_url, config)
    with (
        running_pgbouncer(postgres_url) as bouncer,
        client_through(bouncer, config, database_url) as client,
    ):
        paste = create(client, "kept")
        bouncer.kill()
        for path in (f"{PATH}/{paste['id']}", f"{PATH}/{paste['id']}/raw", PATH, "/readyz"):
            started = time.monotonic()
            assert_problem(client.simulate_get(path), 503)
            assert time.monotonic() - started < 4
        assert_problem(client.simulate_post(PATH, json={"content": "x"}), 503)
        bouncer.start()
        restored = time.monotonic()
        assert wait_for(
            lambda: client.simulate_get(f"{PATH}/{paste['id']}/raw").status_code == 200,
            timeout=5,
            step=0.2,
        )
        assert time.monotonic() - restored < 5
        assert client.simulate_post(PATH, json={"content": "y"}).status_code == 201


@through_pgbouncer
def test_database_cut_off_behind_pgbouncer_gives_503s_and_recovery(
    config, database_url, postgres_url, pgbouncer
):
    """The database unreachable from pgbouncer: a request waits for a server
    connection only up to pgbouncer's query_wait_timeout (2 s here), then is a
    503; once the database is back, requests succeed again by themselves."""
    set_role_defaults(database_url, config)
    proxy = TcpProxy(postgres_url)
    proxy.restore()
    try:
        with (
            running_pgbouncer(proxy.url(postgres_url), query_wait_timeout=2) as bouncer,
            client_through(bouncer, config, database_url) as client,
        ):
            paste = create(client, "kept")
            proxy.cut()
            for path in (f"{PATH}/{paste['id']}/raw", PATH):
                started = time.monotonic()
                assert_problem(client.simulate_get(path), 503)
                assert time.monotonic() - started < 10
            proxy.restore()
            assert wait_for(
                lambda: client.simulate_get(f"{PATH}/{paste['id']}/raw").status_code == 200,
                timeout=15,
                step=0.2,
            )
            assert client.simulate_post(PATH, json={"content": "y"}).status_code == 201
    finally:
        proxy.close()


@through_pgbouncer
def test_server_connections_killed_behind_pgbouncer_are_survived(bounced_client, sql):
    client = bounced_client
    paste = create(client, "survivor")
    for _ in range(3):
        concurrently(client, "GET", f"{PATH}/{paste['id']}/raw", 8)  # every server busy
        killed = sql.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
        assert killed[0] >= 1
        # Reads run again on a lost connection: none fails.
        results = concurrently(client, "GET", f"{PATH}/{paste['id']}/raw", 8)
        assert [r.status_code for r in results] == [200] * 8
    assert client.simulate_post(PATH, json={"content": "x"}).status_code == 201
