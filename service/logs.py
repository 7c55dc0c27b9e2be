"""Structured logging: structlog for the service, the same pipeline for the
standard library's loggers (gunicorn, psycopg), JSON in production and
readable lines in a terminal. Request ids come from context variables."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, BinaryIO

import orjson
import structlog
from gunicorn import glogging

from service.config import Config


def _timestamp_and_level() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _render_json(event: Any, **kwargs: Any) -> str:
    return orjson.dumps(event, default=repr).decode()


def _render_json_bytes(event: Any, **kwargs: Any) -> bytes:
    return orjson.dumps(event, default=repr)


def renderer(json: bool, *, as_bytes: bool = False) -> Any:
    if json:
        return structlog.processors.JSONRenderer(
            serializer=_render_json_bytes if as_bytes else _render_json
        )
    return structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())


def configure_logging(config: Config) -> None:
    """structlog writes straight to stderr (a log line per request must be
    cheap); the standard library's loggers (gunicorn, psycopg) are rendered by
    the same processors, so every line has one format."""
    json = config.json_logs
    # JSON lines carry the traceback as a field; the console renderer prints it itself.
    exc_info: list[Any] = [structlog.processors.format_exc_info] if json else []
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_timestamp_and_level(), structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *exc_info,
            renderer(json),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level)
    # psycopg's pool narrates every checkout at INFO: noise, and a cost per request.
    logging.getLogger("psycopg").setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        # JSON lines go out as bytes: no str round trip through the text layer.
        processors=[*_timestamp_and_level(), *exc_info, renderer(json, as_bytes=json)],
        logger_factory=(
            structlog.BytesLoggerFactory(sys.stderr.buffer)
            if json
            else structlog.WriteLoggerFactory(sys.stderr)
        ),
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[config.log_level]
        ),
        # Cached loggers would escape structlog.testing.capture_logs in tests.
        cache_logger_on_first_use=config.app_env != "testing",
    )


def _access_line(logger: Any, method_name: str, event: dict[str, Any]) -> bytes:
    # The whole chain of an access line in one step: the caller passes the
    # request id, so no context variables are merged.
    event["level"] = method_name
    event["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return orjson.dumps(event, default=repr)


def access_logger(config: Config, file: BinaryIO | None = None) -> Any:
    """The logger of the one line a request writes when it ends.

    In JSON mode it is a structlog logger of its own with the shortest chain
    that gives the same line as any other (event, level, timestamp, request id
    and fields): the general chain costs several times more, and this line is
    written once per request. Its caller passes `request_id` itself. Elsewhere
    it is the service's usual logger, readable and capturable in tests.
    """
    if not config.json_logs:
        return structlog.get_logger("service.access")
    level = logging.getLevelNamesMapping()[config.log_level]
    wrapper: Any = structlog.make_filtering_bound_logger(level)
    return wrapper(structlog.BytesLogger(file or sys.stderr.buffer), [_access_line], {})


class GunicornLogger(glogging.Logger):
    """gunicorn's own logger, sending its lines through the root logger (and so
    the structlog formatter) instead of its own handlers and format."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.handlers = []
        self.error_log.propagate = True
        self.access_log.handlers = []
        self.access_log.propagate = True
