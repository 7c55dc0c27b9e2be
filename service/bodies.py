"""Reading and parsing request bodies within a byte limit and a deadline."""

from __future__ import annotations

import asyncio
from urllib.parse import unquote_to_bytes

import orjson
from falcon.asgi import Request

from service.errors import BodyTimeout, ContentTooLarge, MalformedRequest

_FORM_CHUNK = 64 * 1024


def check_declared_length(req: Request, limit: int) -> None:
    """Refuse a declared Content-Length over `limit` before reading anything."""
    length = req.content_length
    if length is not None and length > limit:
        raise ContentTooLarge(f"the body is {length} bytes; the limit is {limit} bytes")


async def read_limited(req: Request, limit: int, timeout: float) -> bytes:
    """The whole body, refusing more than `limit` bytes or a body still
    arriving after `timeout` seconds.

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


def parse_json(body: bytes) -> object:
    """The JSON value of `body`; NaN, Infinity and invalid UTF-8 are refused."""
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
