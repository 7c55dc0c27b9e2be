"""Shared pieces of the benchmarks: the database to run against, and bulk seeding."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextmanager
def server_url(connections: int = 0) -> Iterator[str]:
    """A superuser URL: BENCH_DATABASE_URL / DATABASE_URL, else an embedded
    PostgreSQL kept under .data/bench-pg, which is set to allow at least
    `connections` connections (a restart the first time)."""
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    datadir = ROOT / ".data" / "bench-pg"
    datadir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(datadir, cleanup_mode="stop")
    try:
        if max_connections(server.get_uri()) < connections:
            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                # ALTER SYSTEM takes no parameters; an int is all that goes in.
                conn.execute(f"ALTER SYSTEM SET max_connections = {int(connections)}")
            server.cleanup()  # the setting needs a restart: stop, and start again
            server = pgserver.get_server(datadir, cleanup_mode="stop")
        yield server.get_uri()
    finally:
        server.cleanup()


def max_connections(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
    return int(row[0]) if row else 0


@contextmanager
def scratch_database(url: str, migrate: Callable[[str], object] | None = None) -> Iterator[str]:
    """A fresh database, migrated by `migrate` (default: this checkout's
    migrations), dropped afterwards."""
    from service.migrate import apply_migrations

    name = f"pastebin_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db_url = with_database(url, name)
    try:
        (migrate or apply_migrations)(db_url)
        yield db_url
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed_expired(
    db_url: str, count: int, *, content_bytes: int = 64, truncate: bool = True
) -> None:
    """Bulk-insert `count` already-expired pastes (as a backlog the worker finds).

    `truncate=False` adds the backlog beside the live rows, for a purge that runs
    while the service serves them (its ids start with 'exp', no live id does).
    """
    with psycopg.connect(db_url, autocommit=True) as conn:
        if truncate:
            conn.execute("TRUNCATE pastes")
        conn.execute(
            """
            INSERT INTO pastes (id, content, size, created_at, expires_at, delete_token_hash)
            SELECT 'exp' || lpad(n::text, 10, '0'), repeat('x', %(size)s), %(size)s,
                   now() - interval '2 days',
                   now() - interval '1 day' + n * interval '1 millisecond', '\\x00'
              FROM generate_series(1, %(count)s) AS n
            """,
            {"count": count, "size": content_bytes},
        )
        conn.execute("VACUUM ANALYZE pastes")


def insert_live(
    db_url: str,
    count: int,
    *,
    first_id: int,
    content_bytes: int = 1024,
    visibility: str = "unlisted",
) -> None:
    """Bulk-insert `count` live, never-expiring pastes in one statement.

    Ids are the decimal numbers first_id+1 … first_id+count: valid paste ids
    when first_id has 12 digits, and pgbench can draw them with random().
    Rows are dated a day back and older, so they sort after any paste the API
    made (the listing's first page stays the API's own).
    """
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO pastes (id, content, visibility, size, created_at, delete_token_hash)
            SELECT (%(first)s::bigint + n)::text,
                   left(repeat(md5(n::text), %(size)s / 32 + 1), %(size)s),
                   %(visibility)s, %(size)s,
                   now() - interval '1 day' - n * interval '1 millisecond', '\\x00'
              FROM generate_series(1, %(count)s) AS n
            """,
            {"first": first_id, "count": count, "size": content_bytes, "visibility": visibility},
        )
    settle(db_url)


def settle(db_url: str) -> None:
    """Vacuum, analyze and checkpoint now, after a load of rows, so that the
    next measurement does not share the machine with autovacuum or pay for the
    load's checkpoint."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE pastes")
        conn.execute("CHECKPOINT")
