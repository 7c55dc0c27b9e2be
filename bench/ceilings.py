"""Bare Falcon apps that measure what the service could reach at best, run by
gunicorn with the service's own gunicorn.conf.py (so the same worker class,
processes and threads):

    gunicorn -c gunicorn.conf.py 'bench.ceilings:http_app()'    # constant 1 KiB body
    gunicorn -c gunicorn.conf.py 'bench.ceilings:read_app()'    # read_paste, nothing else
    gunicorn -c gunicorn.conf.py 'bench.ceilings:insert_app()'  # the service's create statement
    gunicorn -c gunicorn.conf.py 'bench.ceilings:plain_insert_app()'  # insert_paste
    gunicorn -c gunicorn.conf.py 'bench.ceilings:mixed_app()'   # both, on one pool

The database apps take DATABASE_URL, the pool sizes and the rate limits from
the service's Config, run exactly one prepared statement of sql/pastes.sql per
request through a psycopg_pool ConnectionPool and send back its result: no
validation, logging, metrics or middleware. They take and give back connections
with getconn/putconn, as the service does: the pool's connection() context
also commits on the way out, which costs an autocommit connection a trip
through psycopg's wait loop per request, though no round trip.

The insert is the statement the service runs for a create under the same
settings: with rate limits on (production), insert_paste_rate_limited, which
takes the client's create token in the same round trip; the client is found
as the service finds it (service.ratelimit.cached_client_key: X-Forwarded-For from a
trusted proxy), so both fill the same buckets. `plain_insert_app` runs
insert_paste, the statement without the limiter, to show what the limiter costs.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import falcon
import orjson
from psycopg_pool import ConnectionPool

from service.config import Config
from service.queries import load_queries
from service.ratelimit import cached_client_key, create_limit

BODY = b"x" * 1023 + b"\n"
TEXT = "text/plain; charset=utf-8"
# The service stores a SHA-256 of each delete token; the bare insert stores a fixed one.
TOKEN_HASH = hashlib.sha256(b"bench").digest()


def statement(name: str) -> str:
    """The SQL of a named query (a Query object, or a plain string in older trees)."""
    query: Any = load_queries()[name]
    return str(getattr(query, "sql", query))


class _App(falcon.App):
    """gunicorn's worker_exit hook calls `close()`: the pool closes with the worker."""

    def __init__(self, pool: ConnectionPool | None = None) -> None:
        super().__init__()
        self.pool = pool

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


class _Constant:
    def on_get(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        resp.content_type = TEXT
        resp.data = BODY


class _Read:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.sql = statement("read_paste")

    def on_get(self, req: falcon.Request, resp: falcon.Response, paste_id: str) -> None:
        conn = self.pool.getconn()
        try:
            row = conn.execute(self.sql, {"id": paste_id}, prepare=True).fetchone()
        finally:
            self.pool.putconn(conn)
        if row is None:
            raise falcon.HTTPNotFound()
        resp.content_type = TEXT
        resp.data = row[1].encode("utf-8")


class _Insert:
    def __init__(
        self, pool: ConnectionPool, limit: dict[str, Any] | None, trusted: tuple[str, ...] = ()
    ) -> None:
        self.pool = pool
        self.limit = limit
        self.sql = insert_statement(limit)
        # The service's client key (and its cache), so both fill the same buckets.
        self.client = cached_client_key(trusted)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        content = orjson.loads(req.bounded_stream.read())["content"]
        params = {
            "id": secrets.token_hex(8),
            "content": content,
            "title": None,
            "language": None,
            "visibility": "unlisted",
            "burn_after_read": False,
            "size": len(content.encode("utf-8")),
            "expires_in": None,
            "delete_token_hash": TOKEN_HASH,
        }
        if self.limit is not None:
            client = self.client(req.remote_addr, req.env.get("HTTP_X_FORWARDED_FOR"))
            params |= self.limit | {"client": client}
        conn = self.pool.getconn()
        try:
            cursor = conn.execute(self.sql, params, prepare=True)
            row = cursor.fetchone()
            names = [column.name for column in cursor.description or ()]
        finally:
            self.pool.putconn(conn)
        resp.status = falcon.HTTP_201
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps(dict(zip(names, row or (), strict=True)))


def _pool(config: Config) -> ConnectionPool:
    """Sized like the service's pool; autocommit, as the service's connections
    are, so one statement is one round trip."""
    return ConnectionPool(
        config.database_url or "",
        min_size=config.pool_min_size,
        max_size=config.pool_max_size,
        timeout=config.pool_timeout,
        kwargs={"autocommit": True},
        name="bench-ceiling",
        open=True,
    )


def _with_health(app: _App) -> _App:
    app.add_route("/healthz", _Constant())
    return app


def http_app() -> falcon.App:
    """Any GET: a constant 1 KiB body."""
    app = _App()
    app.add_sink(_Constant().on_get, prefix="/")
    return app


def read_app() -> falcon.App:
    """GET /api/v1/pastes/{id}[/raw]: read_paste, the content as text."""
    return _database_app(reads=True)


def mixed_app() -> falcon.App:
    """Both: the reads and the insert on one pool, for the mixed scenario."""
    return _database_app(reads=True, insert=True)


def insert_app() -> falcon.App:
    """POST /api/v1/pastes {"content": …}: the service's create statement, its row as JSON."""
    return _database_app(insert=True)


def plain_insert_app() -> falcon.App:
    """POST /api/v1/pastes {"content": …}: insert_paste (no rate limit), its row as JSON."""
    return _database_app(insert=True, limited=False)


def create_bucket(config: Config) -> dict[str, Any] | None:
    """The create bucket's parameters of insert_paste_rate_limited, as the
    service passes them, or None when creates are not limited."""
    if not config.rate_limits_enabled:
        return None
    limit = create_limit(config)
    return {"bucket": limit.bucket, "burst": limit.burst, "per_second": limit.per_second}


def insert_statement(bucket: dict[str, Any] | None) -> str:
    """The service's create statement: behind the client's bucket when creates
    are limited (`bucket` from create_bucket), else the plain insert."""
    return statement("insert_paste" if bucket is None else "insert_paste_rate_limited")


def _database_app(*, reads: bool = False, insert: bool = False, limited: bool = True) -> falcon.App:
    config = Config.from_env()
    pool = _pool(config)
    app = _with_health(_App(pool))
    if reads:
        read = _Read(pool)
        app.add_route("/api/v1/pastes/{paste_id}", read)
        app.add_route("/api/v1/pastes/{paste_id}/raw", read)
    if insert:
        limit = create_bucket(config) if limited else None
        app.add_route("/api/v1/pastes", _Insert(pool, limit, config.trusted_proxies))
    return app
