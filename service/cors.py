"""CORS for a paste application served from another origin (CORS_ALLOW_ORIGINS).

Falcon's own CORSMiddleware echoes whatever headers a preflight asks for,
answers it 200 with every method of the route and adds `Vary: Origin` only
to allowed origins; the contract wants a fixed list, 204 and `Vary: Origin`
on every reply, so this small middleware does it. No cookies are used, so
credentials are never allowed.
"""

from __future__ import annotations

from typing import Any

import falcon
from falcon.asgi import Request, Response

EXPOSE_HEADERS = "Location, ETag, Retry-After, X-Delete-Token, X-Request-ID"
ALLOW_METHODS = "GET, HEAD, POST, DELETE"
ALLOW_HEADERS = "Content-Type, Authorization, If-None-Match"
MAX_AGE_SECONDS = 600


class CorsPolicy:
    """Which origins may call the service from a browser, and the headers that say so."""

    def __init__(self, allow_origins: tuple[str, ...]) -> None:
        self.any_origin = "*" in allow_origins
        self.origins = frozenset(allow_origins)

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    def allows(self, origin: str | None) -> bool:
        return origin is not None and (self.any_origin or origin in self.origins)

    def headers(self, origin: str | None) -> list[tuple[str, str]]:
        """What every reply carries while CORS is on."""
        if not self.enabled:
            return []
        headers = [("Vary", "Origin")]
        if self.allows(origin):
            headers.append(("Access-Control-Allow-Origin", "*" if self.any_origin else str(origin)))
            headers.append(("Access-Control-Expose-Headers", EXPOSE_HEADERS))
        return headers


class Cors:
    """Falcon middleware: answers preflights from allowed origins (204) and
    marks every reply as the policy says."""

    def __init__(self, policy: CorsPolicy) -> None:
        self.policy = policy

    async def process_request(self, req: Request, resp: Response) -> None:
        origin = req.get_header("Origin")
        if (
            req.method == "OPTIONS"
            and req.get_header("Access-Control-Request-Method")
            and self.policy.allows(origin)
        ):
            resp.status = falcon.HTTP_204
            resp.set_header("Access-Control-Allow-Methods", ALLOW_METHODS)
            resp.set_header("Access-Control-Allow-Headers", ALLOW_HEADERS)
            resp.set_header("Access-Control-Max-Age", str(MAX_AGE_SECONDS))
            resp.complete = True  # no resource runs for a preflight

    async def process_response(
        self, req: Request, resp: Response, resource: Any, req_succeeded: bool
    ) -> None:
        for name, value in self.policy.headers(req.get_header("Origin")):
            resp.append_header(name, value)
