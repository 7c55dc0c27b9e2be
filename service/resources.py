"""Falcon resources: parse the request, call one service function, shape the reply."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import falcon
import orjson
from falcon.asgi import Request, Response

from service import bodies, cursors, domain, httpheaders, metrics, pastes, views
from service.config import Config
from service.db import Database
from service.domain import Paste
from service.errors import (
    DatabaseUnavailable,
    InvalidInput,
    MissingDeleteToken,
    UnsupportedMediaType,
    WrongPassword,
)
from service.passwords import Hasher
from service.ratelimit import ClientKeys, RateLimiter, peer_of

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
# An abuse report is a reason and a short detail.
REPORT_BODY_LIMIT = 16 * 1024
# Create bodies over LARGE_BODY_BYTES are read and parsed LARGE_BODY_SLOTS at a
# time per process, which bounds what they cost it (see bodies.LargeBodies).
LARGE_BODY_BYTES = 1024 * 1024
LARGE_BODY_SLOTS = 2


class _PasteResource:
    def __init__(self, db: Database, config: Config, limiter: RateLimiter) -> None:
        self.db = db
        self.config = config
        self.limiter = limiter if limiter.enabled else None
        self.cursor_key = config.secret_key.encode("utf-8")
        self.hasher = Hasher(
            n=config.password_scrypt_n, r=config.password_scrypt_r, p=config.password_scrypt_p
        )

    def _base(self, req: Request) -> str:
        # req.prefix is computed on access: only when PUBLIC_BASE_URL is unset.
        return self.config.public_base_url or views.base_url(None, req.prefix)

    def _client(self, req: Request, limiter: RateLimiter) -> str:
        return limiter.client_keys.of(req)

    async def _read(self, req: Request, paste_id: str, *, consume: bool) -> Paste:
        """The paste a GET (`consume`) or HEAD asks for, with the password of
        its Basic credentials; a wrong password counts as a miss."""
        password = httpheaders.basic_password(req.get_header("Authorization"))
        try:
            paste = await pastes.read_paste(
                self.db, paste_id, consume=consume, password=password, hasher=self.hasher
            )
        except WrongPassword:
            if self.limiter is not None:
                await self.limiter.miss(self._client(req, self.limiter))
            raise
        if paste.views_left == 0:  # this read took the last view
            metrics.PASTES_DELETED.labels("burn" if paste.burn_after_read else "views").inc()
        return paste


def _send_json(resp: Response, document: Any) -> None:
    resp.content_type = JSON
    resp.data = views.to_json(document)


_CACHE_NEVER_EXPIRING = f"public, max-age={httpheaders.cache_max_age(None, domain.utc_now())}"


def _cache_control(resp: Response, paste: Paste) -> None:
    if not paste.cacheable:
        value = "no-store"
    elif paste.expires_at is None:  # most pastes: no clock to read
        value = _CACHE_NEVER_EXPIRING
    else:
        value = f"public, max-age={httpheaders.cache_max_age(paste.expires_at, domain.utc_now())}"
    resp.set_header("Cache-Control", value)


def _prefers_text(req: Request) -> bool:
    """Whether the create's reply should be the plain-text link (else JSON)."""
    if req.get_header("Accept") in (None, "*/*", JSON):  # most clients: nothing to negotiate
        return False
    return req.client_prefers([JSON, "text/plain"]) == "text/plain"


