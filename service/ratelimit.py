"""Per-client rate limits, shared by every process through PostgreSQL.

Two token buckets per client address: creates, and lookups that found no
paste (what enumerating ids produces). A successful read never touches the
limiter's table: only creates (whose token is taken by the insert statement
itself, in the same round trip) and misses do. A client refused for misses is
also remembered in this process until its Retry-After, so it is answered 429
before any lookup, which is what actually slows an enumeration down.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


def client_key(
    remote_addr: str | None, forwarded_for: str | None, trusted: Sequence[IPNetwork]
) -> str:
    """The address a request is limited by.

    X-Forwarded-For is believed only when the peer is a trusted proxy, and then
    read from the right: the first address that is not itself a trusted proxy
    is the client. IPv6 clients are keyed by their /64, which one user holds.
    """
    address = _parse_ip(remote_addr)
    if address is None:
        return remote_addr or "unknown"
    if forwarded_for and _is_trusted(address, trusted):
        for hop in reversed(forwarded_for.split(",")):
            hop_address = _parse_ip(hop.strip())
            if hop_address is None:
                break
            address = hop_address
            if not _is_trusted(hop_address, trusted):
                break
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def cached_client_key(trusted_proxies: Sequence[str]) -> Callable[[str | None, str | None], str]:
    """`client_key` behind `trusted_proxies` (IPs or CIDRs), remembering the
    keys of recent (peer, X-Forwarded-For) pairs."""
    trusted = tuple(ipaddress.ip_network(n, strict=False) for n in trusted_proxies)
    return functools.lru_cache(maxsize=_KEY_CACHE_SIZE)(
        functools.partial(client_key, trusted=trusted)
    )


def _parse_ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[IPNetwork]
) -> bool:
    return any(address in network for network in trusted)


class RateLimiter:
    """Takes tokens for creates and misses; raises RateLimited when refused."""

    def __init__(self, db: Database, config: Config) -> None:
        self.db = db
        self.enabled = config.rate_limits_enabled
        self._client_key = cached_client_key(config.trusted_proxies)
        self.creates = create_limit(config)
        self.misses = Limit(
            "miss", config.rate_limit_misses_per_minute / 60, config.rate_limit_miss_burst
        )
        # Reports are limited like creates, in a bucket of their own.
        self.reports = Limit("report", self.creates.per_second, self.creates.burst)
        self._refused_until: dict[str, float] = {}

    def client(self, remote_addr: str | None, forwarded_for: str | None) -> str:
        return self._client_key(remote_addr, forwarded_for)

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
