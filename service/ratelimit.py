"""Per-client rate limits, shared by every process through PostgreSQL.

Token buckets per client key: creates (taken before the body is read),
reports, and misses: lookups that found no paste, wrong delete tokens and
wrong passwords (what guessing produces). A read of a paste that exists never
touches the limiter's table. A client refused for misses is remembered in this
process until its Retry-After, so its next misses are answered 429 with no
database work.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from service.config import Config
from service.db import Database, SyncDatabase
from service.errors import DatabaseUnavailable, RateLimited

log = structlog.get_logger("service.ratelimit")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAX_REMEMBERED = 10_000
# Client keys of recent (peer, X-Forwarded-For) pairs: parsing addresses with
# ipaddress costs more than the rest of a create's Python code does.
_KEY_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Limit:
    bucket: str
    per_second: float
    burst: int

    def retry_after(self, tokens_left: float) -> int:
        """Seconds until a refused client's bucket holds a whole token again."""
        return max(1, math.ceil((1 - max(tokens_left, -1.0)) / self.per_second))


def create_limit(config: Config) -> Limit:
    """The bucket every create takes a token from."""
    per_second = config.rate_limit_creates_per_minute / 60
    return Limit("create", per_second, config.rate_limit_create_burst)


# A peer address: one that uvicorn reports, or "unix" for a unix socket (no address).
UNIX_PEER = "unix"
# Of X-Forwarded-For, only the hops nearest us are read: a client can put
# anything it likes further left, and the cache keys stay small.
MAX_FORWARDED_HOPS = 8
MAX_HOP_CHARS = 64
_HOP_WITH_PORT = re.compile(r"\[([0-9A-Fa-f:.]+)\](?::\d+)?|(\d{1,3}(?:\.\d{1,3}){3}):\d+")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def peer_of(req: Any) -> str | None:
    """The address of a Falcon ASGI request's connection; None for a unix
    socket (which Falcon's `remote_addr` would call 127.0.0.1)."""
    return str(req.remote_addr) if req.scope.get("client") else None


def parse_hop(text: str) -> IPAddress | None:
    """An address of X-Forwarded-For or of a peer: `1.2.3.4`, `2001:db8::1`,
    with a port (`1.2.3.4:5555`, `[2001:db8::1]:443`); an IPv4-mapped IPv6
    address is its IPv4 address. None for anything else."""
    text = text.strip()
    match = _HOP_WITH_PORT.fullmatch(text)
    if match:
        text = match.group(1) or match.group(2)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _key(address: IPAddress) -> str:
    # An IPv6 client is keyed by its /64, which one user holds.
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class ClientKeys:
    """The key a request is limited by, from its peer and X-Forwarded-For.

    X-Forwarded-For is believed only when the peer is a trusted proxy
    (TRUSTED_PROXIES: networks, and `unix` for a unix-socket peer), and then
    read from the right: the first address that is not itself a trusted proxy
    is the client. Keys are cached by peer, and by the hops read only when
    the peer is trusted, so no client can grow the cache's keys.
    """

    def __init__(self, trusted_proxies: Sequence[str]) -> None:
        self.trust_unix = UNIX_PEER in trusted_proxies
        self.trusted = tuple(
            ipaddress.ip_network(n, strict=False) for n in trusted_proxies if n != UNIX_PEER
        )
        self._peer = functools.lru_cache(maxsize=_KEY_CACHE_SIZE)(self._peer_key)
        self._forwarded = functools.lru_cache(maxsize=_KEY_CACHE_SIZE)(self._forwarded_key)

    def key(self, peer: str | None, forwarded_for: str | None) -> str:
        """`peer` is the connection's address, None for a unix socket."""
        peer_key, trusted = self._peer(peer)
        if not forwarded_for or not trusted:
            return peer_key
        # No address with a port is longer than MAX_HOP_CHARS: longer hops are
        # garbage either way, and cut they keep the cache's keys small.
        hops = tuple(
            hop.strip()[:MAX_HOP_CHARS] for hop in forwarded_for.split(",")[-MAX_FORWARDED_HOPS:]
        )
        return self._forwarded(peer_key, hops)

    def of(self, req: Any) -> str:
        """The key of a Falcon ASGI request."""
        return self.key(peer_of(req), req.get_header("X-Forwarded-For"))

    def is_trusted_peer(self, peer: str | None) -> bool:
        """Whether `peer` (None: a unix socket) is one of the trusted ones."""
        return self._peer(peer)[1]

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.trusted)

    def _peer_key(self, peer: str | None) -> tuple[str, bool]:
        if peer is None:
            return UNIX_PEER, self.trust_unix
        address = parse_hop(peer)
        if address is None:
            return "unknown", False
        return _key(address), self._is_trusted(address)

    def _forwarded_key(self, peer_key: str, hops: tuple[str, ...]) -> str:
        key = peer_key
        for hop in reversed(hops):
            address = parse_hop(hop)
            if address is None:
                break
            key = _key(address)
            if not self._is_trusted(address):
                break
        return key


