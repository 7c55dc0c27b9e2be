"""Per-request plumbing: request ids, the access log line, metrics, the
headers every response carries, the miss limiter, and the pool's life with
the app's (ASGI lifespan)."""

from __future__ import annotations

import os
import re
import time
from itertools import count
from typing import Any

import structlog
from falcon.asgi import Request, Response

from service import metrics
from service.db import Database
from service.errors import RateLimited
from service.problems import render_service_error
from service.ratelimit import ClientKeys, RateLimiter

log = structlog.get_logger("service.access")

# An incoming X-Request-ID is echoed only if it is short and plain, so it
# cannot smuggle anything into logs or headers.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UNMATCHED_ROUTE = "unmatched"
_POOL_SAMPLE_SECONDS = 1.0
# Methods become metric labels: any other is OTHER, so a client cannot mint label sets.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestIds:
    """Ids for requests that bring none: 16 random hex digits per process, then a counter."""

    def __init__(self) -> None:
        self._reset()
        # A process forked after ids were made must not repeat them.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


def valid_request_id(incoming: str | None) -> str | None:
    """An incoming request id if it is short and plain enough to echo."""
    return incoming if incoming and _REQUEST_ID.fullmatch(incoming) else None


class RequestContext:
    """Binds a request id to every log line of a request and echoes it back,
    and writes one access line (with the client as the rate limiter keys it)
    and the request's metrics when it ends."""

    def __init__(self, db: Database | None, clients: ClientKeys) -> None:
        self.db = db
        self.clients = clients
        self.ids = RequestIds()
        self._pool_sampled_at = 0.0

    async def process_request(self, req: Request, resp: Response) -> None:
        req.context.started = time.perf_counter()
        request_id = valid_request_id(req.get_header("X-Request-ID")) or self.ids.next()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        resp.set_header("X-Request-ID", request_id)
        resp.set_header("X-Content-Type-Options", "nosniff")

    async def process_response(
        self,
        req: Request,
        resp: Response,
        resource: Any,
        req_succeeded: bool,
    ) -> None:
        duration = time.perf_counter() - req.context.started
        route = req.uri_template or UNMATCHED_ROUTE
        status = resp.status_code
        method = req.method if req.method in _KNOWN_METHODS else "OTHER"
        metrics.record_request(route, method, status, duration)
        log.info(
            "request_handled",
            method=method,
            route=route,
            status=status,
            duration_ms=round(duration * 1000, 3),
            client=self.clients.of(req),
        )
        self._sample_pool()

    def _sample_pool(self) -> None:
        now = time.monotonic()
        if self.db is None or now - self._pool_sampled_at < _POOL_SAMPLE_SECONDS:
            return
        self._pool_sampled_at = now
        metrics.record_pool(self.db.stats())


class PoolLifespan:
    """Opens the app's own pool when the server starts it and closes it when
    the server stops: in each gunicorn worker process, after the fork."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def process_startup(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        await self.db.open()

    async def process_shutdown(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        await self.db.close()


class MissLimits:
    """Counts misses against the client's miss limit: a paste lookup (GET or
    HEAD) that found nothing, and a DELETE answered 403 or 404 (after its 401
    check), so a delete cannot tell a live id from a dead one either. Past the
    limit a miss is answered 429; a read of a paste that exists never is.
    (Wrong passwords are counted by the resource that checks them.)"""

    LOOKUPS = frozenset({"/api/v1/pastes/{paste_id}", "/api/v1/pastes/{paste_id}/raw"})
    ITEM = "/api/v1/pastes/{paste_id}"

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    def _is_miss(self, req: Request, status: int) -> bool:
        if req.method == "DELETE":
            return status in (403, 404) and req.uri_template == self.ITEM
        return status == 404 and req.uri_template in self.LOOKUPS

    async def process_response(
        self,
        req: Request,
        resp: Response,
        resource: Any,
        req_succeeded: bool,
    ) -> None:
        if not self._is_miss(req, resp.status_code):
            return
        try:
            await self.limiter.miss(self.limiter.client_keys.of(req))
        except RateLimited as exc:
            render_service_error(resp, exc, exc.retry_after)
