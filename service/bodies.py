"""Reading and parsing request bodies within a byte limit."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import falcon
import orjson
from gunicorn.http.errors import ParseException

from service.errors import ContentTooLarge, MalformedRequest

_CHUNK = 64 * 1024


def read_limited(req: falcon.Request, limit: int) -> bytes:
    """The whole body, refusing more than `limit` bytes.

    A declared Content-Length over the limit is refused before anything is
    read; a chunked body is read in pieces and abandoned as soon as it passes
    the limit, so neither is ever buffered whole.
    """
    length = req.content_length
    try:
        if length is not None:
            if length > limit:
                raise ContentTooLarge(f"the body is {length} bytes; the limit is {limit} bytes")
            body = req.bounded_stream.read()
            if len(body) != length:  # the client stopped short: a truncated upload
                raise MalformedRequest("the body ended before its Content-Length")
            return body
        received = bytearray()
        while chunk := req.stream.read(min(_CHUNK, limit + 1 - len(received))):
            received += chunk
            if len(received) > limit:
                raise ContentTooLarge(f"the body is over the limit of {limit} bytes")
        return bytes(received)
    except (ParseException, OSError) as exc:  # a malformed chunk, a broken connection
        raise MalformedRequest("the body could not be read") from exc


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
