"""Paste passwords: stored only as a salted scrypt hash, checked off the event loop.

A hash records its own parameters (`scrypt$N$r$p$salt$key`), so raising the
cost in the settings leaves older pastes readable.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

_SALT_BYTES = 16
_KEY_BYTES = 32


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        # scrypt needs 128 * n * r bytes; hashlib refuses more than maxmem.
        maxmem=256 * n * r,
        dklen=_KEY_BYTES,
    )


def hash_password(password: str, *, n: int, r: int, p: int) -> str:
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _derive(password, salt, n, r, p)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def password_matches(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from (constant time)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        derived = _derive(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(derived, base64.b64decode(key))


@dataclass(frozen=True, slots=True)
class Hasher:
    """Hashes and checks passwords in a worker thread: scrypt takes tens of
    milliseconds by design, which must not stall the other requests."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(hash_password, password, n=self.n, r=self.r, p=self.p)

    async def matches(self, password: str, stored: str) -> bool:
        return await asyncio.to_thread(password_matches, password, stored)
