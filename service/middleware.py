"""Per-request plumbing: request ids, the access log line, metrics, and the
headers every response carries."""

from __future__ import annotations

import itertools
import os
import re
import time
from typing import Any

import falcon

from service import metrics
from service.db import Database
from service.errors import RateLimited
from service.logs import REQUEST_ID, AccessLog
from service.problems import render_service_error
from service.ratelimit import RateLimiter

# An incoming X-Request-ID is echoed only if it is short and plain, so it
# cannot smuggle anything into logs or headers.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UNMATCHED_ROUTE = "unmatched"
_POOL_SAMPLE_SECONDS = 1.0
# Methods become metric labels: any other (gunicorn accepts any token) is OTHER,
# so a client cannot mint label sets.
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestIds:
    """Ids for requests that bring none: 32 hex digits, the first 16 random per
    process and the last 16 a counter. Unique without a system call per
    request (os.urandom is one); an id names a request in logs and is no secret."""

    def __init__(self) -> None:
        self._reset()
        # A forked worker must not repeat its parent's ids.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        # Two short formats: one of a 128-bit number costs twice as much.
        return f"{self._prefix}{next(self._counter):016x}"


class RequestContext:
    """Binds a request id to every log line of a request, echoes it back,
    writes one access line and the request metrics when the request ends."""

    def __init__(self, db: Database | None, access_log: AccessLog) -> None:
        self.db = db
        self.access_log = access_log
        self.ids = RequestIds()
        self._pool_sampled_at = 0.0

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()
        # The environ itself: get_header raises and catches a KeyError for a
        # header that is absent, as this one nearly always is (0.8 µs).
        incoming = req.env.get("HTTP_X_REQUEST_ID")
        request_id = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else self.ids.next()
        req.context.request_id = request_id
        # Every other line of the request carries the id too; reset at its end.
        req.context.log_context = REQUEST_ID.set(request_id)
        resp.set_header("X-Request-ID", request_id)
        resp.set_header("X-Content-Type-Options", "nosniff")

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        started = getattr(req.context, "started", None)
        duration = time.perf_counter() - started if started is not None else 0.0
        route = req.uri_template or UNMATCHED_ROUTE
        status = resp.status_code
        method = req.method if req.method in _KNOWN_METHODS else "OTHER"
        metrics.record_request(route, method, status, duration)
        self.access_log.write(
            request_id=getattr(req.context, "request_id", None),
            method=req.method,
            route=route,
            status=status,
            # Whole microseconds: round() to 3 digits costs twice as much.
            duration_ms=int(duration * 1_000_000) / 1000,
        )
        self._sample_pool()
        log_context = getattr(req.context, "log_context", None)
        if log_context is not None:
            REQUEST_ID.reset(log_context)

    def _sample_pool(self) -> None:
        now = time.monotonic()
        if self.db is None or now - self._pool_sampled_at < _POOL_SAMPLE_SECONDS:
            return
        self._pool_sampled_at = now
        metrics.record_pool(self.db.stats())


class MissLimits:
    """Limits lookups that find nothing: a lookup that ends in 404 takes a
    "miss" token, and a client refused for misses is answered 429 before its
    next lookup, with no database work. (Creates are limited by the insert.)"""

    LOOKUPS = frozenset({"/api/v1/pastes/{paste_id}", "/api/v1/pastes/{paste_id}/raw"})

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        # Finding the client key parses addresses: only worth it while someone is refused.
        # DELETE is left alone: its missing token (401) comes before anything else.
        if (
            self.limiter.refusing
            and req.method in ("GET", "HEAD")
            and req.uri_template in self.LOOKUPS
        ):
            self.limiter.check_refused(client_of(req, self.limiter))

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        if resp.status_code != 404 or req.uri_template not in self.LOOKUPS:
            return
        try:
            self.limiter.take(self.limiter.misses, client_of(req, self.limiter))
        except RateLimited as exc:
            render_service_error(resp, exc, exc.retry_after)


def client_of(req: falcon.Request, limiter: RateLimiter) -> str:
    """The key `req`'s client is limited by."""
    # From the environ, as X-Request-ID is: a client that talks to the service
    # directly sends no X-Forwarded-For, and get_header would raise for it.
    return limiter.client(req.remote_addr, req.env.get("HTTP_X_FORWARDED_FOR"))
