"""Processes of a benchmark: starting them bounded, stopping every one by pid,
and measuring their CPU time and peak memory."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

# (pid, create time) names a process for good: a pid alone may be reused.
ProcessKey = tuple[int, float]
CpuSnapshot = dict[ProcessKey, float]


class Registry:
    """Every process the harness started, so that all of them are stopped, by
    pid, on success, failure and Ctrl-C alike."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, subprocess.Popen[Any], float]] = []

    def start(
        self, name: str, cmd: Sequence[str], *, stop_timeout: float = 30.0, **popen: Any
    ) -> subprocess.Popen[Any]:
        process = subprocess.Popen(list(cmd), **popen)
        self._entries.append((name, process, stop_timeout))
        return process

    def stop(self, process: subprocess.Popen[Any]) -> None:
        """SIGTERM the process, wait, then SIGKILL it and any child it left."""
        for entry in list(self._entries):
            if entry[1] is process:
                self._entries.remove(entry)
                _terminate(entry[0], process, entry[2])

    def stop_all(self) -> None:
        while self._entries:
            name, process, timeout = self._entries.pop()
            _terminate(name, process, timeout)


def _terminate(name: str, process: subprocess.Popen[Any], timeout: float) -> None:
    if process.returncode is not None:
        return  # reaped already: its pid may belong to someone else by now
    # Children first noted, so that workers a dying master leaves are found.
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        children = []
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"bench: {name} (pid {process.pid}) ignored SIGTERM; killing it", flush=True)
            process.kill()
            process.wait()
    for child in children:
        try:
            if child.is_running():  # also checks the create time: never a reused pid
                child.kill()
        except psutil.Error:
            pass


@dataclass(frozen=True)
class Finished:
    returncode: int
    output: str
    cpu_seconds: float  # user + system of the process and the children it waited for


class Bounded:
    """A load generator run: started now, always over by `deadline` seconds,
    its CPU time read from the kernel's rusage when it is reaped."""

    def __init__(
        self, registry: Registry, name: str, cmd: Sequence[str], deadline: float, log: Path
    ) -> None:
        self.registry = registry
        self.name = name
        self.deadline = time.monotonic() + deadline
        self.log = log
        self._out: IO[bytes] = log.open("wb")
        self.process = registry.start(
            name, cmd, stdout=self._out, stderr=subprocess.STDOUT, stop_timeout=5
        )

    def interrupt(self) -> None:
        """SIGINT: wrk stops early and still prints its report."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)

    def wait(self) -> Finished:
        pid = self.process.pid
        try:
            while True:
                reaped, status, usage = os.wait4(pid, os.WNOHANG)
                if reaped == pid:
                    break
                if time.monotonic() > self.deadline:
                    self.process.kill()
                    reaped, status, usage = os.wait4(pid, 0)
                    break
                time.sleep(0.02)
        finally:
            self._out.close()
        # Reaped by hand (for the rusage): tell Popen, or it would wait again.
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.registry.stop(self.process)
        return Finished(
            returncode=self.process.returncode,
            output=self.log.read_text(errors="replace"),
            cpu_seconds=usage.ru_utime + usage.ru_stime,
        )


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (those still alive)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def cpu_snapshot(processes: Iterable[psutil.Process]) -> CpuSnapshot:
    snapshot: CpuSnapshot = {}
    for process in processes:
        try:
            with process.oneshot():
                times = process.cpu_times()
                snapshot[(process.pid, process.create_time())] = times.user + times.system
        except psutil.Error:
            continue
    return snapshot


def cpu_between(before: CpuSnapshot, after: CpuSnapshot) -> float:
    """CPU seconds spent between two snapshots; a process born in between
    counts whole. One that died in between is lost, unless its parent reaped
    it and the snapshot counts the parent's children time (see PostgresProbe)."""
    return sum(seconds - before.get(key, 0.0) for key, seconds in after.items())


def cpu_by_process(before: CpuSnapshot, after: CpuSnapshot) -> dict[int, float]:
    """CPU seconds of each process between two snapshots, by pid."""
    return {key[0]: seconds - before.get(key, 0.0) for key, seconds in after.items()}


class TreeProbe:
    """CPU of a process tree (a gunicorn master and its workers)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def snapshot(self) -> CpuSnapshot:
        return cpu_snapshot(tree(self.pid))


class PostgresProbe:
    """CPU of a local PostgreSQL on behalf of the bench databases.

    Counted: the postmaster and its auxiliary processes (WAL writer,
    checkpointer, autovacuum…), the live backends of `databases`, and the
    children the postmaster reaped during the run (the kernel folds their time
    into the postmaster's children time; pgbench's backends end that way).
    Backends of other databases are left out, except short-lived ones, which
    cannot be told apart once reaped: a shared server adds some noise.
    """

    def __init__(self, postmaster: int, backends: Callable[[], dict[int, str | None]]) -> None:
        self.postmaster = postmaster
        self.backends = backends  # pid -> database (None: not a client backend)
        self.databases: set[str] = set()

    def snapshot(self) -> CpuSnapshot:
        try:
            master = psutil.Process(self.postmaster)
            times = master.cpu_times()
            children = master.children()
        except psutil.Error:
            return {}
        database_of = self.backends()
        counted = [
            child
            for child in children
            if database_of.get(child.pid) is None or database_of[child.pid] in self.databases
        ]
        snapshot = cpu_snapshot([master, *counted])
        # The reaped children, keyed apart from any real process.
        snapshot[(-self.postmaster, 0.0)] = times.children_user + times.children_system
        return snapshot


def reset_peak_rss(pids: Iterable[int]) -> bool:
    """Restart the kernel's peak-RSS mark (VmHWM) of each process; False if
    the kernel refused, so the peak is then the process's lifetime peak."""
    ok = True
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def peak_rss(pids: Iterable[int]) -> dict[int, int]:
    """Peak resident set (bytes) of each process since its mark was reset."""
    peaks: dict[int, int] = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[pid] = int(line.split()[1]) * 1024
        except OSError:
            continue
    return peaks
