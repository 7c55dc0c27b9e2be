"""Pure rules of a paste: ids and tokens, validation, expiry.

Nothing here touches HTTP or the database, so every rule is testable alone.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from service.errors import ContentTooLarge, InvalidInput

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# 62**12 is about 2**71: well past the 64 bits that keep unlisted ids unguessable.
ID_LENGTH = 12
# Ids this service could ever have issued; anything else is simply not found.
ID_PATTERN = re.compile(r"[A-Za-z0-9]{11,64}")
DELETE_TOKEN_BYTES = 32  # 256 bits

VISIBILITIES = ("unlisted", "public")
TITLE_MAX_CHARS = 200
LANGUAGE_MAX_CHARS = 50
LANGUAGE_PATTERN = re.compile(rf"[A-Za-z0-9+#._-]{{1,{LANGUAGE_MAX_CHARS}}}")
_DIGITS = re.compile(r"[0-9]{1,18}")
# Terminal escapes start with C0 controls; a title is printed in listings.
TITLE_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f]")
MAX_VIEWS_LIMIT = 1_000_000
LIST_LIMIT_DEFAULT = 20
LIST_LIMIT_MAX = 100
REPORT_REASONS = ("spam", "malware", "phishing", "illegal", "other")
REPORT_DETAIL_MAX_CHARS = 1000
PASSWORD_MAX_CHARS = 1024
PASTE_FIELDS = frozenset(
    {
        "content",
        "title",
        "language",
        "visibility",
        "burn_after_read",
        "max_views",
        "password",
        "expires_in",
    }
)
# Units `expires_in` may carry in a query string or a form part.
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
DURATION_PATTERN = re.compile(rf"([0-9]{{1,18}})([{''.join(DURATION_UNITS)}]?)")


@dataclass(frozen=True, slots=True)
class NewPaste:
    """A validated create request."""

    content: str
    title: str | None = None
    language: str | None = None
    visibility: str = "unlisted"
    max_views: int | None = None
    password: str | None = None
    expires_in: int | None = None

    @property
    def size(self) -> int:
        return utf8_size(self.content)


class Paste(NamedTuple):
    """A stored paste; `content` is None where a query does not fetch it.

    Immutable, as a frozen dataclass would be, but built in less than half the
    time (no `object.__setattr__` per field), and every read builds one."""

    id: str
    title: str | None
    language: str | None
    visibility: str
    max_views: int | None  # None: unlimited
    views_left: int | None  # after the read that fetched it
    size: int
    created_at: datetime
    expires_at: datetime | None
    content: str | None = None
    password_hash: str | None = None

    @property
    def burn_after_read(self) -> bool:
        return self.max_views == 1

    @property
    def password_protected(self) -> bool:
        return self.password_hash is not None

    @property
    def cacheable(self) -> bool:
        """Whether shared caches may keep it: not when a read takes a view or
        needs a password."""
        return self.max_views is None and self.password_hash is None


# --- ids and tokens ---------------------------------------------------------


# Random bytes below this bound map uniformly onto the alphabet (248 = 4 * 62).
_UNBIASED_BYTE_LIMIT = 256 - 256 % len(ID_ALPHABET)
# bytes.translate maps each kept byte to its character and drops the rest, in C.
_BYTE_TO_ID_CHAR = bytes(
    ord(ID_ALPHABET[byte % len(ID_ALPHABET)]) if byte < _UNBIASED_BYTE_LIMIT else 0
    for byte in range(256)
)
_BIASED_BYTES = bytes(range(_UNBIASED_BYTE_LIMIT, 256))


def new_paste_id() -> str:
    """ID_LENGTH characters drawn uniformly from ID_ALPHABET by a CSPRNG.

    Bytes at or above 248 are rejected rather than folded, which would favour
    the first characters of the alphabet; a few spare bytes make a second draw
    almost never needed.
    """
    while True:
        picked = secrets.token_bytes(ID_LENGTH + 4).translate(_BYTE_TO_ID_CHAR, _BIASED_BYTES)
        if len(picked) >= ID_LENGTH:
            return picked[:ID_LENGTH].decode("ascii")


def is_possible_paste_id(candidate: str) -> bool:
    """False for anything no paste could be called, so it needs no lookup."""
    return ID_PATTERN.fullmatch(candidate) is not None


def new_delete_token() -> str:
    return secrets.token_urlsafe(DELETE_TOKEN_BYTES)


def hash_delete_token(token: str) -> bytes:
    # The token carries 256 random bits, so a fast hash is enough: there is
    # nothing to brute-force, and the stored hash is useless to a thief.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def delete_token_matches(token: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_delete_token(token), stored_hash)


# --- validation -------------------------------------------------------------


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def content_sha256(encoded: bytes) -> bytes:
    """The blocklist's key: SHA-256 of the content's exact UTF-8 bytes (as
    the database's content_sha256() computes it for stored content)."""
    return hashlib.sha256(encoded).digest()


def validate_new_paste(fields: Mapping[str, object], *, max_bytes: int, max_ttl: int) -> NewPaste:
    """Check a create request's fields (already typed, as JSON gives them).

    Raises ContentTooLarge before InvalidInput, so an oversized paste is
    reported as such whatever else is wrong with it.
    """
    content = fields.get("content")
    check_content_size(content, max_bytes)
    unknown = sorted(set(fields) - PASTE_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    if content is None:
        raise InvalidInput("content is required", field="content")
    if not isinstance(content, str):
        raise InvalidInput("content must be a string", field="content")
    if content == "":
        raise InvalidInput("content must not be empty", field="content")
    _check_text("content", content)
    max_views = _max_views(fields.get("max_views"))
    if _burn_after_read(fields.get("burn_after_read")):
        if max_views not in (None, 1):
            raise InvalidInput(
                "burn_after_read is max_views 1; do not send another max_views with it",
                field="max_views",
            )
        max_views = 1
    return NewPaste(
        content=content,
        title=_optional_title(fields.get("title")),
        language=_optional_language(fields.get("language")),
        visibility=_visibility(fields.get("visibility")),
        max_views=max_views,
        password=_optional_password(fields.get("password")),
        expires_in=_expires_in(fields.get("expires_in"), max_ttl),
    )


def check_content_size(content: object, max_bytes: int) -> None:
    """Raise ContentTooLarge for content over `max_bytes` UTF-8 bytes. Run
    before any other rule: an oversized paste is reported as such first."""
    if not isinstance(content, str):
        return
    try:
        size = utf8_size(content)
    except UnicodeEncodeError:
        raise InvalidInput(
            "content must be valid Unicode text (no lone surrogates)", field="content"
        ) from None
    if size > max_bytes:
        raise ContentTooLarge(f"content is {size} bytes; the limit is {max_bytes} bytes")


def fields_from_text(params: Mapping[str, str | list[str]]) -> dict[str, object]:
    """Type the create fields given as text (a query string, form parts), as
    JSON would carry them.

    Every value must be non-empty and given once; booleans are true/false,
    integers plain digits and `expires_in` a duration, so `expires_in=abc` or
    `burn_after_read=maybe` fail.
    """
    typed: dict[str, object] = {}
    for name, value in params.items():
        if isinstance(value, list):
            raise InvalidInput(f"{name} is given more than once", field=name)
        if value == "":
            raise InvalidInput(f"{name} must not be empty", field=name)
        if name == "expires_in":
            typed[name] = parse_duration(name, value)
        elif name == "max_views":
            typed[name] = parse_positive_int(name, value)
        elif name == "burn_after_read":
            typed[name] = _parse_bool(name, value)
        else:
            typed[name] = value
    return typed


def parse_positive_int(name: str, raw: str) -> int:
    if not _DIGITS.fullmatch(raw):
        raise InvalidInput(f"{name} must be a whole number", field=name)
    return int(raw)


def parse_duration(name: str, raw: str) -> int:
    """Seconds in `90`, `90s`, `15m`, `12h`, `7d` or `2w` (whole numbers,
    lower-case units)."""
    match = DURATION_PATTERN.fullmatch(raw)
    if match is None:
        raise InvalidInput(
            f"{name} must be a whole number of seconds, or of s, m, h, d or w (e.g. 15m)",
            field=name,
        )
    number, unit = match.groups()
    return int(number) * DURATION_UNITS[unit or "s"]


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise InvalidInput(f"{name} must be true or false", field=name)


def _check_text(name: str, value: str) -> None:
    if "\x00" in value:
        raise InvalidInput(f"{name} must not contain NUL characters", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{name} must be valid Unicode text (no lone surrogates)", field=name
        ) from None


def _optional_title(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("title must be a string or null", field="title")
    if value == "":
        raise InvalidInput("title must not be empty; send null or leave it out", field="title")
    if len(value) > TITLE_MAX_CHARS:
        raise InvalidInput(f"title must be at most {TITLE_MAX_CHARS} characters", field="title")
    _check_text("title", value)
    if TITLE_CONTROLS.search(value):
        raise InvalidInput("title must not contain control characters", field="title")
    return value


def _optional_language(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("language must be a string or null", field="language")
    if value == "":
        raise InvalidInput(
            "language must not be empty; send null or leave it out", field="language"
        )
    if not LANGUAGE_PATTERN.fullmatch(value):
        raise InvalidInput(
            f"language must be 1 to {LANGUAGE_MAX_CHARS} characters of A-Z a-z 0-9 + # . _ -",
            field="language",
        )
    return value


def _visibility(value: object) -> str:
    if value is None:
        return "unlisted"
    if value not in VISIBILITIES:
        raise InvalidInput('visibility must be "unlisted" or "public"', field="visibility")
    return str(value)


def _burn_after_read(value: object) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidInput("burn_after_read must be true or false", field="burn_after_read")
    return value


def _max_views(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("max_views must be an integer or null", field="max_views")
    if not 1 <= value <= MAX_VIEWS_LIMIT:
        raise InvalidInput(f"max_views must be between 1 and {MAX_VIEWS_LIMIT}", field="max_views")
    return value


def _optional_password(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("password must be a string", field="password")
    if not 1 <= len(value) <= PASSWORD_MAX_CHARS:
        raise InvalidInput(
            f"password must be 1 to {PASSWORD_MAX_CHARS} characters", field="password"
        )
    _check_text("password", value)
    return value


def _expires_in(value: object, max_ttl: int) -> int | None:
    if value is None:
        return None
    # bool is an int subclass, and 3600.0 is not a whole-seconds integer.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("expires_in must be an integer number of seconds", field="expires_in")
    if not 1 <= value <= max_ttl:
        raise InvalidInput(f"expires_in must be between 1 and {max_ttl}", field="expires_in")
    return value


def validate_report(document: object) -> tuple[str, str | None]:
    """The reason and detail of an abuse report's JSON body."""
    if not isinstance(document, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = sorted(set(document) - {"reason", "detail"})
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    reason = document.get("reason")
    if reason not in REPORT_REASONS:
        raise InvalidInput(f"reason must be one of {', '.join(REPORT_REASONS)}", field="reason")
    detail = document.get("detail")
    if detail is None:
        return str(reason), None
    if not isinstance(detail, str):
        raise InvalidInput("detail must be a string or null", field="detail")
    if len(detail) > REPORT_DETAIL_MAX_CHARS:
        raise InvalidInput(
            f"detail must be at most {REPORT_DETAIL_MAX_CHARS} characters", field="detail"
        )
    _check_text("detail", detail)
    return str(reason), detail


def parse_limit(
    raw: str | list[str] | None,
    *,
    default: int = LIST_LIMIT_DEFAULT,
    maximum: int = LIST_LIMIT_MAX,
) -> int:
    if raw is None:
        return default
    if isinstance(raw, list):
        raise InvalidInput("limit is given more than once", field="limit")
    if raw == "":
        raise InvalidInput("limit must not be empty", field="limit")
    limit = parse_positive_int("limit", raw)
    if not 1 <= limit <= maximum:
        raise InvalidInput(f"limit must be between 1 and {maximum}", field="limit")
    return limit


# --- time ---------------------------------------------------------------------


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_micros(moment: datetime) -> int:
    """Microseconds since 1970 (UTC): a timestamp's exact value, as an integer."""
    return (moment - EPOCH) // _MICROSECOND


def utc_now() -> datetime:
    return datetime.now(UTC)
