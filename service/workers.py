"""A gunicorn worker class: gthread that shares keep-alive connections out
evenly between the worker processes.

Every worker polls the one listening socket and whichever calls accept()
first takes the connection, so a burst of connections (a load balancer's or
reverse proxy's keep-alive pool, a benchmark's clients) often lands mostly on
one process. Those connections then stay there: that process is saturated
while the other idles. In one benchmark round with 64 keep-alive connections
on 2 plain gthread workers, one worker held nearly all of them and the round
served 60 % fewer requests than the round before.

Here each worker publishes how many connections it holds in memory shared by
the arbiter and its workers, and polls the listening socket only while it
holds at most SLACK more than the least loaded worker. The least loaded
worker always accepts, so no connection waits for long. It relies on gunicorn
27's gthread, which past the limit stops polling the listening socket only, and
keeps serving the connections it holds (older releases stopped polling those
too): pyproject.toml pins gunicorn 27.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from gunicorn.http import wsgi
from gunicorn.util import is_hoppish
from gunicorn.workers.gthread import ThreadWorker

# Header names that passed gunicorn's check in this process (CheckedOnceHeaders),
# at most this many: names are the app's, and few.
_plain_names: set[str] = set()
_MAX_PLAIN_NAMES = 64
# Connections a worker may hold over the least loaded one and still accept.
SLACK = 2
FREE = -1
_MAX_WORKERS = 256

# Made in the arbiter before it forks, so every worker sees the same memory.
_loads: Any = multiprocessing.RawArray("i", [FREE] * _MAX_WORKERS)
# Slots in use are all below this: workers read that many, not all of them.
_slots_used: Any = multiprocessing.RawValue("i", 0)


def claim_slot() -> int | None:
    """A free slot for a worker about to be forked (called in the arbiter)."""
    for slot in range(_MAX_WORKERS):
        if _loads[slot] == FREE:
            _loads[slot] = 0
            _slots_used.value = max(_slots_used.value, slot + 1)
            return slot
    return None  # more workers than slots: those accept as plain gthread does


def release_slot(slot: int | None) -> None:
    """Forget an exited worker's connections (called in the arbiter)."""
    if slot is not None:
        _loads[slot] = FREE


class CheckedOnceHeaders(wsgi.Response):
    """gunicorn's response, with the check of the headers an app sends again
    and again made cheap.

    gunicorn checks every response header with two regular expressions (the
    name must be a token, the value field characters) and lower-cases the name
    twice: about 8 k instructions a header, where a raw read sends seven and
    costs 1 M in all. Here a name that passed gunicorn's check once is known,
    and a value of printable ASCII without surrounding blanks (all of which the
    check allows, and nothing of which it would change) needs no more than
    two string methods. Anything else takes gunicorn's own path: a new name,
    other characters, blanks to strip, Content-Length and hop-by-hop headers.
    """

    def process_headers(self, headers: Any) -> None:
        plain = _plain_names
        for name, value in headers:
            if (
                type(name) is str
                and name in plain
                and type(value) is str
                and value.isascii()
                and value.isprintable()
                and value[:1] != " "
                and value[-1:] != " "
            ):
                self.headers.append((name, value))
                continue
            super().process_headers([(name, value)])  # raises on a bad header
            if (
                type(name) is str
                and len(plain) < _MAX_PLAIN_NAMES
                and name.lower() != "content-length"
                and not is_hoppish(name)
            ):
                plain.add(name)


class BalancedThreadWorker(ThreadWorker):
    """gthread's worker: its accept decision differs (see the module), and its
    responses check headers as CheckedOnceHeaders does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._held = 0
        self.load_slot: int | None = None  # set by the pre_fork hook
        super().__init__(*args, **kwargs)
        self._limit: int = self.cfg.worker_connections

    def init_process(self) -> None:
        # gthread builds each HTTP/1 response from this module attribute; set
        # in this worker process only, after the fork.
        wsgi.Response = CheckedOnceHeaders
        super().init_process()

    # gthread counts its connections in `nr_conns` and accepts while
    # `nr_conns < worker_connections`, checking before every wait for events.

    @property
    def nr_conns(self) -> int:
        return self._held

    @nr_conns.setter
    def nr_conns(self, value: int) -> None:
        self._held = value
        if self.load_slot is not None:
            _loads[self.load_slot] = value

    @property
    def worker_connections(self) -> int:
        limit = self._limit
        if self.load_slot is None:
            return limit
        # gthread asks before every wait for events: a slice is one C call.
        fewest = min((held for held in _loads[: _slots_used.value] if held != FREE), default=0)
        return min(limit, fewest + SLACK + 1)

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        pass  # always the configured limit, read from cfg above
