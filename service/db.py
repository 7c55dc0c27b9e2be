"""The database layer: psycopg connection pools running the named queries of `sql/`.

This is the only module that imports psycopg. `Database` is the web tier's
handle (an `AsyncConnectionPool`); `SyncDatabase` is the expiry worker's (a
`ConnectionPool`). Both turn every driver or pool failure that means "the
database cannot answer now" into DatabaseUnavailable, in `translate_errors`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
import psycopg.errors
import structlog
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout, TooManyRequests

from service.config import Config, ConfigError
from service.errors import ConnectionLost, DatabaseBusy, DatabaseUnavailable
from service.queries import Query, load_queries

Row = dict[str, Any]
log = structlog.get_logger("service.db")


@contextmanager
def translate_errors() -> Iterator[None]:
    """Map driver and pool failures onto the service's own exceptions; any
    other psycopg error (bad SQL, a broken constraint) is a bug and passes."""
    try:
        yield
    except psycopg.errors.QueryCanceled as exc:  # statement_timeout
        raise DatabaseBusy() from exc
    except (PoolTimeout, TooManyRequests) as exc:
        raise DatabaseBusy() from exc
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable() from exc


class _Queries:
    """A pool, the named queries, and rows as dicts keyed by column name."""

    def __init__(self, pool: Any, queries: Mapping[str, Query] | None = None) -> None:
        self.pool = pool
        self.queries = dict(load_queries() if queries is None else queries)
        # A query's SQL, and so its columns, never change: names are read once
        # and tuple rows (psycopg's fast path) zipped with them.
        self._columns: dict[str, list[str]] = {}

    def _names(self, name: str, cursor: Any) -> list[str]:
        names = self._columns.get(name)
        if names is None:
            names = self._columns[name] = [c.name for c in cursor.description or ()]
        return names

    def _one(self, name: str, cursor: Any, row: tuple[Any, ...] | None) -> Row | None:
        return None if row is None else dict(zip(self._names(name, cursor), row, strict=True))

    def _all(self, name: str, cursor: Any, rows: list[tuple[Any, ...]]) -> list[Row]:
        if not rows:
            return []
        names = self._names(name, cursor)
        return [dict(zip(names, row, strict=True)) for row in rows]


class Transaction:
    """Named queries on one connection inside one transaction."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], queries: _Queries) -> None:
        self._conn = conn
        self._queries = queries

    async def one(self, name: str, **params: Any) -> Row | None:
        cursor = await self._conn.execute(self._queries.queries[name].sql, params)
        return self._queries._one(name, cursor, await cursor.fetchone())

    async def execute(self, name: str, **params: Any) -> int:
        cursor = await self._conn.execute(self._queries.queries[name].sql, params)
        return cursor.rowcount