class PasteCollection(_PasteResource):
    """`/api/v1/pastes`: create a paste, list public ones."""

    def __init__(self, db: Database, config: Config, limiter: RateLimiter) -> None:
        super().__init__(db, config, limiter)
        self.large_bodies = bodies.LargeBodies(
            LARGE_BODY_BYTES, LARGE_BODY_SLOTS, wait=config.body_timeout
        )

    async def on_post(self, req: Request, resp: Response) -> None:
        new = await self._new_paste(req)
        created = await pastes.create_paste(self.db, new, self.hasher)
        metrics.PASTES_CREATED.inc()
        base = self._base(req)
        url = views.paste_url(base, created.paste.id)
        resp.status = falcon.HTTP_201
        # Set verbatim, so the header is exactly the body's `url`.
        resp.set_header("Location", url)
        resp.set_header("Cache-Control", "no-store")
        if _prefers_text(req):
            resp.set_header("X-Delete-Token", created.delete_token)
            resp.content_type = TEXT
            resp.data = f"{url}/raw\n".encode()
        else:
            document = views.metadata(created.paste, base)
            document["delete_token"] = created.delete_token
            _send_json(resp, document)

    async def _new_paste(self, req: Request) -> domain.NewPaste:
        # The order of the checks is the order of precedence: 415, 413, 400, 422
        # (and 451 for blocked content, when the insert finds it blocked).
        kind = httpheaders.create_body_kind(req.content_type)
        if kind is None:
            raise UnsupportedMediaType()
        limits = self.config
        limit = limits.body_limit(kind)
        bodies.check_declared_length(req, limit)
        # The create token is taken before the body is read and parsed, so
        # the work a client can make us do is bounded by its create limit.
        if self.limiter is not None:
            await self.limiter.take(self.limiter.creates, self._client(req, self.limiter))
        async with self.large_bodies.admit(req) as admission:
            return await self._read_new_paste(req, kind, limit, admission)

    async def _read_new_paste(
        self, req: Request, kind: str, limit: int, admission: bodies.Admission
    ) -> domain.NewPaste:
        limits = self.config
        document: object
        if kind == "form":
            document = await bodies.read_form(
                req, limit, limits.paste_max_bytes, limits.body_timeout
            )
        else:
            body = await bodies.read_limited(req, limit, limits.body_timeout, admission)
            if kind == "text":
                document = {"content": bodies.decode_text(body)}
            else:
                document = bodies.parse_json(body, object_only_past=LARGE_BODY_BYTES)
        if isinstance(document, dict):
            domain.check_content_size(document.get("content"), limits.paste_max_bytes)
        bodies.check_query_utf8(req.query_string)
        if not isinstance(document, dict):
            raise InvalidInput("the body must be a JSON object")
        fields: dict[str, object] = document
        if kind == "form":
            fields = domain.fields_from_text(document)
        # The other fields may come from the query string (with any body),
        # but never the same field from both.
        query = domain.fields_from_text(req.params)
        if "content" in query:
            raise InvalidInput("content goes in the body, not the query", field="content")
        for name in sorted(query.keys() & fields.keys()):
            raise InvalidInput(f"{name} is given both in the query and the body", field=name)
        fields.update(query)
        return domain.validate_new_paste(
            fields, max_bytes=limits.paste_max_bytes, max_ttl=limits.paste_max_ttl
        )

    async def on_get(self, req: Request, resp: Response) -> None:
        # A cursor that does not decode (400) outranks a bad limit (422).
        raw_cursor = req.params.get("cursor")
        after = None
        if isinstance(raw_cursor, str) and raw_cursor:
            after = cursors.decode_cursor(raw_cursor, self.cursor_key)
        limit = domain.parse_limit(req.params.get("limit"))
        if isinstance(raw_cursor, list):
            raise InvalidInput("cursor is given more than once", field="cursor")
        if raw_cursor == "":
            raise InvalidInput("cursor must not be empty", field="cursor")
        page = await pastes.list_public(self.db, limit=limit, after=after)
        base = self._base(req)
        next_cursor = (
            cursors.encode_cursor(page.next_cursor, self.cursor_key) if page.next_cursor else None
        )
        resp.cache_control = ["no-cache"]
        _send_json(
            resp,
            {
                "items": [views.metadata(paste, base) for paste in page.items],
                "next_cursor": next_cursor,
            },
        )


class PasteItem(_PasteResource):
    """`/api/v1/pastes/{paste_id}`: read as JSON, delete."""

    async def on_get(self, req: Request, resp: Response, paste_id: str) -> None:
        paste = await self._read(req, paste_id, consume=True)
        _cache_control(resp, paste)
        _send_json(resp, views.full(paste, self._base(req)))
        metrics.PASTES_READ.inc()

    async def on_head(self, req: Request, resp: Response, paste_id: str) -> None:
        paste = await self._read(req, paste_id, consume=False)
        _cache_control(resp, paste)
        _send_json(resp, views.full(paste, self._base(req)))

    async def on_delete(self, req: Request, resp: Response, paste_id: str) -> None:
        # The token is checked first, before anything about the id.
        token = httpheaders.bearer_token(req.get_header("Authorization"))
        if token is None:
            raise MissingDeleteToken()
        await pastes.delete_paste(self.db, paste_id, token)
        metrics.PASTES_DELETED.labels("token").inc()
        resp.status = falcon.HTTP_204


