"""Listing cursors: the keyset position after a page, as an opaque token
signed with SECRET_KEY, so a client can neither read nor forge one."""

from __future__ import annotations

import base64
import binascii
import hmac
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.domain import EPOCH, epoch_micros, is_possible_paste_id
from service.errors import MalformedCursor


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after the last paste of a listing page."""

    created_at: datetime
    id: str


_CURSOR_SIG_BYTES = 12


def encode_cursor(cursor: Cursor, key: bytes) -> str:
    """An opaque, signed token for the keyset position `cursor`."""
    micros = epoch_micros(cursor.created_at)
    payload = struct.pack(">q", micros) + cursor.id.encode("ascii")
    signature = hmac.digest(key, payload, "sha256")[:_CURSOR_SIG_BYTES]
    return base64.urlsafe_b64encode(payload + signature).rstrip(b"=").decode("ascii")


def decode_cursor(token: str, key: bytes) -> Cursor:
    """The position a token from `encode_cursor` stands for.

    Raises MalformedCursor for anything this service did not issue.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise MalformedCursor() from None
    if len(raw) <= 8 + _CURSOR_SIG_BYTES or not token.isascii():
        raise MalformedCursor()
    payload, signature = raw[:-_CURSOR_SIG_BYTES], raw[-_CURSOR_SIG_BYTES:]
    expected = hmac.digest(key, payload, "sha256")[:_CURSOR_SIG_BYTES]
    if not hmac.compare_digest(signature, expected):
        raise MalformedCursor()
    (micros,) = struct.unpack(">q", payload[:8])
    paste_id = payload[8:].decode("ascii", "replace")
    if not is_possible_paste_id(paste_id):
        raise MalformedCursor()
    try:
        created_at = EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise MalformedCursor() from None
    return Cursor(created_at=created_at, id=paste_id)
