"""Bare Falcon ASGI apps that measure what the service could reach at best,
run by gunicorn with the service's own gunicorn.conf.py (so the same uvicorn
worker, loop, parser and processes):

    gunicorn -c gunicorn.conf.py 'bench.ceilings:http_app()'    # constant 1 KiB body
    gunicorn -c gunicorn.conf.py 'bench.ceilings:read_app()'    # find_paste, nothing else
    gunicorn -c gunicorn.conf.py 'bench.ceilings:insert_app()'  # the service's create statement
    gunicorn -c gunicorn.conf.py 'bench.ceilings:plain_insert_app()'  # insert_paste
    gunicorn -c gunicorn.conf.py 'bench.ceilings:mixed_app()'   # both, on one pool

The database apps take DATABASE_URL, the pool sizes and the rate limits from
the service's Config, run exactly one prepared statement of sql/pastes.sql per
request through a psycopg_pool AsyncConnectionPool (opened at ASGI startup) and
send back its result: no validation, logging, metrics or middleware.

The insert runs the statements the service runs for a create under the same
settings: with rate limits on, take_token for the client's create token and
then insert_paste; the client is found as the service finds it
(service.ratelimit.ClientKeys). `plain_insert_app` runs insert_paste alone.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import falcon
import falcon.asgi
import orjson
from falcon.asgi import Request, Response
from psycopg_pool import AsyncConnectionPool

from service.config import Config
from service.queries import load_queries
from service.ratelimit import ClientKeys, create_limit

BODY = b"x" * 1023 + b"\n"
TEXT = "text/plain; charset=utf-8"
# The service stores a SHA-256 of each delete token; the bare insert stores a fixed one.
TOKEN_HASH = hashlib.sha256(b"bench").digest()


def statement(name: str) -> str:
    """The SQL of a named query (a Query object, or a plain string in older trees)."""
    query: Any = load_queries()[name]
    return str(getattr(query, "sql", query))


class _Pool:
    """Opens the app's pool at ASGI startup, in the worker process, and closes it at shutdown."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def process_startup(self, scope: Any, event: Any) -> None:
        await self.pool.open(wait=False)

    async def process_shutdown(self, scope: Any, event: Any) -> None:
        await self.pool.close()


class _Constant:
    async def on_get(self, req: Request, resp: Response, **_: Any) -> None:
        resp.content_type = TEXT
        resp.data = BODY


class _Read:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self.sql = statement("find_paste")

    async def on_get(self, req: Request, resp: Response, paste_id: str) -> None:
        conn = await self.pool.getconn()
        try:
            cursor = await conn.execute(self.sql, {"id": paste_id}, prepare=True)
            row = await cursor.fetchone()
        finally:
            await self.pool.putconn(conn)
        if row is None:
            raise falcon.HTTPNotFound()
        resp.content_type = TEXT
        resp.data = row[1].encode("utf-8")


class _Insert:
    def __init__(
        self, pool: AsyncConnectionPool, limit: dict[str, Any] | None, trusted: tuple[str, ...] = ()
    ) -> None:
        self.pool = pool
        self.limit = limit
        self.statements = insert_statements(limit)
        # The service's client keys (and their cache), so both fill the same buckets.
        self.clients = ClientKeys(trusted)

    async def on_post(self, req: Request, resp: Response) -> None:
        content = orjson.loads(await req.stream.read())["content"]
        params = {
            "id": secrets.token_hex(8),
            "content": content,
            "content_sha256": hashlib.sha256(content.encode("utf-8")).digest(),
            "title": None,
            "language": None,
            "visibility": "unlisted",
            "max_views": None,
            "password_hash": None,
            "size": len(content.encode("utf-8")),
            "expires_in": None,
            "delete_token_hash": TOKEN_HASH,
        }
        if self.limit is not None:
            client = self.clients.of(req)
            params |= self.limit | {"client": client}
        conn = await self.pool.getconn()
        try:
            for sql in self.statements:
                cursor = await conn.execute(sql, params, prepare=True)
                row = await cursor.fetchone()
            names = [column.name for column in cursor.description or ()]
        finally:
            await self.pool.putconn(conn)
        resp.status = falcon.HTTP_201
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps(dict(zip(names, row or (), strict=True)))


def _pool(config: Config) -> AsyncConnectionPool:
    """Sized like the service's pool; autocommit, as the service's connections
    are, so one statement is one round trip."""
    return AsyncConnectionPool(
        config.database_url or "",
        min_size=config.pool_min_size,
        max_size=config.pool_max_size,
        timeout=config.pool_timeout,
        kwargs={"autocommit": True},
        name="bench-ceiling",
        open=False,
    )


def _app(pool: AsyncConnectionPool | None = None) -> falcon.asgi.App:
    app = falcon.asgi.App(middleware=[_Pool(pool)] if pool is not None else [])
    app.add_route("/healthz", _Constant())
    return app


def http_app() -> falcon.asgi.App:
    """Any GET: a constant 1 KiB body."""
    app = falcon.asgi.App()
    app.add_sink(_Constant().on_get, prefix="/")
    return app


def read_app() -> falcon.asgi.App:
    """GET /api/v1/pastes/{id}[/raw]: find_paste, the content as text."""
    return _database_app(reads=True)


def mixed_app() -> falcon.asgi.App:
    """Both: the reads and the insert on one pool, for the mixed scenario."""
    return _database_app(reads=True, insert=True)


def insert_app() -> falcon.asgi.App:
    """POST /api/v1/pastes {"content": …}: the service's create statement, its row as JSON."""
    return _database_app(insert=True)


def plain_insert_app() -> falcon.asgi.App:
    """POST /api/v1/pastes {"content": …}: insert_paste (no rate limit), its row as JSON."""
    return _database_app(insert=True, limited=False)


def create_bucket(config: Config) -> dict[str, Any] | None:
    """The create bucket's parameters of take_token, as the service passes
    them, or None when creates are not limited."""
    if not config.rate_limits_enabled:
        return None
    limit = create_limit(config)
    return {"bucket": limit.bucket, "burst": limit.burst, "per_second": limit.per_second}


def insert_statements(bucket: dict[str, Any] | None) -> list[str]:
    """The service's create statements: the client's token first when creates
    are limited (`bucket` from create_bucket), then the insert."""
    names = ["insert_paste"] if bucket is None else ["take_token", "insert_paste"]
    return [statement(name) for name in names]


def _database_app(
    *, reads: bool = False, insert: bool = False, limited: bool = True
) -> falcon.asgi.App:
    config = Config.from_env()
    pool = _pool(config)
    app = _app(pool)
    if reads:
        read = _Read(pool)
        app.add_route("/api/v1/pastes/{paste_id}", read)
        app.add_route("/api/v1/pastes/{paste_id}/raw", read)
    if insert:
        limit = create_bucket(config) if limited else None
        app.add_route("/api/v1/pastes", _Insert(pool, limit, config.trusted_proxies))
    return app
