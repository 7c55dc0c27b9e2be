"""The database handle: a psycopg connection pool and the named queries.

This is the only module that imports psycopg. It turns every driver or pool
failure that means "the database cannot answer now" into DatabaseUnavailable,
which the HTTP layer reports as a 503.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout, TooManyRequests

from service.config import Config, ConfigError
from service.errors import DatabaseBusy, DatabaseUnavailable
from service.queries import load_queries

Row = dict[str, Any]


@contextmanager
def translate_errors() -> Iterator[None]:
    """Map driver and pool failures onto the service's own exceptions."""
    try:
        yield
    except psycopg.errors.QueryCanceled as exc:  # statement_timeout
        raise DatabaseBusy() from exc
    except (PoolTimeout, TooManyRequests) as exc:
        raise DatabaseBusy() from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable() from exc


class Session:
    """Runs named queries on one connection (inside a transaction or not)."""

    def __init__(self, conn: psycopg.Connection[Any], queries: Mapping[str, str]) -> None:
        self._conn = conn
        self._queries = queries

    def one(self, name: str, **params: Any) -> Row | None:
        """The first row of query `name`, or None."""
        return self._conn.execute(self._queries[name], params).fetchone()

    def all(self, name: str, **params: Any) -> list[Row]:
        return self._conn.execute(self._queries[name], params).fetchall()

    def execute(self, name: str, **params: Any) -> int:
        """Run query `name`; the number of rows it touched."""
        return self._conn.execute(self._queries[name], params).rowcount


class Database:
    """A connection pool plus the named queries of `sql/`.

    Every method that takes a connection waits at most the pool's timeout,
    then raises DatabaseBusy; a broken server raises DatabaseUnavailable.
    """

    def __init__(self, pool: ConnectionPool, queries: Mapping[str, str] | None = None) -> None:
        self.pool = pool
        self.queries = dict(load_queries() if queries is None else queries)

    @classmethod
    def from_config(cls, config: Config, *, name: str = "pastebin", open: bool = True) -> Database:
        """A pool sized and bounded by `config`, opened without waiting for it
        to fill, so the process starts even while the database is down."""
        if not config.database_url:
            raise ConfigError("DATABASE_URL is not set")
        try:
            conninfo_to_dict(config.database_url)
        except psycopg.ProgrammingError as exc:
            raise ConfigError(f"DATABASE_URL cannot be parsed: {exc}") from None
        pool: ConnectionPool = ConnectionPool(
            config.database_url,
            min_size=config.pool_min_size,
            max_size=config.pool_max_size,
            timeout=config.pool_timeout,
            max_waiting=config.pool_max_waiting,
            reconnect_timeout=config.pool_reconnect_timeout,
            check=ConnectionPool.check_connection,
            kwargs={**connection_kwargs(config), "application_name": name},
            name=name,
            open=False,
        )
        if open:
            pool.open(wait=False)
        return cls(pool)

    @contextmanager
    def session(self, *, timeout: float | None = None) -> Iterator[Session]:
        """A pooled connection in autocommit mode: each statement commits alone."""
        with translate_errors(), self.pool.connection(timeout=timeout) as conn:
            yield Session(conn, self.queries)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A pooled connection inside one transaction, committed on success."""
        with translate_errors(), self.pool.connection() as conn, conn.transaction():
            yield Session(conn, self.queries)

    def one(self, name: str, **params: Any) -> Row | None:
        with self.session() as session:
            return session.one(name, **params)

    def all(self, name: str, **params: Any) -> list[Row]:
        with self.session() as session:
            return session.all(name, **params)

    def execute(self, name: str, **params: Any) -> int:
        with self.session() as session:
            return session.execute(name, **params)

    def ping(self, timeout: float) -> None:
        """Raise DatabaseUnavailable unless the database answers within `timeout` s."""
        with self.session(timeout=timeout) as session:
            session.one("ping")

    def stats(self) -> dict[str, int]:
        return self.pool.get_stats()

    def close(self, timeout: float = 5.0) -> None:
        self.pool.close(timeout=timeout)


def connection_kwargs(config: Config) -> dict[str, Any]:
    """Settings for every pooled connection: autocommit, dict rows, and server
    timeouts so that no query or forgotten transaction runs unbounded."""
    return {
        "autocommit": True,
        "row_factory": dict_row,
        "connect_timeout": config.connect_timeout,
        "client_encoding": "UTF8",
        "options": (
            f"-c statement_timeout={config.statement_timeout_ms}"
            f" -c idle_in_transaction_session_timeout={config.idle_in_transaction_timeout_ms}"
            f" -c lock_timeout={config.lock_timeout_ms}"
        ),
    }
