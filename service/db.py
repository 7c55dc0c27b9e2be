"""The database handle: a psycopg connection pool and the named queries.

This is the only module that imports psycopg. It turns every driver or pool
failure that means "the database cannot answer now" into DatabaseUnavailable,
which the HTTP layer reports as a 503.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout, TooManyRequests

from service.config import Config, ConfigError
from service.errors import ConnectionLost, DatabaseBusy, DatabaseUnavailable
from service.queries import Query, load_queries

Row = dict[str, Any]


class ColumnNames:
    """The column names of each named query's rows, read from its first
    result and kept: a query's SQL, and so its columns, never change.

    Rows come from psycopg as tuples, its C fast path, and are zipped with
    these names into dicts. psycopg's dict_row reads the names from the
    result again for every statement run: 24 k instructions of a read's 349 k.
    """

    def __init__(self) -> None:
        self._names: dict[str, list[str]] = {}

    def of(self, query: str, cursor: psycopg.Cursor[Any]) -> list[str]:
        names = self._names.get(query)
        if names is None:
            names = self._names[query] = [column.name for column in cursor.description or ()]
        return names


Fetch = Callable[[psycopg.Cursor[Any], ColumnNames, str], Any]


def translated(exc: Exception) -> Exception:
    """The service's exception for a driver or pool failure (else `exc`)."""
    if isinstance(exc, psycopg.errors.QueryCanceled):  # statement_timeout
        return DatabaseBusy()
    if isinstance(exc, (PoolTimeout, TooManyRequests)):
        return DatabaseBusy()
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseUnavailable()
    return exc


@contextmanager
def translate_errors() -> Iterator[None]:
    """Map driver and pool failures onto the service's own exceptions."""
    try:
        yield
    except (psycopg.Error, PoolTimeout, TooManyRequests) as exc:
        mapped = translated(exc)
        if mapped is exc:
            raise
        raise mapped from exc


class Session:
    """Runs named queries on one connection (inside a transaction or not)."""

    def __init__(
        self, conn: psycopg.Connection[Any], queries: Mapping[str, Query], columns: ColumnNames
    ) -> None:
        self._conn = conn
        self._queries = queries
        self._columns = columns

    def one(self, name: str, **params: Any) -> Row | None:
        """The first row of query `name`, or None."""
        return _fetchone(self._conn.execute(self._queries[name].sql, params), self._columns, name)

    def all(self, name: str, **params: Any) -> list[Row]:
        return _fetchall(self._conn.execute(self._queries[name].sql, params), self._columns, name)

    def execute(self, name: str, **params: Any) -> int:
        """Run query `name`; the number of rows it touched."""
        return self._conn.execute(self._queries[name].sql, params).rowcount