class PasteRaw(_PasteResource):
    """`/api/v1/pastes/{paste_id}/raw`: the content alone, cacheable."""

    async def on_get(self, req: Request, resp: Response, paste_id: str) -> None:
        paste = await self._read(req, paste_id, consume=True)
        if self._respond(req, resp, paste):
            metrics.PASTES_READ.inc()

    async def on_head(self, req: Request, resp: Response, paste_id: str) -> None:
        self._respond(req, resp, await self._read(req, paste_id, consume=False))

    def _respond(self, req: Request, resp: Response, paste: Paste) -> bool:
        """Fill the reply; whether it carries the content (else a 304)."""
        assert paste.content is not None
        body = paste.content.encode("utf-8")
        etag = httpheaders.paste_etag(paste.created_at)
        _cache_control(resp, paste)
        resp.set_header("ETag", etag)
        resp.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        # A read that takes a view is always sent: the view is taken.
        if_none_match = req.get_header("If-None-Match")
        if paste.max_views is None and httpheaders.etag_matches(if_none_match, etag):
            resp.status = falcon.HTTP_304
            return False
        resp.content_type = TEXT
        resp.data = body
        return True


class PasteReport(_PasteResource):
    """`/api/v1/pastes/{paste_id}/report`: report abuse to the operator."""

    async def on_post(self, req: Request, resp: Response, paste_id: str) -> None:
        if httpheaders.create_body_kind(req.content_type) != "json":
            raise UnsupportedMediaType("Send the report as application/json.")
        bodies.check_declared_length(req, REPORT_BODY_LIMIT)
        if self.limiter is not None:
            await self.limiter.take(self.limiter.reports, self._client(req, self.limiter))
        body = await bodies.read_limited(req, REPORT_BODY_LIMIT, self.config.body_timeout)
        reason, detail = domain.validate_report(bodies.parse_json(body))
        await pastes.report_paste(self.db, paste_id, reason, detail)
        resp.status = falcon.HTTP_202
        resp.cache_control = ["no-store"]
        _send_json(resp, {"status": "received"})


class Usage(_PasteResource):
    """`/`: how to use this service from a terminal."""

    async def on_get(self, req: Request, resp: Response) -> None:
        resp.content_type = TEXT
        resp.cache_control = ["no-cache"]
        resp.text = views.usage(self._base(req))


class Health:
    """`/healthz`: the process is up. Touches no database."""

    async def on_get(self, req: Request, resp: Response) -> None:
        resp.cache_control = ["no-store"]
        _send_json(resp, {"status": "ok"})


class Ready:
    """`/readyz`: the database answers within a short timeout."""

    def __init__(self, db: Database, config: Config) -> None:
        self.db = db
        self.timeout = config.readiness_timeout

    async def on_get(self, req: Request, resp: Response) -> None:
        await self.db.ping(timeout=self.timeout)
        resp.cache_control = ["no-store"]
        _send_json(resp, {"status": "ready"})


class Metrics:
    """`/metrics`: Prometheus text format, for the peers of METRICS_ALLOW_FROM
    only, and never through a proxy (a relayed request could come from anyone)."""

    def __init__(self, db: Database, config: Config) -> None:
        self.db = db
        self.scrapers = ClientKeys(config.metrics_allow_from)

    async def on_get(self, req: Request, resp: Response) -> None:
        relayed = req.get_header("X-Forwarded-For") or req.get_header("Forwarded")
        if relayed or not self.scrapers.is_trusted_peer(peer_of(req)):
            raise falcon.HTTPNotFound()
        metrics.record_pool(self.db.stats())
        removed = None  # metrics are served through a database outage, without it
        with suppress(DatabaseUnavailable):
            row = await self.db.one("count_removed_pastes")
            removed = row["removed"] if row else None
        resp.data, resp.content_type = metrics.exposition(removed)
        resp.cache_control = ["no-store"]


class OpenAPI:
    """`/openapi.json`: the API's OpenAPI 3.1 description."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.body = orjson.dumps(document)

    async def on_get(self, req: Request, resp: Response) -> None:
        resp.content_type = JSON
        resp.data = self.body
