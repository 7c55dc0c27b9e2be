"""Settings, read from environment variables in this one place.

Every other module receives a `Config`; none reads the environment itself.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

ENVIRONMENTS = ("development", "production", "testing")
DEV_SECRET_KEY = "dev-insecure-secret-key"  # noqa: S105 - the default production refuses
MIB = 1024 * 1024
DAY = 86_400


class ConfigError(Exception):
    """The configuration is unusable."""


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a positive number of seconds")
    return value


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _optional_str(raw: str) -> str | None:
    return raw.strip() or None


def _base_url(raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must be an absolute http(s) URL")
    return raw.rstrip("/")


def _networks(raw: str) -> tuple[str, ...]:
    """IPs or CIDRs, comma-separated; `unix` stands for a unix-socket peer."""
    networks = tuple(part.strip() for part in raw.split(",") if part.strip())
    for network in networks:
        if network != "unix":
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
    return networks


def _power_of_two(raw: str) -> int:
    value = int(raw)
    if value < 2 or value & (value - 1):
        raise ValueError("must be a power of two, at least 2")
    return value


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(part.strip() for part in raw.split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise ValueError(f"{origin!r} is not an origin like https://paste.example or *")
    return origins


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _env(name: str, default: Any, coerce: Callable[[str], Any] = str) -> Any:
    """A setting read from the variable `name`, parsed by `coerce`."""
    return field(default=default, metadata={"env": name, "coerce": coerce})


@dataclass(frozen=True, slots=True)
class Config:
    """The service's settings; `from_env` names the variable behind each."""

    app_env: str = _env("APP_ENV", "development")
    database_url: str | None = _env("DATABASE_URL", None, _optional_str)
    secret_key: str = _env("SECRET_KEY", DEV_SECRET_KEY)
    port: int = _env("PORT", 8000, _positive_int)
    bind: str | None = _env("BIND", None, _optional_str)  # host:port; default 127.0.0.1:PORT
    # gunicorn worker processes, each an event loop (see bench/README.md for the choice).
    web_workers: int = _env("WEB_CONCURRENCY", 3, _positive_int)
    # Connections plus requests in flight one process holds at once; past it,
    # uvicorn answers 503 (its own plain-text reply) instead of queueing.
    web_worker_connections: int = _env("WEB_WORKER_CONNECTIONS", 2048, _positive_int)
    # Seconds a request body may take to arrive; past it, 408.
    body_timeout: float = _env("REQUEST_BODY_TIMEOUT", 60.0, _positive_float)
    public_base_url: str | None = _env("PUBLIC_BASE_URL", None, _base_url)
    # Origins whose pages may call the API from a browser (comma-separated, or *).
    cors_allow_origins: tuple[str, ...] = _env("CORS_ALLOW_ORIGINS", (), _origins)
    paste_max_bytes: int = _env("PASTE_MAX_BYTES", MIB, _positive_int)
    paste_max_ttl: int = _env("PASTE_MAX_TTL", 365 * DAY, _positive_int)
    pool_min_size: int = _env("POOL_MIN_SIZE", 1, _non_negative_int)
    pool_max_size: int = _env("POOL_MAX_SIZE", 8, _positive_int)
    # Seconds a request waits for a pooled connection before it gets a 503.
    pool_timeout: float = _env("POOL_TIMEOUT", 3.0, _positive_float)
    # Requests allowed to queue for a connection; past that they get a 503 at once.
    pool_max_waiting: int = _env("POOL_MAX_WAITING", 64, _non_negative_int)
    connect_timeout: int = _env("DB_CONNECT_TIMEOUT", 3, _positive_int)
    # How long the pool keeps retrying a failed connection before it waits for
    # demand to try again; short, so a returning database is noticed at once.
    pool_reconnect_timeout: float = _env("POOL_RECONNECT_TIMEOUT", 3.0, _positive_float)
    statement_timeout_ms: int = _env("DB_STATEMENT_TIMEOUT_MS", 5_000, _positive_int)
    # 0 means no limit: a statement waits for row locks as long as statement_timeout allows.
    lock_timeout_ms: int = _env("DB_LOCK_TIMEOUT_MS", 2_000, _non_negative_int)
    idle_in_transaction_timeout_ms: int = _env(
        "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", 10_000, _positive_int
    )
    # false when DATABASE_URL is a transaction-mode pooler (pgbouncer with
    # pool_mode=transaction): no server-side prepared statements and no startup
    # options, so the three timeouts above and TimeZone=UTC must be the role's
    # defaults on the server (README, Operations).
    db_prepared_statements: bool = _env("DB_PREPARED_STATEMENTS", True, _bool)
    readiness_timeout: float = _env("READINESS_TIMEOUT", 1.0, _positive_float)
    retry_after_seconds: int = _env("RETRY_AFTER_SECONDS", 2, _positive_int)
    # Unset: on in production, off in development and testing.
    rate_limits: bool | None = _env("RATE_LIMITS", None, _bool)
    rate_limit_creates_per_minute: float = _env(
        "RATE_LIMIT_CREATES_PER_MINUTE", 30.0, _positive_float
    )
    rate_limit_create_burst: int = _env("RATE_LIMIT_CREATE_BURST", 10, _positive_int)
    # 404s on paste lookups: what an id enumerator produces.
    rate_limit_misses_per_minute: float = _env(
        "RATE_LIMIT_MISSES_PER_MINUTE", 60.0, _positive_float
    )
    rate_limit_miss_burst: int = _env("RATE_LIMIT_MISS_BURST", 20, _positive_int)
    # Peers whose X-Forwarded-For is believed (IPs or CIDRs, comma-separated;
    # `unix` for a proxy on a unix socket).
    trusted_proxies: tuple[str, ...] = _env("TRUSTED_PROXIES", (), _networks)
    # Peers that may read /metrics (not through a trusted proxy); others get 404.
    metrics_allow_from: tuple[str, ...] = _env(
        "METRICS_ALLOW_FROM", ("127.0.0.0/8", "::1"), _networks
    )
    rate_limit_retention_seconds: int = _env("RATE_LIMIT_RETENTION_SECONDS", 3600, _positive_int)
    # scrypt's cost for paste passwords (a check takes N * r * 128 bytes of memory);
    # a hash keeps its own parameters, so raising them later is safe.
    password_scrypt_n: int = _env("PASSWORD_SCRYPT_N", 2**14, _power_of_two)
    password_scrypt_r: int = _env("PASSWORD_SCRYPT_R", 8, _positive_int)
    password_scrypt_p: int = _env("PASSWORD_SCRYPT_P", 1, _positive_int)
    worker_interval: float = _env("WORKER_INTERVAL", 10.0, _positive_float)
    worker_batch: int = _env("WORKER_BATCH", 1000, _positive_int)
    worker_metrics_port: int | None = _env("WORKER_METRICS_PORT", None, _positive_int)
    worker_metrics_host: str = _env("WORKER_METRICS_HOST", "127.0.0.1")
    log_level: str = _env("LOG_LEVEL", "INFO", _log_level)
    log_json: bool | None = _env("LOG_JSON", None, _bool)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Build the settings from `environ` (default: the process environment).

        Raises ConfigError, naming the variable, when a value cannot be used.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            name = spec.metadata["env"]
            raw = environ.get(name)
            if raw is None or (raw.strip() == "" and spec.default is None):
                continue
            try:
                values[spec.name] = spec.metadata["coerce"](raw)
            except ValueError as exc:
                raise ConfigError(f"{name}={raw!r} is invalid: {exc}") from None
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ConfigError when settings contradict each other or are unsafe."""
        if self.app_env not in ENVIRONMENTS:
            raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}")
        if self.pool_min_size > self.pool_max_size:
            raise ConfigError("POOL_MIN_SIZE must not exceed POOL_MAX_SIZE")
        if self.is_production:
            if not self.database_url:
                raise ConfigError("DATABASE_URL is required when APP_ENV=production")
            if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
                raise ConfigError(
                    "SECRET_KEY must be set to a random value of at least 32 characters "
                    "when APP_ENV=production"
                )

    def check_web(self) -> None:
        """Raise ConfigError when the web server must not start with these
        settings (the worker and the admin command need none of them)."""
        if not self.is_production:
            return
        if not self.public_base_url:
            raise ConfigError(
                "PUBLIC_BASE_URL is required when APP_ENV=production: links in replies "
                "(url, raw_url, Location) must not come from the request's Host header, "
                "which any client sets and shared caches keep"
            )
        if self.rate_limits_enabled and not self.trusted_proxies and self.behind_proxy:
            raise ConfigError(
                f"BIND={self.listen_address} is a loopback address or a unix socket, so "
                "every client comes through a proxy: set TRUSTED_PROXIES to its address "
                "(`unix` for a unix socket) so each client gets its own rate limits, or "
                "RATE_LIMITS=false if the proxy limits clients itself"
            )

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def listen_address(self) -> str:
        """Where gunicorn listens: BIND, else loopback on PORT."""
        return self.bind or f"127.0.0.1:{self.port}"

    @property
    def behind_proxy(self) -> bool:
        """Whether only a proxy on this machine can reach the listener."""
        address = self.listen_address
        if address.startswith("unix:"):
            return True
        host = address.rsplit(":", 1)[0].strip("[]")
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def body_limit(self, kind: str) -> int:
        """Bytes a create body of `kind` ("json", "text" or "form") may take. JSON has
        room for content of `paste_max_bytes` however it is escaped
        (`\\u0000`-style escapes take 6 bytes a byte)."""
        if kind == "json":
            return 6 * self.paste_max_bytes + 64 * 1024
        if kind == "form":  # room for the other parts and the boundaries
            return self.paste_max_bytes + 64 * 1024
        return self.paste_max_bytes

    @property
    def rate_limits_enabled(self) -> bool:
        return self.is_production if self.rate_limits is None else self.rate_limits

    @property
    def json_logs(self) -> bool:
        return self.is_production if self.log_json is None else self.log_json