class Database:
    """A connection pool plus the named queries of `sql/`.

    Every method that takes a connection waits at most the pool's timeout,
    then raises DatabaseBusy; a broken server raises DatabaseUnavailable.
    """

    def __init__(self, pool: ConnectionPool, queries: Mapping[str, Query] | None = None) -> None:
        self.pool = pool
        self.queries = dict(load_queries() if queries is None else queries)
        self.columns = ColumnNames()

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
            kwargs={**connection_kwargs(config), "application_name": name},
            name=name,
            open=False,
        )
        if open:
            pool.open(wait=False)
        return cls(pool)

    def checkout(
        self, timeout: float | None = None, *, checked: bool = True
    ) -> psycopg.Connection[Any]:
        """A pooled connection that is not known to be dead, within `timeout`
        seconds (default: the pool's); give it back with `pool.putconn`.
        Raises PoolTimeout past the timeout.

        Dead connections (see `is_dead`) are closed, which makes the pool
        replace them, and the next one is taken at once: the pool's own check
        would back off between dead connections as if the server were down.
        With `checked=False` the connection is handed out unchecked, for a
        caller that runs its statement again on a checked one if it was dead.
        """
        wait = self.pool.timeout if timeout is None else timeout
        conn = self.pool.getconn(timeout=wait)
        if not checked or not is_dead(conn):  # nearly always: no clock reads on this path
            return conn
        deadline = time.monotonic() + wait
        for _ in range(self.pool.max_size):
            conn.close()
            self.pool.putconn(conn)
            conn = self.pool.getconn(timeout=max(0.0, deadline - time.monotonic()))
            if not is_dead(conn):
                return conn
        conn.close()
        self.pool.putconn(conn)
        raise PoolTimeout("no live connection in the pool")

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        """`checkout` as a context manager that gives the connection back."""
        conn = self.checkout(timeout)
        try:
            yield conn
        finally:
            self.pool.putconn(conn)

    @contextmanager
    def session(self, *, timeout: float | None = None) -> Iterator[Session]:
        """A pooled connection in autocommit mode: each statement commits alone."""
        with translate_errors(), self.connection(timeout) as conn:
            yield Session(conn, self.queries, self.columns)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A pooled connection inside one transaction, committed on success."""
        with translate_errors(), self.connection() as conn, conn.transaction():
            yield Session(conn, self.queries, self.columns)

    def one(self, name: str, **params: Any) -> Row | None:
        """The first row of query `name` (autocommit), or None."""
        return self._run(name, params, _fetchone)

    def all(self, name: str, **params: Any) -> list[Row]:
        return self._run(name, params, _fetchall)

    def execute(self, name: str, **params: Any) -> int:
        return self._run(name, params, _rowcount)

    def _run(self, name: str, params: dict[str, Any], fetch: Fetch) -> Any:
        """Run one query on a pooled connection.

        A query that may not run twice gets a checked connection. A query
        marked retry-safe skips the check and, if its connection turns out to
        be lost, runs once more on a checked one: a dead connection costs it a
        failed attempt, where the check would cost every call a system call,
        and with it a hand-over of the GIL to another thread: under load, that
        one select() per read cost 6 % of a read's CPU time (16 paired rounds).
        (Plain try blocks, not context managers: this is every request's path.)"""
        query = self.queries[name]
        try:
            if not query.retry_safe:
                return self._run_once(query, params, fetch, checked=True)
            try:
                return self._run_once(query, params, fetch, checked=False)
            except ConnectionLost:
                return self._run_once(query, params, fetch, checked=True)
        except (psycopg.Error, PoolTimeout, TooManyRequests) as exc:
            mapped = translated(exc)
            if mapped is exc:  # a bug (bad SQL, a constraint): not the database's state
                raise
            raise mapped from exc

    def _run_once(
        self, query: Query, params: dict[str, Any], fetch: Fetch, *, checked: bool
    ) -> Any:
        conn = self.checkout(checked=checked)
        try:
            return fetch(conn.execute(query.sql, params), self.columns, query.name)
        except psycopg.OperationalError as exc:
            if conn.broken:
                raise ConnectionLost() from exc
            raise
        finally:
            self.pool.putconn(conn)

    def ping(self, timeout: float) -> None:
        """Raise DatabaseUnavailable unless the database answers within `timeout` s."""
        with self.session(timeout=timeout) as session:
            session.one("ping")

    def stats(self) -> dict[str, int]:
        return self.pool.get_stats()

    def close(self, timeout: float = 5.0) -> None:
        self.pool.close(timeout=timeout)


def _fetchone(cursor: psycopg.Cursor[Any], columns: ColumnNames, query: str) -> Row | None:
    row = cursor.fetchone()
    # zip(strict=True) would cost 7 k instructions here, on every read.
    return None if row is None else dict(zip(columns.of(query, cursor), row, strict=False))


def _fetchall(cursor: psycopg.Cursor[Any], columns: ColumnNames, query: str) -> list[Row]:
    rows = cursor.fetchall()
    if not rows:
        return []
    names = columns.of(query, cursor)
    return [dict(zip(names, row, strict=False)) for row in rows]


def _rowcount(cursor: psycopg.Cursor[Any], columns: ColumnNames, query: str) -> int:
    return cursor.rowcount


def is_dead(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle pooled connection is unusable, without a round trip in
    the common case.

    An idle connection has nothing to read: when its socket is readable, the
    server has closed it or sent an error (pg_terminate_backend, a restart, a
    proxy cut), and only then is a real round trip made to be sure. Checking
    every checkout with a query would double the round trips of every request.
    """
    if conn.closed or conn.broken:
        return True
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if not readable:
        return False
    try:
        ConnectionPool.check_connection(conn)
    except psycopg.Error:
        return True
    return False


def connection_kwargs(config: Config) -> dict[str, Any]:
    """Settings for every pooled connection: autocommit, and server timeouts so
    that no query or forgotten transaction runs unbounded. Rows are tuples,
    turned into dicts by `ColumnNames`."""
    return {
        "autocommit": True,
        "connect_timeout": config.connect_timeout,
        # A server that vanishes without closing its sockets is noticed by TCP
        # within seconds, rather than after minutes of retransmissions.
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 3,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
        "client_encoding": "UTF8",
        # Timestamps come back in UTC, the zone every response writes them in.
        "options": (
            "-c TimeZone=UTC"
            f" -c statement_timeout={config.statement_timeout_ms}"
            f" -c idle_in_transaction_session_timeout={config.idle_in_transaction_timeout_ms}"
            f" -c lock_timeout={config.lock_timeout_ms}"
        ),
    }