class RateLimiter:
    """Takes tokens for creates and misses; raises RateLimited when refused."""

    def __init__(self, db: Database, config: Config) -> None:
        self.db = db
        self.enabled = config.rate_limits_enabled
        self.client_keys = ClientKeys(config.trusted_proxies)
        self.creates = create_limit(config)
        self.misses = Limit(
            "miss", config.rate_limit_misses_per_minute / 60, config.rate_limit_miss_burst
        )
        # Reports are limited like creates, in a bucket of their own.
        self.reports = Limit("report", self.creates.per_second, self.creates.burst)
        self._refused_until: dict[str, float] = {}

    async def take(self, limit: Limit, client: str) -> None:
        """Take one token of `limit` for `client`, or raise RateLimited.

        Fails open: if the database cannot answer, the request goes on (and
        meets the same outage where it needs the database itself).
        """
        if not self.enabled:
            return
        try:
            row = await self.db.one(
                "take_token",
                bucket=limit.bucket,
                client=client,
                burst=limit.burst,
                per_second=limit.per_second,
            )
        except DatabaseUnavailable:
            log.warning("rate_limit_unavailable", bucket=limit.bucket)
            return
        assert row is not None  # an upsert … RETURNING always yields the row
        if row["tokens"] < 0:
            retry_after = limit.retry_after(row["tokens"])
            if limit is self.misses:
                self._remember(client, retry_after)
            log.info("rate_limited", bucket=limit.bucket, retry_after=retry_after)
            raise RateLimited(retry_after)

    async def miss(self, client: str) -> None:
        """Count a miss (a lookup that found nothing, a wrong delete token or
        password) against `client`; RateLimited past its limit, at once and
        with no database work while it is known to be refused."""
        self.check_refused(client)
        await self.take(self.misses, client)

    def check_refused(self, client: str) -> None:
        """Raise RateLimited while `client` is refused for misses (no I/O)."""
        if not self.enabled or not self._refused_until:
            return
        until = self._refused_until.get(client)
        if until is None:
            return
        left = until - time.monotonic()
        if left <= 0:
            self._refused_until.pop(client, None)
            return
        raise RateLimited(max(1, math.ceil(left)))

    def _remember(self, client: str, retry_after: int) -> None:
        now = time.monotonic()
        if len(self._refused_until) >= _MAX_REMEMBERED:
            self._refused_until = {c: t for c, t in self._refused_until.items() if t > now}
        self._refused_until[client] = now + retry_after


def delete_stale_buckets(db: SyncDatabase, *, idle_seconds: int, batch: int = 10_000) -> int:
    """Delete buckets idle past `idle_seconds`; how many were deleted."""
    return db.execute("delete_stale_rate_limits", idle_seconds=idle_seconds, batch=batch)
