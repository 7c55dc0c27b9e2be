"""The ASGI application factory; gunicorn runs `service.app:create_app()`."""

from __future__ import annotations

from typing import Any

import falcon.asgi

from service import problems, resources
from service.config import Config
from service.cors import Cors, CorsPolicy
from service.db import Database
from service.early import EarlyRefusals
from service.errors import ServiceError
from service.logs import configure_logging
from service.middleware import MissLimits, PoolLifespan, RequestContext
from service.openapi import build_openapi
from service.ratelimit import RateLimiter


def create_app(config: Config | None = None, *, db: Database | None = None) -> EarlyRefusals:
    """Build the ASGI app: the Falcon app (`.app`) behind the refusals made
    from headers alone. Without `db`, it makes a connection pool from `config`
    and opens and closes it with the server (ASGI lifespan); a `db` passed in
    is the caller's to open and close."""
    config = config or Config.from_env()
    config.check_web()
    configure_logging(config)
    middleware: list[Any] = []
    if db is None:
        db = Database.from_config(config)
        middleware.append(PoolLifespan(db))
    limiter = RateLimiter(db, config)
    middleware.append(RequestContext(db, limiter.client_keys))
    cors = CorsPolicy(config.cors_allow_origins)
    if cors.enabled:
        middleware.append(Cors(cors))
    if limiter.enabled:
        middleware.append(MissLimits(limiter))
    app = falcon.asgi.App(middleware=middleware)
    app.req_options.keep_blank_qs_values = True
    app.req_options.auto_parse_qs_csv = False
    app.set_error_serializer(problems.serialize_http_error)
    app.add_error_handler(Exception, problems.handle_unexpected)
    app.add_error_handler(ServiceError, problems.ServiceErrorHandler(config.retry_after_seconds))

    app.add_route("/api/v1/pastes", resources.PasteCollection(db, config, limiter))
    app.add_route("/api/v1/pastes/{paste_id}", resources.PasteItem(db, config, limiter))
    app.add_route("/api/v1/pastes/{paste_id}/raw", resources.PasteRaw(db, config, limiter))
    app.add_route("/api/v1/pastes/{paste_id}/report", resources.PasteReport(db, config, limiter))
    app.add_route("/", resources.Usage(db, config, limiter))
    app.add_route("/healthz", resources.Health())
    app.add_route("/readyz", resources.Ready(db, config))
    app.add_route("/metrics", resources.Metrics(db, config))
    app.add_route("/openapi.json", resources.OpenAPI(build_openapi(config)))
    return EarlyRefusals(app, config, cors)
