"""Reading and parsing request bodies within a byte limit and a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import unquote_to_bytes

import orjson
from falcon.asgi import Request

from service.errors import (
    BodyTimeout,
    ContentTooLarge,
    InvalidInput,
    MalformedRequest,
    ServerBusy,
)

_FORM_CHUNK = 64 * 1024


def check_declared_length(req: Request, limit: int) -> None:
    """Refuse a declared Content-Length over `limit` before reading anything."""
    length = req.content_length
    if length is not None and length > limit:
        raise ContentTooLarge(f"the body is {length} bytes; the limit is {limit} bytes")


class LargeBodies:
    """Admits at most `slots` large bodies (over `threshold` bytes) at once in
    this process, from the first byte read to the end of their parse.

    Parsing JSON costs tens of bytes for every few bytes of input (millions of
    `{}` in a body near its limit take a parser hundreds of MiB); this bounds
    what concurrent large bodies can cost one process. A request that waits
    longer than `wait` seconds for a slot is answered 503.
    """

    def __init__(self, threshold: int, slots: int, wait: float) -> None:
        self.threshold = threshold
        self.wait = wait
        self._slots = asyncio.Semaphore(slots)

    async def acquire(self) -> None:
        try:
            async with asyncio.timeout(self.wait):
                await self._slots.acquire()
        except TimeoutError:
            raise ServerBusy() from None

    def release(self) -> None:
        self._slots.release()

    @asynccontextmanager
    async def admit(self, req: Request) -> AsyncIterator[Admission]:
        admission = Admission(self)
        try:
            if (req.content_length or 0) > self.threshold:
                await admission.take()
            yield admission
        finally:
            admission.release()


class Admission:
    """One request's hold on a LargeBodies slot, taken when its body turns out large."""

    def __init__(self, gate: LargeBodies) -> None:
        self.gate = gate
        self.held = False

    async def grown_to(self, size: int) -> None:
        if not self.held and size > self.gate.threshold:
            await self.take()

    async def take(self) -> None:
        await self.gate.acquire()
        self.held = True

    def release(self) -> None:
        if self.held:
            self.gate.release()
            self.held = False


async def read_limited(
    req: Request, limit: int, timeout: float, admission: Admission | None = None
) -> bytes:
    """The whole body, refusing more than `limit` bytes or a body still
    arriving after `timeout` seconds; a body that grows large takes its
    `admission` slot first.

    A declared Content-Length over the limit is refused before anything is
    read; a chunked body is read as it arrives and abandoned as soon as it
    passes the limit, so neither is ever buffered whole.
    """
    check_declared_length(req, limit)
    length = req.content_length
    received = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in req.stream:
                received += chunk
                if len(received) > limit:
                    raise ContentTooLarge(f"the body is over the limit of {limit} bytes")
                if admission is not None:
                    await admission.grown_to(len(received))
    except TimeoutError:
        raise BodyTimeout() from None
    if length is not None and len(received) != length:  # the client went away mid-upload
        raise MalformedRequest("the body ended before its Content-Length")
    return bytes(received)


async def read_form(
    req: Request, limit: int, content_limit: int, timeout: float
) -> dict[str, str | list[str]]:
    """The parts of a multipart/form-data body as {name: text}, a repeated
    name as a list. Refuses a body over `limit` bytes, a `content` part over
    `content_limit`, a body still arriving after `timeout` seconds, a part
    without a name and text that is not UTF-8 (after every size check, as
    413 outranks 400)."""
    check_declared_length(req, limit)
    raw: dict[str, list[bytes]] = {}
    total = 0
    try:
        async with asyncio.timeout(timeout):
            form = await req.get_media()
            async for part in form:
                name = part.name
                if not name:
                    raise MalformedRequest("every form part needs a name")
                data = bytearray()
                while chunk := await part.stream.read(_FORM_CHUNK):
                    data += chunk
                    total += len(chunk)
                    if total > limit:
                        raise ContentTooLarge(f"the body is over the limit of {limit} bytes")
                    if name == "content" and len(data) > content_limit:
                        raise ContentTooLarge(
                            f"content is over {content_limit} bytes; "
                            f"the limit is {content_limit} bytes"
                        )
                raw.setdefault(name, []).append(bytes(data))
    except TimeoutError:
        raise BodyTimeout() from None
    fields: dict[str, str | list[str]] = {}
    for name, values in raw.items():
        texts = [decode_text(value) for value in values]
        fields[name] = texts[0] if len(texts) == 1 else texts
    return fields


def decode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("the body is not valid UTF-8") from None


def parse_json(body: bytes, *, object_only_past: int | None = None) -> object:
    """The JSON value of `body`; NaN, Infinity and invalid UTF-8 are refused.

    A body over `object_only_past` bytes whose top level is not an object is
    refused (422) without being parsed: it cannot be what is asked for, and
    parsing it would cost many times its size.
    """
    large = object_only_past is not None and len(body) > object_only_past
    if large and body.lstrip(b" \t\r\n")[:1] != b"{":
        raise InvalidInput("the body must be a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from None


def check_query_utf8(query_string: str) -> None:
    """Refuse a query string whose percent-escapes are not UTF-8, which would
    otherwise reach a paste's fields as replacement characters."""
    try:
        unquote_to_bytes(query_string.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("the query string is not valid UTF-8") from None
