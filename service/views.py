"""How a paste is represented in responses: JSON fields and absolute URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from service.domain import Paste

PASTES_PATH = "/api/v1/pastes"
# With it orjson writes a UTC datetime as rfc3339 does, "Z" and all, when its
# fraction is not zero (orjson leaves a zero fraction out).
_JSON_OPTIONS = orjson.OPT_UTC_Z
_ZERO = timedelta(0)


def rfc3339(moment: datetime | None) -> str | None:
    """`moment` in UTC, to the microsecond, with a "Z": 2026-05-06T07:08:09.123456Z."""
    if moment is None:
        return None
    if moment.microsecond and moment.utcoffset() == _ZERO:
        # orjson is much faster than isoformat(), but leaves a zero fraction out.
        return orjson.dumps(moment, option=orjson.OPT_UTC_Z)[1:-1].decode()
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def base_url(public_base_url: str | None, request_prefix: str) -> str:
    """Where links point: PUBLIC_BASE_URL when set (it may carry a path prefix),
    else the scheme and host the request came in on."""
    return public_base_url or request_prefix.rstrip("/")


def paste_url(base: str, paste_id: str) -> str:
    return f"{base}{PASTES_PATH}/{paste_id}"


def to_json(document: Any) -> bytes:
    """A document of this module (or any plain one) as JSON."""
    return orjson.dumps(document, option=_JSON_OPTIONS)


def timestamp(moment: datetime | None) -> datetime | str | None:
    """`moment` for a document that `to_json` writes: the datetime itself
    where orjson writes it as `rfc3339` would (nearly always: cheaper
    per timestamp than formatting it apart), else rfc3339's string."""
    if moment is not None and moment.microsecond and moment.tzinfo is UTC:
        return moment
    return rfc3339(moment)


def metadata(paste: Paste, base: str) -> dict[str, Any]:
    """Every field of a paste but its content, with its links."""
    url = paste_url(base, paste.id)
    return {
        "id": paste.id,
        "title": paste.title,
        "language": paste.language,
        "visibility": paste.visibility,
        "burn_after_read": paste.burn_after_read,
        "max_views": paste.max_views,
        "views_left": paste.views_left,
        "password_protected": paste.password_protected,
        "size": paste.size,
        "created_at": timestamp(paste.created_at),
        "expires_at": timestamp(paste.expires_at),
        "url": url,
        "raw_url": f"{url}/raw",
    }


def full(paste: Paste, base: str) -> dict[str, Any]:
    document = metadata(paste, base)  # a fresh dict: one key more, not a copy
    document["content"] = paste.content
    return document


_USAGE = """\
Pastebin: store text, get a short link back.

Create (the reply is the raw link; the delete token comes in X-Delete-Token):
  curl -H 'Content-Type: text/plain' -H 'Accept: text/plain' --data-binary @file.txt {base}{pastes}
  curl -H 'Content-Type: text/plain' --data-binary @- '{base}{pastes}?expires_in=1h' < file.txt
  curl -H 'Accept: text/plain' -F content=@file.txt -F expires_in=1d {base}{pastes}
  curl -H 'Accept: text/plain' -F 'content=<-' {base}{pastes} < file.txt
  curl -H 'Content-Type: application/json' -d '{{"content": "hi", "max_views": 1}}' {base}{pastes}
Fields: title, language, visibility (unlisted|public), burn_after_read, max_views,
password, expires_in (seconds, or 90s 15m 12h 7d 2w in a query or a form).

Read:
  curl {base}{pastes}/ID/raw
  curl {base}{pastes}/ID
  curl -u :PASSWORD {base}{pastes}/ID/raw

Delete:
  curl -X DELETE -H 'Authorization: Bearer TOKEN' {base}{pastes}/ID

List public pastes, newest first (then ?cursor=NEXT_CURSOR):
  curl '{base}{pastes}?limit=20'

Report abuse:
  curl -H 'Content-Type: application/json' -d '{{"reason": "spam"}}' {base}{pastes}/ID/report

The API, described: {base}/openapi.json
"""


def usage(base: str) -> str:
    """The usage text of `GET /`, its examples pointing at `base`."""
    return _USAGE.format(base=base, pastes=PASTES_PATH)