class Database(_Queries):
    """The web tier's handle: an `AsyncConnectionPool` plus the named queries.

    Each query runs alone on a pooled connection in autocommit mode. Waiting
    for a connection is bounded by the pool's `timeout` and `max_waiting`
    (DatabaseBusy past them); an unreachable server raises DatabaseUnavailable.
    The pool checks no connection on checkout (a round trip per request): a
    connection found lost makes the pool `check()` the idle ones, and an
    idempotent query (`-- idempotent` in `sql/`) runs once more.
    """

    pool: AsyncConnectionPool

    @classmethod
    def from_config(cls, config: Config, *, name: str = "pastebin") -> Database:
        """A pool sized and bounded by `config`, not yet open (see `open`)."""
        return cls(
            AsyncConnectionPool(
                min_size=config.pool_min_size,
                max_size=config.pool_max_size,
                max_waiting=config.pool_max_waiting,
                configure=_RoleDefaults.check_async(config),
                **_pool_settings(config, name),
            )
        )

    async def open(self) -> None:
        """Start the pool without waiting for it to fill, so the process
        starts even while the database is down."""
        await self.pool.open(wait=False)

    async def close(self, timeout: float = 5.0) -> None:
        await self.pool.close(timeout=timeout)

    async def one(self, name: str, **params: Any) -> Row | None:
        """The first row of query `name`, or None."""
        return await self._run(name, params, many=False)

    async def all(self, name: str, **params: Any) -> list[Row]:
        return await self._run(name, params, many=True)

    async def _run(self, name: str, params: dict[str, Any], *, many: bool) -> Any:
        query = self.queries[name]
        with translate_errors():
            try:
                return await self._once(query, params, many)
            except ConnectionLost:
                # A restart or a cut kills every idle connection at once:
                # replace them all now, not one failed request each.
                await self.pool.check()
                if not query.idempotent:
                    raise
                return await self._once(query, params, many)

    async def _once(self, query: Query, params: dict[str, Any], many: bool) -> Any:
        # getconn/putconn: the pool's connection() context would also commit.
        conn = await self.pool.getconn()
        try:
            cursor = await conn.execute(query.sql, params)
            if many:
                return self._all(query.name, cursor, await cursor.fetchall())
            return self._one(query.name, cursor, await cursor.fetchone())
        except psycopg.OperationalError as exc:
            if conn.broken:
                raise ConnectionLost() from exc
            raise
        finally:
            await self.pool.putconn(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One pooled connection inside one transaction, committed on success."""
        with translate_errors():
            async with self.pool.connection() as conn, conn.transaction():
                yield Transaction(conn, self)

    async def ping(self, timeout: float) -> None:
        """Raise DatabaseUnavailable unless the database answers within `timeout` s."""
        with translate_errors():
            async with self.pool.connection(timeout=timeout) as conn:
                await conn.execute(self.queries["ping"].sql)

    def stats(self) -> dict[str, int]:
        return self.pool.get_stats()


class SyncDatabase(_Queries):
    """The expiry worker's handle: a `ConnectionPool` that checks each
    connection on checkout (a worker takes one per tick, not per request)."""

    pool: ConnectionPool

    @classmethod
    def from_config(cls, config: Config, *, name: str = "pastebin-worker") -> SyncDatabase:
        """A one-connection pool, opened without waiting for the database."""
        pool: ConnectionPool = ConnectionPool(
            min_size=1,
            max_size=1,
            check=ConnectionPool.check_connection,
            configure=_RoleDefaults.check_sync(config),
            **_pool_settings(config, name),
        )
        pool.open(wait=False)
        return cls(pool)

    def one(self, name: str, **params: Any) -> Row | None:
        with translate_errors(), self.pool.connection() as conn:
            cursor = conn.execute(self.queries[name].sql, params)
            return self._one(name, cursor, cursor.fetchone())

    def execute(self, name: str, **params: Any) -> int:
        with translate_errors(), self.pool.connection() as conn:
            return conn.execute(self.queries[name].sql, params).rowcount

    def all(self, name: str, **params: Any) -> list[Row]:
        with translate_errors(), self.pool.connection() as conn:
            cursor = conn.execute(self.queries[name].sql, params)
            return self._all(name, cursor, cursor.fetchall())

    def close(self, timeout: float = 5.0) -> None:
        self.pool.close(timeout=timeout)


def _pool_settings(config: Config, name: str) -> dict[str, Any]:
    """What both pools take from `config`; a pool is opened by its owner."""
    if not config.database_url:
        raise ConfigError("DATABASE_URL is not set")
    try:
        conninfo_to_dict(config.database_url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"DATABASE_URL cannot be parsed: {exc}") from None
    return {
        "conninfo": config.database_url,
        "timeout": config.pool_timeout,
        "reconnect_timeout": config.pool_reconnect_timeout,
        "kwargs": connection_kwargs(config, name),
        "name": name,
        "open": False,
    }


def connection_kwargs(config: Config, application_name: str) -> dict[str, Any]:
    """Settings for every pooled connection: autocommit, UTC, and server-side
    timeouts so that no query or forgotten transaction runs unbounded.

    Through a transaction-mode pooler (DB_PREPARED_STATEMENTS=false) each
    transaction may run on another server connection, used by other clients
    in between: a prepared statement (psycopg prepares one run 5 times) would
    be missing there or clash with another client's ("_pg3_0"); pgbouncer
    refuses the `options` startup parameter, and drops it when told to ignore
    it; a `SET` would stay on a server connection for whoever comes next. So
    there no statement is prepared and no option sent: the settings are the
    role's defaults on the server (`ALTER ROLE … IN DATABASE … SET`, README),
    which every server connection starts with; `_RoleDefaults` checks them.
    """
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "application_name": application_name,
        "connect_timeout": config.connect_timeout,
        # A server that vanishes without closing its sockets is noticed by TCP
        # within seconds, rather than after minutes of retransmissions.
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 3,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
        "client_encoding": "UTF8",
    }
    if not config.db_prepared_statements:
        return kwargs | {"prepare_threshold": None}
    return kwargs | {
        "options": " ".join(f"-c {name}={value}" for name, value in session_settings(config))
    }


def session_settings(config: Config) -> list[tuple[str, str]]:
    """The server settings every connection should run with (timeouts in ms)."""
    return [
        ("TimeZone", "UTC"),
        ("statement_timeout", str(config.statement_timeout_ms)),
        ("idle_in_transaction_session_timeout", str(config.idle_in_transaction_timeout_ms)),
        ("lock_timeout", str(config.lock_timeout_ms)),
    ]


class _RoleDefaults:
    """Behind a transaction-mode pooler the timeouts are the server's defaults
    for the role, not the connection's own: each new connection reads them
    (`session_timeouts`), and the first that differ from the settings are
    logged as a warning, once a pool. Directly on PostgreSQL: no check."""

    def __init__(self, config: Config) -> None:
        # A TimeZone other than UTC costs only speed (views.py converts).
        self.expected = {k: v for k, v in session_settings(config) if k != "TimeZone"}
        queries = load_queries()
        self.sql = queries["session_timeouts"].sql
        self.warned = False

    @classmethod
    def check_async(cls, config: Config) -> Any:
        if config.db_prepared_statements:
            return None
        check = cls(config)

        async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
            check.compare(await (await conn.execute(check.sql)).fetchall())

        return configure

    @classmethod
    def check_sync(cls, config: Config) -> Any:
        if config.db_prepared_statements:
            return None
        check = cls(config)

        def configure(conn: psycopg.Connection[Any]) -> None:
            check.compare(conn.execute(check.sql).fetchall())

        return configure

    def compare(self, rows: list[tuple[Any, ...]]) -> None:
        actual = dict(rows)
        differ = {k: actual.get(k) for k, v in self.expected.items() if actual.get(k) != v}
        if differ and not self.warned:
            self.warned = True
            log.warning(
                "db_role_defaults_differ",
                expected_ms=self.expected,
                actual_ms=differ,
                hint="DB_PREPARED_STATEMENTS=false: set them with ALTER ROLE … IN DATABASE … SET",
            )
