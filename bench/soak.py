"""The soak behind `make soak`: many replicas on one database, through pgbouncer.

    .venv/bin/python bench/soak.py [--seconds 300] [--web-concurrency 2] [--pool-max-size 4]
                                   [--workers 3] [--pgbouncer-pool-size 10] [--threads 8]

On a fresh, migrated scratch database (on BENCH_DATABASE_URL / DATABASE_URL,
else the embedded PostgreSQL of the benchmark), with the timeouts set as the
role's defaults there (README, Operations): one pgbouncer in transaction mode
(tests/pgbouncer.py), two web instances (separate gunicorn masters with
gunicorn.conf.py on two ports) and `--workers` expiry workers, all with
DB_PREPARED_STATEMENTS=false and all through pgbouncer. Threads of a load
generator send a mixed load to both instances for `--seconds` (SOAK_SECONDS):
creates that expire in 1-5 s and reads of them, reads of lasting pastes (JSON,
raw, HEAD), burn-after-read creates read twice, creates deleted with their
token, and listing pages. At 40 % one worker is SIGKILLed; at 60 % one web
instance gets SIGTERM and is started again on its port. After the load, the
workers tick until the last paste has expired, and get SIGTERM.

Fails (exit 1) when: any 5xx other than a 503 from the restarting instance
during its restart window (connection errors to it then count there too); any
other unexpected status or connection error; an expired row left after the
workers' last ticks; a surviving worker not exiting 0; more server connections
in pg_stat_activity than pgbouncer's pool, or more client connections on
pgbouncer than the pools promise (web processes x POOL_MAX_SIZE + workers).
The report is printed and written to bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, scratch_database, server_url
from bench.procs import Registry
from bench.servers import SERVICE_APP, free_port, production_env
from service.config import Config
from tests.pgbouncer import MISSING, PgBouncer, pgbouncer_binary, set_role_defaults

RESULTS = ROOT / "bench" / "results"
PATH = "/api/v1/pastes"
REQUEST_TIMEOUT = 10.0
MAX_EXPIRY = 5  # seconds: the longest expires_in of the load's expiring pastes
RESTART_GRACE = 1.0  # seconds after the restarted instance answers that still count
OPERATIONS = {  # weights of the load's operations
    "create_expiring": 20,
    "read_expiring": 10,
    "read_lasting": 30,
    "burn": 10,
    "delete": 10,
    "list": 20,
}


@dataclass
class Settings:
    seconds: float
    web_concurrency: int
    pool_max_size: int
    workers: int
    worker_interval: float
    pgbouncer_pool_size: int
    threads: int
    output: Path


def parse_args(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS") or 300))
    add("--web-concurrency", type=int, default=2, help="processes per web instance")
    add("--pool-max-size", type=int, default=4, help="POOL_MAX_SIZE of each web process")
    add("--workers", type=int, default=3, help="expiry worker replicas")
    add("--worker-interval", type=float, default=1.0, help="WORKER_INTERVAL")
    add("--pgbouncer-pool-size", type=int, default=10, help="pgbouncer's default_pool_size")
    add("--threads", type=int, default=8, help="load generator threads")
    add("--output", type=Path, default=RESULTS / "soak.json")
    args = parser.parse_args(argv)
    if args.seconds < 20:
        parser.error("--seconds must be at least 20 (the kill and the restart need room)")
    return Settings(**vars(args))


# --- processes -----------------------------------------------------------------


class Web:
    """One web instance: a gunicorn master on its own port, restartable."""

    def __init__(self, registry: Registry, name: str, env: dict[str, str], log: Path) -> None:
        self.registry, self.name, self.env, self.log = registry, name, env, log
        self.port = int(env["PORT"])
        self.process: Any = None

    def start(self, timeout: float = 60.0) -> None:
        cmd = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), SERVICE_APP]
        with self.log.open("ab") as out:
            self.process = self.registry.start(
                self.name, cmd, cwd=ROOT, env=self.env, stdout=out, stderr=out, stop_timeout=25
            )
        deadline = time.monotonic() + timeout
        while _status(self.port, "/readyz") != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start; see {self.log}")
            time.sleep(0.1)

    def stop(self) -> int:
        """SIGTERM and wait (gunicorn's graceful stop); its exit status."""
        self.registry.stop(self.process)
        return int(self.process.returncode)


def _status(port: int, path: str) -> int | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


# --- the load --------------------------------------------------------------------


@dataclass
class Tally:
    """What the load saw, shared by its threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    restart_window: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    expiring_created: int = 0
    stale_retries: int = 0


Conns = dict[int, http.client.HTTPConnection]
# A keep-alive connection the server closed while idle fails so on its next
# request, which it never processed: sent again once, as HTTP clients do.
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Load:
    """Threads that each pick an operation and an instance at random, until stopped."""

    def __init__(self, ports: list[int], threads: int, seed: int = 1) -> None:
        self.ports = ports
        self.tally = Tally()
        self.stop = threading.Event()
        self.lasting: list[str] = []
        self.expiring: list[str] = []
        self.windows: dict[int, list[list[float]]] = {port: [] for port in ports}
        self._threads = [
            threading.Thread(target=self._run, args=(seed + n,), daemon=True)
            for n in range(threads)
        ]

    def open_window(self, port: int) -> None:
        """The restart window of an instance: from its SIGTERM …"""
        self.windows[port].append([time.monotonic(), float("inf")])

    def close_window(self, port: int) -> None:
        """… until RESTART_GRACE after it answers again."""
        self.windows[port][-1][1] = time.monotonic() + RESTART_GRACE

    def _in_window(self, port: int, started: float) -> bool:
        now = time.monotonic()
        return any(start <= now and started <= end for start, end in self.windows[port])

    def seed(self, count: int = 200) -> None:
        """Lasting public pastes, for reads and listings."""
        conns: Conns = {}
        for n in range(count):
            port = self.ports[n % len(self.ports)]
            document = {"content": f"lasting {n}", "visibility": "public"}
            status, body = self._request(conns, port, "POST", PATH, document)
            if status != 201:
                raise RuntimeError(f"seeding: {status} {body[:200]!r}")
            self.lasting.append(json.loads(body)["id"])
        for conn in conns.values():
            conn.close()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT + 5)

    def _request(
        self,
        conns: Conns,
        port: int,
        method: str,
        path: str,
        document: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        body = json.dumps(document).encode() if document is not None else None
        sent = ({"Content-Type": "application/json"} if body else {}) | (headers or {})
        for attempt in (1, 2):
            conn = conns.get(port)
            reused = conn is not None
            if conn is None:
                conn = conns[port] = http.client.HTTPConnection(
                    "127.0.0.1", port, timeout=REQUEST_TIMEOUT
                )
            try:
                conn.request(method, path, body=body, headers=sent)
                response = conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                del conns[port]
                if not (reused and attempt == 1 and isinstance(exc, STALE)):
                    raise
                with self.tally.lock:
                    self.tally.stale_retries += 1
        raise AssertionError("unreachable")

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        conns: Conns = {}
        names = list(OPERATIONS)
        weights = list(OPERATIONS.values())
        operations = {name: getattr(self, f"_{name}") for name in names}
        while not self.stop.is_set():
            operations[rng.choices(names, weights)[0]](conns, rng)
        for conn in conns.values():
            conn.close()

    def _call(
        self,
        conns: Conns,
        rng: random.Random,
        operation: str,
        method: str,
        path: str,
        expected: tuple[int, ...],
        document: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes | None:
        """One request to a random instance, tallied; its body if its status was expected."""
        port = rng.choice(self.ports)
        started = time.monotonic()
        try:
            status, body = self._request(conns, port, method, path, document, headers)
            outcome = str(status)
        except (OSError, http.client.HTTPException) as exc:
            status, body, outcome = 0, b"", type(exc).__name__
        with self.tally.lock:
            tally = self.tally
            tally.requests += 1
            tally.statuses[outcome] += 1
            tally.by_operation[operation] += 1
            if status in expected:
                return body
            if status in (0, 503) and self._in_window(port, started):
                tally.restart_window[outcome] += 1
            else:
                tally.unexpected[f"{operation} {method} {outcome}"] += 1
                if len(tally.examples) < 20:
                    tally.examples.append(f"{method} {path} -> {outcome} {body[:200]!r}")
        return None

    def _create(
        self, conns: Conns, rng: random.Random, operation: str, **fields: Any
    ) -> dict[str, Any] | None:
        document = {"content": f"soak {rng.random()}", **fields}
        body = self._call(conns, rng, operation, "POST", PATH, (201,), document)
        return json.loads(body) if body is not None else None

    def _create_expiring(self, conns: Conns, rng: random.Random) -> None:
        expires_in = rng.randint(1, MAX_EXPIRY)
        visibility = rng.choice(["public", "unlisted"])
        created = self._create(
            conns, rng, "create_expiring", expires_in=expires_in, visibility=visibility
        )
        if created:
            with self.tally.lock:
                self.tally.expiring_created += 1
                self.expiring.append(created["id"])
                del self.expiring[:-500]

    def _read_expiring(self, conns: Conns, rng: random.Random) -> None:
        with self.tally.lock:
            recent = self.expiring[-100:]
        if recent:
            path = f"{PATH}/{rng.choice(recent)}/raw"
            self._call(conns, rng, "read_expiring", "GET", path, (200, 404))

    def _read_lasting(self, conns: Conns, rng: random.Random) -> None:
        paste_id = rng.choice(self.lasting)
        method, suffix = rng.choice([("GET", ""), ("GET", "/raw"), ("HEAD", ""), ("HEAD", "/raw")])
        self._call(conns, rng, "read_lasting", method, f"{PATH}/{paste_id}{suffix}", (200,))

    def _burn(self, conns: Conns, rng: random.Random) -> None:
        created = self._create(conns, rng, "burn", burn_after_read=True)
        if created:
            path = f"{PATH}/{created['id']}{rng.choice(['', '/raw'])}"
            if self._call(conns, rng, "burn", "GET", path, (200,)) is not None:
                self._call(conns, rng, "burn", "GET", path, (404,))

    def _delete(self, conns: Conns, rng: random.Random) -> None:
        created = self._create(conns, rng, "delete")
        if created:
            auth = {"Authorization": f"Bearer {created['delete_token']}"}
            path = f"{PATH}/{created['id']}"
            if self._call(conns, rng, "delete", "DELETE", path, (204,), headers=auth) is not None:
                self._call(conns, rng, "delete", "GET", path, (404,))

    def _list(self, conns: Conns, rng: random.Random) -> None:
        body = self._call(conns, rng, "list", "GET", f"{PATH}?limit=20", (200,))
        cursor = json.loads(body).get("next_cursor") if body else None
        if cursor:
            path = f"{PATH}?limit=20&cursor={quote(cursor)}"
            self._call(conns, rng, "list", "GET", path, (200,))


# --- connections ---------------------------------------------------------------------


class Sampler:
    """Each second: the scratch database's server connections (pg_stat_activity)
    and the client connections pgbouncer holds for it (SHOW CLIENTS)."""

    def __init__(self, server: str, database: str, bouncer: PgBouncer) -> None:
        self.server, self.database, self.bouncer = server, database, bouncer
        self.peak_server = self.peak_total = self.peak_clients = 0
        self.samples = 0
        self.failures: Counter[str] = Counter()
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self.stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            try:
                with psycopg.connect(self.server, autocommit=True, connect_timeout=3) as conn:
                    row = conn.execute(
                        "SELECT count(*) FILTER (WHERE datname = %s),"
                        "       count(*) FILTER (WHERE backend_type = 'client backend')"
                        "  FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
                        [self.database],
                    ).fetchone()
                with psycopg.connect(self.bouncer.admin_url, autocommit=True) as admin:
                    cursor = admin.execute("SHOW CLIENTS")
                    column = [c.name for c in cursor.description or ()].index("database")
                    clients = sum(1 for r in cursor.fetchall() if r[column] == self.database)
            except psycopg.Error as exc:
                self.failures[type(exc).__name__] += 1
                continue
            assert row is not None
            self.samples += 1
            self.peak_server = max(self.peak_server, row[0])
            self.peak_total = max(self.peak_total, row[1])
            self.peak_clients = max(self.peak_clients, clients)


# --- the run -------------------------------------------------------------------------


def purged_by(log: Path) -> int:
    """Rows a worker reported deleting (its JSON log lines)."""
    purged = 0
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == "expired_pastes_deleted":
                purged += int(event["purged"])
    return purged


def soak(settings: Settings, registry: Registry, server: str, db_url: str) -> dict[str, Any]:
    run_dir = RESULTS / "soak"
    run_dir.mkdir(parents=True, exist_ok=True)
    database = str(conninfo_to_dict(db_url)["dbname"])
    set_role_defaults(db_url, Config())
    bouncer = PgBouncer(server, pool_size=settings.pgbouncer_pool_size)
    bouncer.start()
    try:
        pooled = bouncer.url(db_url)
        common = {
            "DB_PREPARED_STATEMENTS": "false",
            "LOG_LEVEL": "WARNING",
            "SECRET_KEY": secrets.token_urlsafe(48),
        }
        webs = []
        for name in ("web-a", "web-b"):
            env = (
                production_env(pooled, free_port(), os.environ)
                | common
                | {
                    "WEB_CONCURRENCY": str(settings.web_concurrency),
                    "POOL_MIN_SIZE": "1",
                    "POOL_MAX_SIZE": str(settings.pool_max_size),
                }
            )
            env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{env['PORT']}")
            log = run_dir / f"{name}.log"
            log.write_bytes(b"")
            webs.append(Web(registry, name, env, log))
        for web in webs:
            web.start()
        # The production environment the web instances get (its checks apply
        # to every process), with the worker's own settings.
        worker_env = (
            production_env(pooled, free_port(), os.environ)
            | common
            | {
                "LOG_JSON": "true",
                "LOG_LEVEL": "INFO",
                "WORKER_INTERVAL": str(settings.worker_interval),
                "WORKER_BATCH": "200",
            }
        )
        worker_env.setdefault("PUBLIC_BASE_URL", "http://127.0.0.1")
        worker_logs = [run_dir / f"worker-{n}.log" for n in range(settings.workers)]
        workers = []
        for n, log in enumerate(worker_logs):
            with log.open("wb") as out:
                workers.append(
                    registry.start(
                        f"worker-{n}",
                        [sys.executable, "-m", "service.worker"],
                        cwd=ROOT,
                        env=worker_env,
                        stdout=out,
                        stderr=out,
                        stop_timeout=15,
                    )
                )
        time.sleep(1.0)
        for n, process in enumerate(workers):
            if process.poll() is not None:
                tail = worker_logs[n].read_text(errors="replace")[-2000:]
                raise RuntimeError(f"worker-{n} exited with {process.returncode}:\n{tail}")
        sampler = Sampler(server, database, bouncer)
        sampler.start()
        load = Load([web.port for web in webs], settings.threads)
        load.seed()
        started = time.monotonic()
        load.start()
        print(f"soak: load on ports {load.ports} for {settings.seconds:.0f} s", flush=True)
        events: list[str] = []

        def at(fraction: float) -> None:
            time.sleep(max(0.0, started + settings.seconds * fraction - time.monotonic()))

        at(0.4)
        killed = workers[0]
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        events.append(f"{time.monotonic() - started:.1f} s: SIGKILL worker-0 (pid {killed.pid})")
        at(0.6)
        restarting = webs[1]
        load.open_window(restarting.port)
        t0 = time.monotonic()
        status = restarting.stop()
        restarting.start()
        load.close_window(restarting.port)
        events.append(
            f"{t0 - started:.1f} s: SIGTERM {restarting.name} (exit {status}), "
            f"answering again after {time.monotonic() - t0:.1f} s"
        )
        at(1.0)
        load.join()
        load_seconds = time.monotonic() - started
        # Every paste made has expired MAX_EXPIRY s after the load; then the
        # workers tick at least three times more.
        time.sleep(MAX_EXPIRY + 3 * settings.worker_interval * 1.1 + 1)
        sampler.join()
        exits = []
        for process in workers[1:]:
            registry.stop(process)
            exits.append(process.returncode)
        for web in webs:
            exits.append(web.stop())
        with psycopg.connect(db_url, autocommit=True) as conn:
            expired_left, expiring_left = conn.execute(
                "SELECT count(*) FILTER (WHERE expires_at <= now()),"
                "       count(*) FILTER (WHERE expires_at IS NOT NULL) FROM pastes"
            ).fetchone() or (0, 0)
        web_logs = "".join(web.log.read_text(errors="replace") for web in webs)
        worker_text = "".join(log.read_text(errors="replace") for log in worker_logs)
    finally:
        bouncer.close()
    tally = load.tally
    five_xx = {k: v for k, v in tally.statuses.items() if k.startswith("5")}
    promised_clients = 2 * settings.web_concurrency * settings.pool_max_size + settings.workers
    document: dict[str, Any] = {
        "settings": {k: str(v) for k, v in vars(settings).items()},
        "load_seconds": round(load_seconds, 1),
        "events": events,
        "requests": tally.requests,
        "requests_per_second": round(tally.requests / load_seconds, 1),
        "by_operation": dict(tally.by_operation),
        "statuses": dict(tally.statuses),
        "5xx": five_xx,
        "restart_window": dict(tally.restart_window),
        "stale_keepalive_retries": tally.stale_retries,
        "unexpected": dict(tally.unexpected),
        "unexpected_examples": tally.examples,
        "expiring_created": tally.expiring_created,
        "purged_by_worker": [purged_by(log) for log in worker_logs],
        "expiring_rows_left": expiring_left,
        "expired_rows_left": expired_left,
        "exit_statuses": {"workers (survivors)": exits[:-2], "web": exits[-2:]},
        "worker_tick_failures": worker_text.count("worker_tick_failed"),
        "prepared_statement_errors": (web_logs + worker_text).count("prepared statement"),
        "tracebacks_in_web_logs": web_logs.count("Traceback"),
        "connections": {
            "samples": sampler.samples,
            "sample_failures": dict(sampler.failures),
            "peak_server_connections_to_db": sampler.peak_server,
            "promised_server": settings.pgbouncer_pool_size,
            "peak_client_connections_on_pgbouncer": sampler.peak_clients,
            "promised_clients": promised_clients,
            "peak_client_backends_on_server": sampler.peak_total,
        },
    }
    document["purged"] = sum(document["purged_by_worker"])
    failures = []
    if tally.unexpected:
        failures.append(f"unexpected outcomes: {dict(tally.unexpected)}")
    if expired_left:
        failures.append(f"{expired_left} expired rows left after the last ticks")
    if any(exits):
        failures.append(f"nonzero exit statuses: {exits}")
    if document["prepared_statement_errors"]:
        failures.append("prepared statement errors in the logs")
    if sampler.samples < load_seconds / 2:
        failures.append(f"only {sampler.samples} connection samples")
    if sampler.peak_server > settings.pgbouncer_pool_size:
        failures.append(
            f"{sampler.peak_server} server connections > pool {settings.pgbouncer_pool_size}"
        )
    if sampler.peak_clients > promised_clients:
        failures.append(f"{sampler.peak_clients} client connections > {promised_clients} promised")
    if not tally.restart_window and not any(tally.statuses.get(s) for s in ("200", "201")):
        failures.append("no load was served")
    document["failures"] = failures
    return document


def print_report(document: dict[str, Any]) -> None:
    c = document["connections"]
    lines = [
        f"soak: {document['load_seconds']} s of load, {document['requests']} requests "
        f"({document['requests_per_second']}/s)",
        *(f"  event: {e}" for e in document["events"]),
        f"  by operation: {document['by_operation']}",
        f"  statuses: {document['statuses']}",
        f"  5xx: {document['5xx'] or 0}; in the restart window (allowed): "
        f"{document['restart_window'] or 0}; unexpected: {document['unexpected'] or 0}",
        f"  rows purged: {document['purged']} (by worker: {document['purged_by_worker']}); "
        f"expiring pastes acknowledged: {document['expiring_created']}, "
        f"expiring rows left: {document['expiring_rows_left']}",
        f"  expired rows left after the last tick: {document['expired_rows_left']}",
        f"  exit statuses: {document['exit_statuses']}; failed ticks: "
        f"{document['worker_tick_failures']}; prepared statement errors: "
        f"{document['prepared_statement_errors']}",
        f"  peak server connections to the database (pg_stat_activity, {c['samples']} "
        f"samples): {c['peak_server_connections_to_db']} <= pgbouncer default_pool_size "
        f"{c['promised_server']}",
        f"  peak client connections on pgbouncer: {c['peak_client_connections_on_pgbouncer']} "
        f"<= {c['promised_clients']} promised (2 instances x WEB_CONCURRENCY x POOL_MAX_SIZE "
        "+ workers x 1)",
        f"  peak client backends on the whole server: {c['peak_client_backends_on_server']}",
    ]
    print("\n".join(lines))
    for example in document["unexpected_examples"]:
        print(f"  example: {example}")
    for failure in document["failures"]:
        print(f"FAILED: {failure}")
    print("soak: " + ("FAILED" if document["failures"] else "passed"))


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    if pgbouncer_binary() is None:
        print(f"soak: {MISSING}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    registry = Registry()
    document: dict[str, Any] | None = None
    try:
        with server_url(50) as url, scratch_database(url) as db_url:
            try:
                document = soak(settings, registry, url, db_url)
            finally:
                registry.stop_all()  # before the database goes
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130
    finally:
        registry.stop_all()
    settings.output.parent.mkdir(parents=True, exist_ok=True)
    settings.output.write_text(json.dumps(document, indent=2) + "\n")
    print_report(document)
    print(f"soak: results in {settings.output}")
    return 1 if document["failures"] else 0


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        sys.exit(main())
