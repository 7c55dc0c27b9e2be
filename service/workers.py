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

from gunicorn.workers.gthread import ThreadWorker

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


class BalancedThreadWorker(ThreadWorker):
    """gthread's worker; only its accept decision differs (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._held = 0
        self.load_slot: int | None = None  # set by the pre_fork hook
        super().__init__(*args, **kwargs)
        self._limit: int = self.cfg.worker_connections

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
