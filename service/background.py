"""A task run every few seconds on a thread of its own, in each process.

gunicorn forks its workers from the arbiter: a thread started before the fork
does not exist in the child. So the thread is started by the first call of
`start()` in a process, and a forked child starts its own.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable


class Periodic:
    """Calls `task` every `seconds` on a daemon thread named `name`."""

    def __init__(self, task: Callable[[], None], seconds: float, name: str) -> None:
        self.task = task
        self.seconds = seconds
        self.name = name
        self.started = False  # read on hot paths: `if not p.started: p.start()`
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def start(self) -> None:
        """Start the thread in this process, unless it runs already."""
        with self._lock:
            if self.started:
                return
            self.started = True
        threading.Thread(target=self._run, name=self.name, daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(self.seconds)
            self.task()

    def _forget(self) -> None:
        self.started = False
        self._lock = threading.Lock()  # the parent's may have been held at the fork
