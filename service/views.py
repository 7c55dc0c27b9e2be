"""How a paste is represented in responses: JSON fields and absolute URLs."""

from __future__ import annotations

from typing import Any

from service.domain import Paste, rfc3339

PASTES_PATH = "/api/v1/pastes"


def base_url(public_base_url: str | None, request_prefix: str) -> str:
    """Where links point: PUBLIC_BASE_URL when set (it may carry a path prefix),
    else the scheme and host the request came in on."""
    return public_base_url or request_prefix.rstrip("/")


def paste_url(base: str, paste_id: str) -> str:
    return f"{base}{PASTES_PATH}/{paste_id}"


def metadata(paste: Paste, base: str) -> dict[str, Any]:
    """Every field of a paste but its content, with its links."""
    url = paste_url(base, paste.id)
    return {
        "id": paste.id,
        "title": paste.title,
        "language": paste.language,
        "visibility": paste.visibility,
        "burn_after_read": paste.burn_after_read,
        "size": paste.size,
        "created_at": rfc3339(paste.created_at),
        "expires_at": rfc3339(paste.expires_at),
        "url": url,
        "raw_url": f"{url}/raw",
    }


def full(paste: Paste, base: str) -> dict[str, Any]:
    return {**metadata(paste, base), "content": paste.content}
