"""RFC 9457 problem documents: one serializer, and the handlers that map the
service's exceptions (and Falcon's own errors) onto them."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import falcon
import orjson
import structlog

from service import errors

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("service.problems")

STATUS_OF: dict[type[errors.ServiceError], int] = {
    errors.MalformedRequest: 400,
    errors.BodyTimeout: 408,
    errors.UriTooLong: 414,
    errors.HeadersTooLarge: 431,
    errors.MissingDeleteToken: 401,
    errors.PasswordRequired: 401,
    errors.WrongDeleteToken: 403,
    errors.PasteNotFound: 404,
    errors.ContentTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.InvalidInput: 422,
    errors.RateLimited: 429,
    errors.PasteRemoved: 451,
    errors.ContentBlocked: 451,
    errors.DatabaseUnavailable: 503,
    errors.ServerBusy: 503,
}


# What a 401 asks for, by what was missing.
CHALLENGE_OF: dict[type[errors.ServiceError], str] = {
    errors.MissingDeleteToken: "Bearer",
    errors.PasswordRequired: 'Basic realm="paste", charset="UTF-8"',
}

_FALCON_DETAILS = {
    404: "There is nothing at this path.",
    405: "This method is not allowed here; the Allow header lists those that are.",
}


def problem(status: int, detail: str, **extra: Any) -> bytes:
    """A problem document: `type`, `title`, `status`, `detail` (+ extensions)."""
    document = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return orjson.dumps(document)


def _lookup(
    table: dict[type[errors.ServiceError], Any], exc: errors.ServiceError, default: Any
) -> Any:
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return default


def status_of(exc: errors.ServiceError) -> int:
    return int(_lookup(STATUS_OF, exc, 500))


def serialize_http_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    """Falcon's own errors (unknown route, 405, bad headers) as problem documents."""
    status = exc.status_code
    detail = exc.description or _FALCON_DETAILS.get(status) or HTTPStatus(status).description
    resp.data = problem(status, detail)
    resp.content_type = PROBLEM_JSON
    resp.append_header("Vary", "Accept")


def render_service_error(
    resp: falcon.Response, exc: errors.ServiceError, retry_after_seconds: int
) -> None:
    """Write `exc` into `resp` as a problem document with its status and
    headers: a 503 carries Retry-After, a 429 its own, a 401 a challenge."""
    status = status_of(exc)
    extra: dict[str, Any] = {}
    if isinstance(exc, errors.InvalidInput) and exc.field:
        extra["field"] = exc.field
    resp.status = status
    resp.content_type = PROBLEM_JSON
    resp.data = problem(status, exc.detail, **extra)
    if status == 503:
        resp.set_header("Retry-After", str(retry_after_seconds))
        log.warning("database_unavailable", error=type(exc).__name__, cause=_cause(exc))
    elif status == 401:
        resp.set_header("WWW-Authenticate", _lookup(CHALLENGE_OF, exc, "Bearer"))
        resp.cache_control = ["no-store"]
    elif isinstance(exc, errors.RateLimited):
        resp.set_header("Retry-After", str(exc.retry_after))
        resp.cache_control = ["no-store"]


class ServiceErrorHandler:
    """The Falcon error handler for every ServiceError."""

    def __init__(self, retry_after_seconds: int) -> None:
        self.retry_after_seconds = retry_after_seconds

    async def __call__(
        self, req: falcon.Request, resp: falcon.Response, exc: errors.ServiceError, params: Any
    ) -> None:
        render_service_error(resp, exc, self.retry_after_seconds)


async def handle_unexpected(
    req: falcon.Request, resp: falcon.Response, exc: Exception, params: Any
) -> None:
    """Any other exception is a bug: log it with the request id, answer 500."""
    log.exception("unhandled_exception", error=type(exc).__name__)
    resp.status = 500
    resp.content_type = PROBLEM_JSON
    resp.data = problem(500, "The server failed to handle this request.")


def _cause(exc: BaseException) -> str | None:
    cause = exc.__cause__
    return type(cause).__name__ if cause is not None else None
