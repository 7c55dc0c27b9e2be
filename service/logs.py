"""Structured logging: structlog for the service, the same pipeline for the
standard library's loggers (gunicorn, psycopg), JSON in production and
readable lines in a terminal. Request ids come from context variables."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import sys
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, BinaryIO

import orjson
import structlog
from gunicorn import glogging

from service.background import Periodic
from service.config import Config

# The id of the request this thread is handling: every line logged meanwhile
# carries it. A variable of its own, set and reset by the request middleware:
# structlog's bind/reset of context variables costs several times more, on
# every request, whether or not anything else is logged.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def add_request_id(logger: Any, method_name: str, event: dict[str, Any]) -> dict[str, Any]:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def _timestamp_and_level() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        add_request_id,
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


_LINE_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z


class AccessLog:
    """Writes the one line a request logs when it ends, as JSON: the same
    fields as every structlog line (event, level, timestamp, request id) plus
    the request's.

    In production it bypasses structlog's chain, which costs twice what
    rendering the line does, and the lines are written in batches, by a thread
    of their own, at most FLUSH_SECONDS after their requests end (and at once
    when a process closes its app): a write per request was a system call, and
    a hand-over of the GIL, more per request. A process killed outright loses
    at most that last fraction of a second of access lines; every other line
    is written at once. Elsewhere (a terminal, tests) it goes through
    structlog, readable and capturable.
    """

    FLUSH_SECONDS = 0.2
    # Bytes: past this a request writes them itself. Well above what 0.2 s of
    # a busy worker logs (~100 KB), so that stays the writer thread's work.
    _MAX_PENDING = 512 * 1024
    # A write of at most this many bytes to a pipe is never interleaved with
    # another process's or thread's write (POSIX), so no line is ever split.
    _ATOMIC_WRITE = select.PIPE_BUF

    def __init__(self, config: Config, file: BinaryIO | None = None) -> None:
        self.enabled = logging.getLevelNamesMapping()[config.log_level] <= logging.INFO
        self._file = file or sys.stderr  # held, so that its descriptor stays open
        self._fd = self._file.fileno() if config.json_logs else None
        self._logger = structlog.get_logger("service.access")
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # batches go out whole and in order
        # One growing buffer, not a list of lines: hundreds of orjson results
        # kept alive and then freed together made the allocator hand memory
        # back and fault it in again, which cost ten times the serialization.
        self._pending = bytearray()
        self._writer = Periodic(self._flush_quietly, self.FLUSH_SECONDS, "access-log")
        # A forked process starts with no lines of its own.
        os.register_at_fork(after_in_child=self._forget_pending)

    def write(self, **fields: Any) -> None:
        if not self.enabled:
            return
        if self._fd is None:
            self._logger.info("request_handled", **fields)
            return
        fields["event"] = "request_handled"
        fields["level"] = "info"
        # orjson writes it as structlog's ISO format does (UTC, "Z"), and faster
        # than any formatting in Python.
        fields["timestamp"] = datetime.now(UTC)
        line = orjson.dumps(fields, default=repr, option=_LINE_OPTIONS)
        with self._lock:
            self._pending += line
            full = len(self._pending) >= self._MAX_PENDING
        if full:
            self.flush()
        elif not self._writer.started:
            self._writer.start()

    def flush(self) -> None:
        """Write the pending lines now, in pieces of whole lines."""
        with self._write_lock:
            with self._lock:
                data, self._pending = self._pending, bytearray()
            if data and self._fd is not None:
                for piece in whole_lines(data, self._ATOMIC_WRITE):
                    while piece:  # the kernel may take a write in parts
                        piece = piece[os.write(self._fd, piece) :]

    def _flush_quietly(self) -> None:
        with contextlib.suppress(OSError):  # stderr gone: nothing to tell it with
            self.flush()

    def _forget_pending(self) -> None:
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending = bytearray()


def whole_lines(data: bytearray, limit: int) -> Iterator[memoryview]:
    """`data` (newline-terminated lines) in consecutive pieces of whole lines,
    each at most `limit` bytes unless a single line is longer."""
    view = memoryview(data)
    start, end = 0, len(data)
    while start < end:
        stop = start + limit
        if stop < end:
            cut = data.rfind(b"\n", start, stop)
            stop = cut + 1 if cut >= 0 else data.find(b"\n", stop) + 1 or end
        else:
            stop = end
        yield view[start:stop]
        start = stop


class GunicornLogger(glogging.Logger):
    """gunicorn's own logger, sending its lines through the root logger (and so
    the structlog formatter) instead of its own handlers and format."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.handlers = []
        self.error_log.propagate = True
        self.access_log.handlers = []
        self.access_log.propagate = True
