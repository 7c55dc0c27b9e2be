"""The gunicorn worker class: uvicorn's, on uvloop and httptools, with the
service's own settings (a subclass that sets only `CONFIG_KWARGS`, the
attribute uvicorn-worker documents for this)."""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker

from service.config import Config

_config = Config.from_env()

# uvicorn's graceful shutdown ends before gunicorn's graceful_timeout (20 s)
# would kill the process, so the pool is always closed.
GRACEFUL_SHUTDOWN_SECONDS = 15


class Worker(UvicornWorker):
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,  # the app writes one structured line per request
        # X-Forwarded-For is for the rate limiter to judge (TRUSTED_PROXIES).
        "proxy_headers": False,
        "server_header": False,
        "limit_concurrency": _config.web_worker_connections,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }
