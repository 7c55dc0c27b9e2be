"""The WSGI application factory; gunicorn runs `service.app:create_app()`."""

from __future__ import annotations

from typing import Any

import falcon

from service import metrics, problems, resources
from service.config import Config
from service.db import Database
from service.errors import ServiceError
from service.logs import AccessLog, configure_logging
from service.middleware import MissLimits, RequestContext
from service.openapi import build_openapi
from service.ratelimit import RateLimiter


class App(falcon.App):
    """A Falcon app that owns its database handle and access log, and closes
    them on `close()`."""

    def __init__(self, db: Database, access_log: AccessLog, **options: Any) -> None:
        super().__init__(**options)
        self.db = db
        self.access_log = access_log

    def close(self) -> None:
        # This process's last fraction of a second of access lines and metrics.
        self.access_log.flush()
        metrics.flush()
        self.db.close()


def create_app(config: Config | None = None, *, db: Database | None = None) -> falcon.App:
    """Build the app. Without `db`, a connection pool is made from `config`;
    call the app's `close()` (gunicorn's worker_exit hook does) to close it."""
    config = config or Config.from_env()
    configure_logging(config)
    db = db or Database.from_config(config)

    limiter = RateLimiter(db, config)
    access_log = AccessLog(config)
    middleware: list[object] = [RequestContext(db, access_log)]
    if limiter.enabled:
        middleware.append(MissLimits(limiter))
    app = App(db, access_log, middleware=middleware)
    app.req_options.keep_blank_qs_values = True
    app.req_options.auto_parse_qs_csv = False
    app.set_error_serializer(problems.serialize_http_error)
    app.add_error_handler(Exception, problems.handle_unexpected)
    app.add_error_handler(ServiceError, problems.ServiceErrorHandler(config.retry_after_seconds))

    app.add_route("/api/v1/pastes", resources.PasteCollection(db, config, limiter))
    app.add_route("/api/v1/pastes/{paste_id}", resources.PasteItem(db, config))
    app.add_route("/api/v1/pastes/{paste_id}/raw", resources.PasteRaw(db, config))
    app.add_route("/healthz", resources.Health())
    app.add_route("/readyz", resources.Ready(db, config))
    app.add_route("/metrics", resources.Metrics(db))
    app.add_route("/openapi.json", resources.OpenAPI(build_openapi(config)))
    return app
