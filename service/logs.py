"""Structured logging: structlog for the service, and the same pipeline for the
standard library's loggers (gunicorn, uvicorn, psycopg); JSON lines in
production, readable lines in a terminal. A request's id is bound in
structlog's context variables, so every line logged while serving it has it."""

from __future__ import annotations

import logging
import logging.config
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from service.config import Config


def _utc_now(logger: Any, method_name: str, event: dict[str, Any]) -> dict[str, Any]:
    # A datetime that orjson writes in ISO 8601 itself: a third of the cost of
    # an access line was TimeStamper's formatting (bench/README.md).
    event["timestamp"] = datetime.now(UTC)
    return event


def _shared_processors(json: bool) -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _utc_now if json else structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _render_json(event: Any, **kwargs: Any) -> bytes:
    return orjson.dumps(event, default=repr, option=orjson.OPT_UTC_Z)


def _render_json_text(event: Any, **kwargs: Any) -> str:
    return _render_json(event).decode()


def _renderer(json: bool, *, as_bytes: bool = False) -> Any:
    if json:
        serializer = _render_json if as_bytes else _render_json_text
        return structlog.processors.JSONRenderer(serializer=serializer)
    # Plain tracebacks: a "pretty" one (rich, better-exceptions) prints local
    # variables, and those may hold a paste's content or a token.
    return structlog.dev.ConsoleRenderer(
        colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
    )


def stdlib_config(config: Config) -> dict[str, Any]:
    """A `logging.config.dictConfig` document that renders the standard
    library's records (gunicorn's, uvicorn's, psycopg's) as structlog does.
    gunicorn takes it as `logconfig_dict`."""
    json = config.json_logs
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": [*_shared_processors(json), structlog.stdlib.add_logger_name],
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    *([structlog.processors.format_exc_info] if json else []),
                    _renderer(json),
                ],
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "structlog",
                "stream": "ext://sys.stderr",
            }
        },
        # gunicorn's own loggers keep a handler: its uvicorn worker hands those
        # handlers to uvicorn's loggers, which do not propagate.
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"handlers": [], "propagate": False},
            # The pool narrates every connection at INFO.
            "psycopg": {"level": max(logging.WARNING, logging.getLevelName(config.log_level))},
        },
        "root": {"handlers": ["stderr"], "level": config.log_level},
    }


def configure_logging(config: Config) -> None:
    """Send structlog's lines, and the standard library's, to stderr in one format."""
    json = config.json_logs
    logging.config.dictConfig(stdlib_config(config))
    structlog.configure(
        processors=[
            *_shared_processors(json),
            *([structlog.processors.format_exc_info] if json else []),
            _renderer(json, as_bytes=True),
        ],
        # JSON lines go out as bytes, with no round trip through the text layer.
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
