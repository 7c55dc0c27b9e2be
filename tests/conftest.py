"""Database fixtures: a session PostgreSQL, a template database migrated once
with the real migrations, and a fresh copy of it for every test.

The server is, in order: TEST_DATABASE_URL; a testcontainers container when a
Docker engine answers (image TEST_POSTGRES_IMAGE, default postgres:16-alpine); an
embedded server from the `pgserver` package.
"""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from falcon import testing
from falcon.util.sync import async_to_sync

from service.app import create_app
from service.config import Config
from service.db import Database
from service.migrate import apply_migrations
from tests.pgbouncer import MISSING as PGBOUNCER_MISSING
from tests.pgbouncer import PgBouncer, pgbouncer_binary, running_pgbouncer

TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-000000"
# The testcontainers image unless TEST_POSTGRES_IMAGE names another.
DEFAULT_POSTGRES_IMAGE = "postgres:16-alpine"


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _docker_answers() -> bool:
    # A failed ping leaves the docker client's socket to the garbage
    # collector, whose ResourceWarning filterwarnings=error would turn into
    # some later test's error: collect it here, where it is ignored.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            import docker

            client = docker.from_env(timeout=3)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False
        finally:
            gc.collect()


def _tune_for_tests(url: str) -> None:
    """Durability is not what the suite tests: skip fsync on a server we own."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET fsync = off")
        conn.execute("ALTER SYSTEM SET synchronous_commit = off")
        conn.execute("ALTER SYSTEM SET full_page_writes = off")
        conn.execute("SELECT pg_reload_conf()")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A superuser URL of a running PostgreSQL for the whole session."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    if _docker_answers():
        try:
            from testcontainers.community.postgres import PostgresContainer
        except ImportError:  # testcontainers before the `community` package
            from testcontainers.postgres import PostgresContainer

        image = os.environ.get("TEST_POSTGRES_IMAGE") or DEFAULT_POSTGRES_IMAGE
        with PostgresContainer(image, driver=None) as container:
            url = container.get_connection_url()
            _tune_for_tests(url)
            yield url
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns of a missing XDG_RUNTIME_DIR
        import pgserver

    datadir = Path(tempfile.mkdtemp(prefix="pastebin-test-pg-"))
    server = pgserver.get_server(datadir, cleanup_mode="delete")
    url = server.get_uri()
    _tune_for_tests(url)
    try:
        yield url
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def template_database(postgres_url: str) -> Iterator[str]:
    """A database migrated once; each test gets a copy of it."""
    name = f"pastebin_template_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
    apply_migrations(with_database(postgres_url, name))
    yield name
    _drop_database(postgres_url, name)


def _drop_database(postgres_url: str, name: str) -> None:
    with suppress(psycopg.Error), psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(postgres_url: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"pastebin_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield with_database(postgres_url, name)
    _drop_database(postgres_url, name)


@pytest.fixture(scope="session")
def pgbouncer(postgres_url: str) -> Iterator[PgBouncer]:
    """A pgbouncer in transaction mode in front of the session's PostgreSQL
    (tests/pgbouncer.py); the tests that use it skip when it is not installed."""
    if pgbouncer_binary() is None:
        pytest.skip(PGBOUNCER_MISSING)
    with running_pgbouncer(postgres_url) as bouncer:
        yield bouncer


@pytest.fixture
def config(database_url: str) -> Config:
    return Config(
        app_env="testing",
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        pool_min_size=1,
        pool_max_size=8,
        pool_timeout=2.0,
        log_level="INFO",
        rate_limits=False,  # tests/test_rate_limits.py turns them on
    )


def run(coroutine: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    """Await `coroutine(*args, **kwargs)` on the event loop the test client
    runs apps on (one per process), so pools opened here serve its requests."""
    return async_to_sync(coroutine, *args, **kwargs)


def open_database(config: Config) -> Database:
    """The app's database handle on `config`, its pool open and filled."""
    database = Database.from_config(config)
    run(database.pool.open, wait=True, timeout=10)
    return database


@pytest.fixture
def db(config: Config) -> Iterator[Database]:
    database = open_database(config)
    yield database
    run(database.close)


def concurrently(
    client: testing.TestClient, method: str, path: str, times: int, **kwargs: Any
) -> list[testing.Result]:
    """`times` requests at once, interleaved on the app's event loop."""

    async def requests() -> list[testing.Result]:
        async with testing.ASGIConductor(client.app) as conductor:
            return list(
                await asyncio.gather(
                    *(conductor.simulate_request(method, path, **kwargs) for _ in range(times))
                )
            )

    return run(requests)


@pytest.fixture
def client(config: Config, db: Database) -> testing.TestClient:
    return testing.TestClient(create_app(config, db=db))


@pytest.fixture
def make_client(db: Database, config: Config):
    """A client of an app built with settings changed from `config`."""

    def make(**changes: object) -> testing.TestClient:
        return testing.TestClient(create_app(replace(config, **changes), db=db))

    return make


@pytest.fixture
def sql(database_url: str) -> Iterator[psycopg.Connection]:
    """A plain autocommit connection to the test's database, for arranging and
    checking rows behind the API's back."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def create(client: testing.TestClient):
    """Create a paste through the API; returns the 201 reply's JSON."""

    def create(content: str = "hello", **fields: object) -> dict:
        result = client.simulate_post("/api/v1/pastes", json={"content": content, **fields})
        assert result.status_code == 201, result.text
        return result.json

    return create


def assert_problem(result: testing.Result, status: int) -> dict:
    """`result` is an RFC 9457 problem document with `status`."""
    assert result.status_code == status, result.text
    assert result.headers["content-type"] == "application/problem+json"
    document = result.json
    assert {"type", "title", "status", "detail"} <= set(document)
    assert document["status"] == status
    assert "Traceback" not in result.text
    return document
