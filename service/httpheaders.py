"""HTTP rules of the API that are not Falcon's: the create's content types,
delete credentials, ETags and cache lifetimes. Pure functions of header values."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from service.domain import epoch_micros

# Shared caches may keep a paste at most this long, so a deleted one lingers briefly.
MAX_CACHE_SECONDS = 3600


_CREATE_BODY_KINDS = {
    "application/json": "json",
    "text/plain": "text",
    "multipart/form-data": "form",
}


def create_body_kind(content_type: str | None) -> str | None:
    """'json', 'text' or 'form' for an acceptable create body, else None (a 415).

    Media types compare case-insensitively; a charset other than UTF-8 is refused.
    """
    if not content_type:
        return None
    media_type, *params = (part.strip() for part in content_type.split(";"))
    kind = _CREATE_BODY_KINDS.get(media_type.lower())
    if kind is None:
        return None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in ("utf-8", "utf8"):
                return None
    return kind


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def basic_password(authorization: str | None) -> str | None:
    """The password of `Authorization: Basic base64(user:password)` (any user
    name), else None."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, colon, password = decoded.partition(":")
    return password if colon else None


def paste_etag(created_at: datetime) -> str:
    """A strong ETag. A paste's content never changes, so it has one version,
    named by the microsecond the paste was created (which also tells it from a
    later paste that drew the same id): no digest of the content to compute."""
    return f'"{epoch_micros(created_at):x}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison, `*` matches any."""
    if not if_none_match:
        return False
    opaque = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == opaque:
            return True
    return False


def cache_max_age(expires_at: datetime | None, now: datetime) -> int:
    """Seconds a cache may keep a paste: never past its expiry, at most an hour."""
    if expires_at is None:
        return MAX_CACHE_SECONDS
    left = int((expires_at - now).total_seconds())
    return max(0, min(MAX_CACHE_SECONDS, left))
