"""Refusals made from the request line and headers alone, before the Falcon
app sees a request: a request target or header over the limits (414, 431),
and a create whose declared Content-Length is over its limit (413).

httptools, uvicorn's parser, bounds neither the request line nor the
headers, so these limits are the service's. And Falcon's ASGI app waits for
the first body event before it routes a request, while a client that
declared a large body often waits for a reply (or for `100 Continue`) before
it sends any: here the 413 goes out with no body byte read.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from service import metrics
from service.config import Config
from service.cors import CorsPolicy
from service.errors import ContentTooLarge, HeadersTooLarge, ServiceError, UriTooLong
from service.httpheaders import create_body_kind
from service.middleware import UNMATCHED_ROUTE, RequestIds, valid_request_id
from service.problems import PROBLEM_JSON, problem, status_of

log = structlog.get_logger("service.access")

CREATE_PATH = "/api/v1/pastes"
# What nothing legitimate exceeds (gunicorn's own defaults).
MAX_REQUEST_TARGET = 4096
MAX_HEADER_FIELDS = 50
MAX_HEADER_FIELD_BYTES = 8190


def refusal(config: Config, scope: dict[str, Any], headers: list[Any]) -> ServiceError | None:
    """Why the request must be refused before its body is read, if it must."""
    if len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") > (
        MAX_REQUEST_TARGET
    ):
        return UriTooLong()
    if len(headers) > MAX_HEADER_FIELDS:
        return HeadersTooLarge(f"at most {MAX_HEADER_FIELDS} header fields are accepted")
    content_type = length = None
    for name, value in headers:
        if len(name) + len(value) > MAX_HEADER_FIELD_BYTES:
            return HeadersTooLarge(f"a header field is over {MAX_HEADER_FIELD_BYTES} bytes")
        if name == b"content-length":
            length = value
        elif name == b"content-type":
            content_type = value
    if scope["method"] != "POST" or scope["path"] != CREATE_PATH or not length:
        return None
    kind = create_body_kind(content_type.decode("latin-1") if content_type else None)
    if kind is None or not length.isdigit():
        return None  # the app answers 415 (which comes first) or 400
    limit = config.body_limit(kind)
    if int(length) > limit:
        return ContentTooLarge(f"the body is {int(length)} bytes; the limit is {limit} bytes")
    return None


class EarlyRefusals:
    """An ASGI app in front of `app` (the Falcon app) that answers the
    requests `refusal` names itself, with a problem document."""

    def __init__(self, app: Any, config: Config, cors: CorsPolicy | None = None) -> None:
        self.app = app
        self.config = config
        self.ids = RequestIds()
        self.cors = cors or CorsPolicy(())

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            if not isinstance(headers, list):  # the ASGI spec allows iterables of iterables
                headers = [tuple(pair) for pair in headers]
                scope = {**scope, "headers": headers}
            error = refusal(self.config, scope, headers)
            if error is not None:
                await self._refuse(scope, headers, send, error)
                return
        await self.app(scope, receive, send)

    async def _refuse(
        self, scope: dict[str, Any], headers: list[Any], send: Any, error: ServiceError
    ) -> None:
        started = time.perf_counter()
        incoming = next((v for n, v in headers if n == b"x-request-id"), b"").decode("latin-1")
        request_id = valid_request_id(incoming) or self.ids.next()
        status = status_of(error)
        body = problem(status, error.detail)
        origin = next((v for n, v in headers if n == b"origin"), None)
        cors = self.cors.headers(origin.decode("latin-1") if origin is not None else None)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"connection", b"close"),
                    *((n.lower().encode(), v.encode("latin-1")) for n, v in cors),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        route = CREATE_PATH if isinstance(error, ContentTooLarge) else UNMATCHED_ROUTE
        method = scope["method"]
        metrics.record_request(route, method, status, time.perf_counter() - started)
        log.info(
            "request_handled", request_id=request_id, method=method, route=route, status=status
        )
