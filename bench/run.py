"""The load benchmark behind `make bench`: the service as production runs it,
its ceilings, and how it scales. See bench/README.md for every knob.

    .venv/bin/python bench/run.py [--quick] [--duration S] [--connections N]
                                  [--scenarios a,b] [--runs N] ...

Starts gunicorn with gunicorn.conf.py and APP_ENV=production on a scratch
database, seeds pastes through the API, drives each scenario with wrk from
127.0.0.1, measures the ceilings (bare HTTP app, pgbench, bare app + pool,
bare purge loop) in the same run, and writes bench/results/latest.json.
Exits non-zero when a run has more than 0.1 % errors.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import psutil
import psycopg
from psycopg.conninfo import conninfo_to_dict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import baseline, dataset, loadgen, purge, report, slowclients
from bench.ceilings import create_bucket, insert_statements, statement
from bench.common import (
    ROOT,
    insert_live,
    max_connections,
    scratch_database,
    seed_expired,
    server_url,
    settle,
)
from bench.procs import (
    Bounded,
    PostgresProbe,
    Registry,
    cpu_between,
    cpu_by_process,
    peak_rss,
    reset_peak_rss,
)
from bench.servers import (
    SERVICE_APP,
    Server,
    free_port,
    gunicorn,
    production_env,
    started_peer,
)
from service.config import Config

SCENARIOS = (
    "read-raw",
    "read-json",
    "list",
    "mixed",
    "create",
    "scale",
    "slow-clients",
    "purge-load",
    "purge",
)
RESULTS = ROOT / "bench" / "results"
MAX_ERROR_RATE = 0.001  # above 0.1 % errors a run fails
MIXED_CREATE_SHARE = 0.05
READ_IDS = 10_000  # ids wrk draws from, at most
# Servers with a pool up at once, at most: in the insert rounds the service and
# the mixed, insert and plain-insert ceilings, beside pgbench's clients.
POOLED_SERVERS = 4
SPARE_CONNECTIONS = 10  # the harness's own, and psql or a monitor beside it
PEER_CONNECTIONS = 10  # haste-server's node-postgres pool
# First ids of the bulk-inserted rows (12 digits: valid paste ids).
LIST_FIRST_ID = 300_000_000_000
SCALE_FIRST_ID = 400_000_000_000
MEASURED = ("service", "sql", "migrations", "gunicorn.conf.py")
RAW = "/api/v1/pastes/{id}/raw"
JSON = "/api/v1/pastes/{id}"
# A peer speaks haste-server's API (shared/peers/README.md beside the repo).
PEER_RAW = "/raw/{id}"
PEER_JSON = "/documents/{id}"
PEER_CREATE = "/documents"
PEER_START_TIMEOUT = 600.0  # its first start installs its npm packages


@dataclass(frozen=True)
class Settings:
    scenarios: tuple[str, ...]
    quick: bool
    runs: int
    duration: float
    warmup: float
    connections: int
    threads: int
    timeout: float
    clients: int
    seed_pastes: int
    scale_rows: int
    purge_rows: int
    purge_workers: tuple[int, ...]
    purge_load_workers: int
    purge_batch: int
    purge_timeout: float
    list_depth: int
    list_limit: int
    pgbench_clients: int | None
    peer: tuple[str, str] | None
    baseline: str | None
    search_workers: tuple[int, ...]
    slow_connections: int
    slow_seconds: float
    output: Path


def parse_args(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="smoke run: short runs, one each, fewer rows")
    add("--scenarios", help=f"comma-separated subset of {','.join(SCENARIOS)} (default: all)")
    add("--runs", type=int, help="runs per figure; the report gives medians (default 3)")
    add("--duration", type=float, help="seconds of each measured run (default 10)")
    add("--warmup", type=float, help="seconds of the discarded warm-up before each (default 3)")
    add("--connections", type=int, default=64, help="wrk keep-alive connections (default 64)")
    add("--threads", type=int, default=1, help="wrk threads (default 1)")
    add("--timeout", type=float, default=5, help="wrk's per-request timeout, seconds")
    add("--clients", type=int, default=256, help="X-Forwarded-For addresses (0-508; 0: none)")
    add("--seed-pastes", type=int, help="pastes created through the API (default 10000)")
    add("--scale-rows", type=int, help="rows in the table for read-raw at scale (1000000)")
    add("--purge-rows", type=int, help="expired rows each purge drains (default 1000000)")
    add("--purge-workers", default="1,2,4", help="worker replicas to time (default 1,2,4)")
    add("--purge-load-workers", type=int, default=1, help="replicas purging under load")
    add("--purge-batch", type=int, default=1000, help="WORKER_BATCH of the purges")
    add("--purge-timeout", type=float, default=600, help="bound on one purge, seconds")
    add("--list-depth", type=int, default=1000, help="cursors followed to the deep page")
    add("--list-limit", type=int, default=20, help="listing page size")
    add("--pgbench-clients", type=int, help="default: WEB_CONCURRENCY x POOL_MAX_SIZE")
    add(
        "--peer",
        metavar="NAME=COMMAND",
        help="a peer with haste-server's API, measured beside the service: COMMAND starts it "
        "in the foreground, with {db_url} and {port} filled in",
    )
    add(
        "--baseline",
        metavar="REV",
        help="an earlier git revision of the service, measured beside this checkout in the "
        "read, list, write and purge rounds (its own scratch database and migrations)",
    )
    add(
        "--search-workers",
        default="",
        help="gunicorn worker processes to try on the ceilings first, e.g. 2,3,4; the service "
        "then runs with the fastest (default: WEB_CONCURRENCY as set)",
    )
    add("--slow-connections", type=int, default=500, help="slow clients held open at once")
    add("--slow-seconds", type=float, default=20, help="how long the slow clients dribble")
    add("--output", type=Path, default=RESULTS / "latest.json", help="the JSON results")
    args = parser.parse_args(argv)
    return _settings(args, parser)


def _settings(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Settings:
    # --quick changes the defaults only; explicit options still win.
    quick = {"runs": 1, "duration": 3, "warmup": 1, "seed": 1000, "scale": 50_000, "purge": 20_000}
    # Five short rounds rather than three long ones, in about the same time:
    # a ratio is taken within a round, and the shorter a round the less the
    # machine drifts between a figure and its ceiling.
    full = {
        "runs": 5,
        "duration": 6,
        "warmup": 2,
        "seed": 10_000,
        "scale": 1_000_000,
        "purge": 1_000_000,
    }
    base = quick if args.quick else full
    scenarios = tuple(s.strip() for s in args.scenarios.split(",")) if args.scenarios else SCENARIOS
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    settings = Settings(
        scenarios=scenarios,
        quick=args.quick,
        runs=args.runs or base["runs"],
        duration=args.duration or base["duration"],
        warmup=base["warmup"] if args.warmup is None else args.warmup,
        connections=args.connections,
        threads=args.threads,
        timeout=args.timeout,
        clients=args.clients,
        seed_pastes=args.seed_pastes or base["seed"],
        scale_rows=args.scale_rows or base["scale"],
        purge_rows=args.purge_rows or base["purge"],
        purge_workers=tuple(int(n) for n in args.purge_workers.split(",")),
        purge_load_workers=args.purge_load_workers,
        purge_batch=args.purge_batch,
        purge_timeout=args.purge_timeout,
        list_depth=args.list_depth,
        list_limit=args.list_limit,
        pgbench_clients=args.pgbench_clients,
        peer=_peer(args.peer, parser),
        baseline=args.baseline or None,
        search_workers=tuple(int(n) for n in args.search_workers.split(",") if n.strip()),
        slow_connections=args.slow_connections,
        slow_seconds=args.slow_seconds,
        output=args.output,
    )
    if settings.runs < 1 or settings.duration < 1 or settings.connections < 1:
        parser.error("--runs, --duration and --connections must be at least 1")
    if not 0 <= settings.clients <= 508:
        parser.error("--clients must be between 0 and 508")
    return settings


def _peer(value: str | None, parser: argparse.ArgumentParser) -> tuple[str, str] | None:
    if not value:
        return None
    name, _, command = value.partition("=")
    if not name or not command:
        parser.error("--peer takes NAME=COMMAND")
    return name, command


Step = tuple[str, Server, loadgen.Workload]


def in_turn(steps: list[Step], run: int) -> list[Step]:
    """The runs of one round, each figure next to the ceiling it is compared
    with, in reverse order every other round: this machine's speed drifts over
    minutes, and a fixed order hands the drift to whichever always comes first."""
    return steps if run % 2 == 0 else steps[::-1]


class Harness:
    """One benchmark: the servers, the data, every measurement and its result."""

    def __init__(self, settings: Settings, registry: Registry, server_url: str, db_url: str):
        self.s = settings
        self.registry = registry
        self.server_url = server_url
        self.db_url = db_url
        self.stack = ExitStack()
        self.tmp = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        self.logs = RESULTS / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.wrk = loadgen.require_wrk()
        # PORT is a placeholder here: each server gets a free port of its own.
        self.env = production_env(db_url, 8000, os.environ)
        self.config = Config.from_env(self.env)
        self.pg = self.stack.enter_context(postgres_probe(server_url))
        self.add_database(db_url)
        self.runs: dict[str, list[report.Run]] = {}
        self.failures: list[str] = []
        self.notes: dict[str, Any] = {}
        self.purge_results: list[dict[str, float]] = []
        self.ids_file = self.tmp / "seeded-ids.txt"
        self.peer_ids_file = self.tmp / "peer-ids.txt"
        self.before_ids_file = self.tmp / "before-ids.txt"
        self.before_root = self.tmp / "baseline"
        self.before_db: str | None = None
        if settings.baseline:
            commit = baseline.export(settings.baseline, self.before_root)
            self.notes["baseline"] = {"revision": settings.baseline, "commit": commit}
        self.body_file = self.tmp / "create.json"
        self.content = dataset.write_create_body(self.body_file)
        self.pgbench_db: str | None = None

    def close(self) -> None:
        self.stack.close()

    def add_database(self, db_url: str) -> None:
        if self.pg is not None:
            self.pg.databases.add(urlsplit(db_url).path.lstrip("/"))

    # --- phases -------------------------------------------------------------

    def run(self) -> None:
        wanted = set(self.s.scenarios)
        if self.s.search_workers:
            self.search_workers()
        if wanted - {"purge"}:
            self.web(wanted)
        if "purge" in wanted:
            self.purge_throughput()

    def web(self, wanted: set[str]) -> None:
        """Every scenario that needs the web servers up (all but `purge`)."""
        with ExitStack() as stack:
            service = stack.enter_context(self.server("service", SERVICE_APP, ready_path="/readyz"))
            peer = stack.enter_context(self.peer()) if self.s.peer else None
            before = stack.enter_context(self.before()) if self.s.baseline else None
            self.seed(service, peer, before)
            if wanted & {"read-raw", "read-json", "scale"}:
                self.reads(service, peer, before, wanted)
            if "list" in wanted:
                self.listing(service, before)
            if wanted & {"mixed", "create"}:
                self.writes(service, peer, before, wanted)
            if "slow-clients" in wanted:
                self.slow_clients(service)
            if "scale" in wanted:
                self.scale(service)
            if "purge-load" in wanted:
                self.purge_under_load(service)

    def search_workers(self) -> None:
        """The ceilings (read and insert) at each worker-process count, side by
        side; the service then runs with the count fastest at both."""
        db = self.pgbench_database()
        ids = dataset.write_ids(self.tmp / "search-ids.txt", dataset.sample_ids(db, READ_IDS))
        counts = self.s.search_workers
        medians: dict[str, dict[int, float]] = {}
        for figure, app, workload in (
            ("read", "bench.ceilings:read_app()", self.workload(RAW, ids)),
            (
                "insert",
                "bench.ceilings:insert_app()",
                self.workload("/", None, 1.0, self.body_file),
            ),
        ):
            with ExitStack() as stack:
                servers = {
                    n: stack.enter_context(
                        self.server(f"search-{figure}-{n}w", app, workers=n, db_url=db)
                    )
                    for n in counts
                }
                for run in range(self.s.runs):
                    steps: list[Step] = [
                        (f"search-{figure}-{n}w", server, workload) for n, server in servers.items()
                    ]
                    for name, server, load in in_turn(steps, run):
                        self.http(name, server, load, run)
            medians[figure] = {
                n: report.median_run(self.runs[f"search-{figure}-{n}w"])["rps"] for n in counts
            }

        def score(n: int) -> float:
            return sum(rps[n] / max(rps.values()) for rps in medians.values())

        best = max(counts, key=score)
        self.notes["worker_search"] = {
            "rps": {figure: {str(n): v for n, v in rps.items()} for figure, rps in medians.items()},
            "chosen": best,
        }
        print(f"bench: worker processes {counts}: fastest {best}; the service runs with it")
        self.env["WEB_CONCURRENCY"] = str(best)
        self.config = Config.from_env(self.env)

    def seed(self, service: Server, peer: Server | None, before: Server | None) -> None:
        started = time.perf_counter()
        ids = dataset.create_pastes("127.0.0.1", service.port, self.s.seed_pastes)
        dataset.write_ids(self.ids_file, ids[:READ_IDS])
        if peer is not None:
            keys = dataset.create_pastes("127.0.0.1", peer.port, self.s.seed_pastes, peer=True)
            dataset.write_ids(self.peer_ids_file, keys[:READ_IDS])
        if before is not None and self.before_db is not None:
            before_ids = dataset.create_pastes("127.0.0.1", before.port, self.s.seed_pastes)
            dataset.write_ids(self.before_ids_file, before_ids[:READ_IDS])
            settle(self.before_db)
        settle(self.db_url)  # else autovacuum of the new rows overlaps the first run
        seconds = time.perf_counter() - started
        self.notes["seeded"] = {"pastes": len(ids), "seconds": round(seconds, 2)}
        print(f"bench: seeded {len(ids):,} pastes through the API in {seconds:.1f} s", flush=True)

    def reads(
        self, service: Server, peer: Server | None, before: Server | None, wanted: set[str]
    ) -> None:
        raw = self.workload(RAW, self.ids_file)
        ceilings = bool(wanted & {"read-raw", "read-json"})
        with ExitStack() as stack:
            http = read = None
            if ceilings:
                http = stack.enter_context(self.server("ceiling-http", "bench.ceilings:http_app()"))
                read = stack.enter_context(self.server("ceiling-read", "bench.ceilings:read_app()"))
                self.pgbench_database()
            json = self.workload(JSON, self.ids_file)
            for run in range(self.s.runs):
                steps: list[Step] = [("read-raw", service, raw)]
                if http and read:
                    steps.append(("ceiling-read", read, raw))
                if "read-json" in wanted:
                    steps.append(("read-json", service, json))
                if http and read:
                    steps.append(("ceiling-http", http, raw))
                if peer is not None:
                    steps.append(("peer-read-raw", peer, self.peer_workload(PEER_RAW)))
                    if "read-json" in wanted:
                        steps.append(("peer-read-json", peer, self.peer_workload(PEER_JSON)))
                steps = self.beside_baseline(steps, before)
                for name, server, workload in in_turn(steps, run):
                    self.http(name, server, workload, run)
                if http and read:
                    self.pgbench("db-read", self.read_script(), [], run)

    def listing(self, service: Server, before: Server | None) -> None:
        limit, depth = self.s.list_limit, self.s.list_depth
        first = self.workload(f"/api/v1/pastes?limit={limit}")
        servers = [("", service, self.db_url)]
        if before is not None and self.before_db is not None:
            servers.append(("before-", before, self.before_db))
        firsts: list[Step] = []
        deeps: list[Step] = []
        for prefix, server, db_url in servers:
            missing = (depth + 2) * limit - dataset.count_listed(db_url)
            if missing > 0:  # the API seed alone may not reach that deep
                insert_live(db_url, missing, first_id=LIST_FIRST_ID, visibility="public")
            deep = dataset.walk_cursors("127.0.0.1", server.port, depth, limit)
            firsts.append((f"{prefix}list-first", server, first))
            deeps.append((f"{prefix}list-deep", server, self.workload(deep)))
            self.notes.setdefault("list", {"limit": limit, "depth": depth})
            self.notes["list"][f"{prefix}bulk_public_rows"] = max(0, missing)
        steps = firsts + deeps  # a figure and the baseline's back to back
        for run in range(self.s.runs):
            for name, server, workload in in_turn(steps, run):
                self.http(name, server, workload, run)

    def writes(
        self, service: Server, peer: Server | None, before: Server | None, wanted: set[str]
    ) -> None:
        mixed = self.workload(RAW, self.ids_file, MIXED_CREATE_SHARE, self.body_file)
        create = self.workload("/", None, 1.0, self.body_file)
        # The database ceiling runs the service's own create statement, as the
        # combined ceiling does (bench/ceilings.py).
        bucket = create_bucket(self.config)
        script = loadgen.pgbench_insert_script(
            insert_statements(bucket), max(1, self.s.clients) if bucket else 0
        )
        defines = loadgen.pgbench_insert_defines(self.content, bucket)
        with ExitStack() as stack:
            insert = stack.enter_context(
                self.server("ceiling-insert", "bench.ceilings:insert_app()")
            )
            plain = None
            if bucket is not None and "create" in wanted:
                plain = stack.enter_context(
                    self.server("ceiling-insert-plain", "bench.ceilings:plain_insert_app()")
                )
            both = None
            if "mixed" in wanted:
                both = stack.enter_context(
                    self.server("ceiling-mixed", "bench.ceilings:mixed_app()")
                )
            self.pgbench_database()
            for run in range(self.s.runs):
                steps: list[Step] = []
                if both is not None:
                    steps += [("mixed", service, mixed), ("ceiling-mixed", both, mixed)]
                if "create" in wanted:
                    steps.append(("create", service, create))
                steps.append(("ceiling-insert", insert, create))
                if plain is not None:
                    steps.append(("ceiling-insert-plain", plain, create))
                if peer is not None:
                    if "create" in wanted:
                        steps.append(("peer-create", peer, self.peer_workload("/", creates=1.0)))
                    if both is not None:
                        mixed_peer = self.peer_workload(PEER_RAW, creates=MIXED_CREATE_SHARE)
                        steps.append(("peer-mixed", peer, mixed_peer))
                steps = self.beside_baseline(steps, before)
                for name, server, workload in in_turn(steps, run):
                    self.http(name, server, workload, run)
                self.pgbench("db-insert", script, defines, run)

    def scale(self, service: Server) -> None:
        missing = self.s.scale_rows - dataset.count_rows(self.db_url)
        started = time.perf_counter()
        if missing > 0:
            print(f"bench: inserting {missing:,} rows in bulk", flush=True)
            insert_live(self.db_url, missing, first_id=SCALE_FIRST_ID)
        ids = dataset.sample_ids(self.db_url, READ_IDS)
        self.ids_file = dataset.write_ids(self.tmp / "scaled-ids.txt", ids)
        rows = dataset.count_rows(self.db_url)
        self.notes["scale"] = {"rows": rows, "load_seconds": round(time.perf_counter() - started)}
        scaled = self.workload(RAW, self.ids_file)
        # The HTTP ceiling (no database) in the same rounds tells how fast the
        # machine was then: the seeded-table figure was measured minutes earlier.
        with self.server("ceiling-http", "bench.ceilings:http_app()") as http:
            for run in range(self.s.runs):
                steps: list[Step] = [
                    ("read-raw-scaled", service, scaled),
                    ("ceiling-http-scaled", http, scaled),
                ]
                for name, server, workload in in_turn(steps, run):
                    self.http(name, server, workload, run)

    def purge_under_load(self, service: Server) -> None:
        raw = self.workload(RAW, self.ids_file)
        for run in range(self.s.runs):
            seed_expired(self.db_url, self.s.purge_rows, truncate=False)
            self.http("read-raw-idle", service, raw, run)
            self.http_during_purge(service, raw, run)

    def purge_throughput(self) -> None:
        with ExitStack() as stack:
            db_url = stack.enter_context(scratch_database(self.server_url))
            self.add_database(db_url)
            before_db = None
            if self.s.baseline:
                migrate = partial(baseline.migrate, self.before_root)
                before_db = stack.enter_context(scratch_database(self.server_url, migrate))
                self.add_database(before_db)
            for run in range(self.s.runs):
                print(f"bench: purge throughput, run {run + 1}/{self.s.runs}", flush=True)
                result = purge.measure(
                    db_url,
                    self.s.purge_rows,
                    list(self.s.purge_workers),
                    self.s.purge_batch,
                    self.s.purge_timeout,
                )
                if before_db is not None:
                    rates = purge.worker_rates(
                        before_db,
                        self.s.purge_rows,
                        list(self.s.purge_workers),
                        self.s.purge_batch,
                        self.s.purge_timeout,
                        root=self.before_root,
                    )
                    result |= {f"before_workers_{n}": rate for n, rate in rates.items()}
                    shown = ", ".join(f"{n}: {rate:,.0f}" for n, rate in rates.items())
                    print(f"bench: the baseline's workers, rows/s: {shown}", flush=True)
                self.purge_results.append(result)

    def workload(
        self, path: str, ids: Path | None = None, creates: float = 0.0, body: Path | None = None
    ) -> loadgen.Workload:
        return loadgen.Workload(path, ids, creates, body, self.s.clients)

    def peer_workload(self, path: str, *, creates: float = 0.0) -> loadgen.Workload:
        """The same requests in the peer's API: its keys, its raw-text creates."""
        return loadgen.Workload(
            path,
            self.peer_ids_file if "{id}" in path else None,
            creates,
            self.body_file.with_suffix(".txt") if creates else None,
            self.s.clients,
            create_path=PEER_CREATE,
            content_type="text/plain",
        )

    def beside_baseline(self, steps: list[Step], before: Server | None) -> list[Step]:
        """Each of the service's figures followed by the baseline's same figure
        (the same requests, its own seeded ids), so the two run back to back."""
        if before is None:
            return steps
        paired: list[Step] = []
        for name, server, workload in steps:
            paired.append((name, server, workload))
            if server.name == "service":
                ids = self.before_ids_file if workload.ids is not None else None
                paired.append((f"before-{name}", before, replace(workload, ids=ids)))
        return paired

    def slow_clients(self, service: Server) -> None:
        """Slow clients held open while /healthz and a read are timed."""
        paste_id = self.ids_file.read_text().split()[0]
        print(f"bench: slow clients ({self.s.slow_connections} for {self.s.slow_seconds:g} s)")
        result = slowclients.measure(
            service.port,
            RAW.replace("{id}", paste_id),
            service.worker_pids,
            connections=self.s.slow_connections,
            seconds=self.s.slow_seconds,
        )
        self.notes["slow_clients"] = asdict(result)
        print(f"bench:   {asdict(result)}", flush=True)

    # --- servers and databases ----------------------------------------------

    @contextmanager
    def server(
        self,
        name: str,
        app: str,
        *,
        ready_path: str = "/healthz",
        workers: int | None = None,
        db_url: str | None = None,
        root: Path = ROOT,
    ) -> Iterator[Server]:
        env = baseline.environment(root, {**self.env, "PORT": str(free_port())})
        if workers is not None:
            env["WEB_CONCURRENCY"] = str(workers)
        if db_url is not None:
            env["DATABASE_URL"] = db_url
        log = self.logs / f"{name}.log"
        log.write_bytes(b"")
        with gunicorn(
            self.registry, name, app, env, log, ready_path=ready_path, root=root
        ) as server:
            yield server

    @contextmanager
    def before(self) -> Iterator[Server]:
        """The baseline revision's service on a database its own migrations made."""
        migrate = partial(baseline.migrate, self.before_root)
        self.before_db = self.stack.enter_context(scratch_database(self.server_url, migrate))
        self.add_database(self.before_db)
        with self.server(
            "before",
            SERVICE_APP,
            ready_path="/readyz",
            db_url=self.before_db,
            root=self.before_root,
        ) as server:
            yield server

    @contextmanager
    def peer(self) -> Iterator[Server]:
        assert self.s.peer is not None
        name, command = self.s.peer
        log = self.logs / f"peer-{name}.log"
        log.write_bytes(b"")
        with started_peer(
            self.registry, name, command, self.db_url, log, timeout=PEER_START_TIMEOUT
        ) as server:
            yield server

    def pgbench_database(self) -> str:
        """A scratch database of its own for pgbench, with the seeded number of
        1 KiB rows under ids random() can draw; made once."""
        if self.pgbench_db is None:
            self.pgbench_db = self.stack.enter_context(scratch_database(self.server_url))
            insert_live(self.pgbench_db, self.s.seed_pastes, first_id=loadgen.PGBENCH_FIRST_ID)
            self.add_database(self.pgbench_db)
        return self.pgbench_db

    def read_script(self) -> str:
        return loadgen.pgbench_read_script(statement("find_paste"), self.s.seed_pastes)

    # --- measurements -------------------------------------------------------

    def http(self, name: str, server: Server, workload: loadgen.Workload, run: int) -> None:
        """A discarded warm-up, then one measured wrk run of `workload`."""
        print(f"bench: {name} run {run + 1}/{self.s.runs}", flush=True)
        if self.s.warmup > 0:
            self.wrk_run(server, workload, self.s.warmup)
        server.truncate_log()
        workers = server.worker_pids()
        rss_reset = reset_peak_rss(workers)
        before = self.snapshots(server)
        finished = self.wrk_run(server, workload, self.s.duration)
        after = self.snapshots(server)
        result = loadgen.parse_wrk(finished.output)
        result |= self.cpu(before, after, finished.cpu_seconds)
        result |= worker_balance(cpu_by_process(before[0], after[0]), workers)
        result |= rss_figures(workers, rss_reset)
        self.record(name, result)

    def http_during_purge(self, server: Server, workload: loadgen.Workload, run: int) -> None:
        """read-raw while worker replicas drain the backlog: wrk runs until the
        purge ends (SIGINT makes it report), bounded by --purge-timeout."""
        print(f"bench: read-raw-purging run {run + 1}/{self.s.runs}", flush=True)
        workers = server.worker_pids()
        rss_reset = reset_peak_rss(workers)
        before = self.snapshots(server)
        wrk = self.start_wrk(server, workload, self.s.purge_timeout)
        try:
            seconds = purge.run_workers(
                self.db_url, self.s.purge_load_workers, self.s.purge_batch, self.s.purge_timeout
            )
        finally:
            wrk.interrupt()
        finished = wrk.wait()
        after = self.snapshots(server)
        result = loadgen.parse_wrk(finished.output)
        result |= self.cpu(before, after, finished.cpu_seconds)
        result |= worker_balance(cpu_by_process(before[0], after[0]), workers)
        result |= rss_figures(workers, rss_reset)
        result |= {"purge_seconds": seconds, "purge_rows_per_s": self.s.purge_rows / seconds}
        self.record("read-raw-purging", result)

    def start_wrk(self, server: Server, workload: loadgen.Workload, duration: float) -> Bounded:
        cmd = loadgen.wrk_command(
            self.wrk,
            server.url,
            workload,
            duration=duration,
            connections=self.s.connections,
            threads=self.s.threads,
            timeout=self.s.timeout,
        )
        return Bounded(self.registry, "wrk", cmd, duration + self.s.timeout + 30, self.tmp / "wrk")

    def wrk_run(self, server: Server, workload: loadgen.Workload, duration: float) -> Any:
        finished = self.start_wrk(server, workload, duration).wait()
        if finished.returncode != 0:
            raise RuntimeError(f"wrk exited with {finished.returncode}:\n{finished.output}")
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} died during the run:\n{server.tail()}")
        return finished

    def pgbench(self, name: str, script: str, defines: list[str], run: int) -> None:
        """A discarded warm-up, then one measured pgbench run, at the service's
        database concurrency (WEB_CONCURRENCY x POOL_MAX_SIZE connections)."""
        pgbench = loadgen.find_pgbench()
        if pgbench is None:
            self.notes.setdefault("skipped", []).append(f"{name}: no pgbench found")
            return
        print(f"bench: {name} run {run + 1}/{self.s.runs}", flush=True)
        path = self.tmp / f"{name}.sql"
        path.write_text(script)
        if self.s.warmup > 0:
            self.pgbench_run(pgbench, path, defines, self.s.warmup, None)
        before = self.snapshots(None)
        log_prefix = self.tmp / "pgbench_log"
        finished = self.pgbench_run(pgbench, path, defines, self.s.duration, log_prefix)
        result = loadgen.parse_pgbench(finished.output, log_prefix)
        result |= self.cpu(before, self.snapshots(None), finished.cpu_seconds)
        result["clients"] = self.pgbench_clients()
        self.record(name, result)

    def pgbench_run(
        self, pgbench: str, script: Path, defines: list[str], duration: float, log: Path | None
    ) -> Any:
        cmd = loadgen.pgbench_command(
            pgbench,
            self.pgbench_database(),
            script,
            clients=self.pgbench_clients(),
            duration=duration,
            log_prefix=log,
            defines=defines,
        )
        finished = Bounded(
            self.registry, "pgbench", cmd, duration + 60, self.tmp / "pgbench"
        ).wait()
        if finished.returncode != 0:
            raise RuntimeError(f"pgbench exited with {finished.returncode}:\n{finished.output}")
        return finished

    def pgbench_clients(self) -> int:
        return pgbench_clients(self.s, self.config)

    def snapshots(self, server: Server | None) -> tuple[Any, Any, Any]:
        return (
            server.probe().snapshot() if server else None,
            self.pg.snapshot() if self.pg else None,
            psutil.cpu_times(),
        )

    @staticmethod
    def cpu(
        before: tuple[Any, Any, Any], after: tuple[Any, Any, Any], loadgen: float
    ) -> report.Run:
        server = cpu_between(before[0], after[0]) if before[0] is not None else None
        pg = cpu_between(before[1], after[1]) if before[1] is not None else None
        # The machine's idle share: a saturated run with idle cores was held
        # back by waiting (locks, the GIL, round trips), not by CPU.
        total = sum(after[2]) - sum(before[2])
        idle = after[2].idle + after[2].iowait - before[2].idle - before[2].iowait
        return {
            "cpu_server_s": server,
            "cpu_pg_s": pg,
            "cpu_loadgen_s": loadgen,
            "machine_idle_pct": 100 * idle / total if total > 0 else None,
        }

    def record(self, name: str, result: report.Run) -> None:
        requests = max(1, result["requests"])
        result["error_pct"] = 100 * result["errors"] / requests
        for part in ("server", "pg"):
            if result.get(f"cpu_{part}_s") is not None:
                result[f"cpu_{part}_ms_per_req"] = 1000 * result[f"cpu_{part}_s"] / requests
        result["cpu_share"] = cpu_share(result)
        self.runs.setdefault(name, []).append(result)
        print(
            f"bench:   {result['rps']:,.0f} req/s, p50 {result.get('p50_ms', 0):.2f} ms, "
            f"p99 {result.get('p99_ms', 0):.2f} ms, errors {result['errors']}",
            flush=True,
        )
        if result["errors"] > MAX_ERROR_RATE * requests:
            self.failures.append(
                f"{name}: {result['errors']} errors in {result['requests']} requests "
                f"({result['error_pct']:.2f} %; non-2xx {result['non_2xx']}, "
                f"socket {result['socket_errors']})"
            )

    # --- results ------------------------------------------------------------

    def medians(self) -> dict[str, report.Run]:
        return {name: report.median_run(runs) for name, runs in self.runs.items()}

    def purge_medians(self) -> dict[str, float] | None:
        return report.median_run(self.purge_results) if self.purge_results else None

    def document(self, started: datetime, error: str | None) -> dict[str, Any]:
        medians = self.medians()
        purge_medians = self.purge_medians()
        return {
            "meta": self.meta(started),
            "medians": medians,
            "ratios": report.ratios(medians, purge_medians, self.runs),
            "purge": {"medians": purge_medians, "runs": self.purge_results},
            "runs": self.runs,
            "notes": self.notes,
            "failures": self.failures,
            "error": error,
        }

    def meta(self, started: datetime) -> dict[str, Any]:
        config = self.config
        return {
            "started": started.isoformat(),
            "finished": datetime.now(UTC).isoformat(),
            "settings": {**asdict(self.s), "output": str(self.s.output)},
            "peer": self.s.peer[0] if self.s.peer else None,
            "baseline": self.notes.get("baseline"),
            "gunicorn": {
                "workers": config.web_workers,
                "pool_min_size": config.pool_min_size,
                "pool_max_size": config.pool_max_size,
                "pgbench_clients": self.pgbench_clients(),
            },
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "postgres": postgres_version(self.server_url),
            "wrk": command_output([self.wrk, "--version"]).splitlines()[0:1],
            "commit": command_output(["git", "-C", str(ROOT), "rev-parse", "HEAD"]).strip(),
            # Uncommitted changes to what is measured (read-only git status).
            "uncommitted": command_output(
                ["git", "-C", str(ROOT), "status", "--porcelain", "--", *MEASURED]
            ).splitlines(),
        }


def cpu_share(result: report.Run) -> float | None:
    """The share of the machine's CPU time that the server, PostgreSQL and the
    load generator used during the run. Well under 1 on a saturated run means
    something else on the machine took the rest: take that figure again."""
    seconds = result.get("seconds")
    if not seconds:
        return None
    used = sum(result.get(key) or 0.0 for key in ("cpu_server_s", "cpu_pg_s", "cpu_loadgen_s"))
    return used / (seconds * (os.cpu_count() or 1))


def worker_balance(cpu: dict[int, float], workers: list[int]) -> report.Run:
    """CPU seconds of each gunicorn worker, and the least over the most busy.
    A keep-alive connection stays with the worker that accepted it, so when
    one worker accepts most of wrk's connections the other idles: a balance
    well under 1 explains a low figure (and is worth knowing for production)."""
    seconds = [round(cpu.get(pid, 0.0), 2) for pid in workers]
    busiest = max(seconds, default=0.0)
    return {
        "worker_cpu_s": seconds,
        "worker_balance": min(seconds) / busiest if busiest > 0 else None,
    }


def rss_figures(workers: list[int], reset: bool) -> dict[str, Any]:
    peaks = peak_rss(workers)
    mib = [round(value / 2**20, 1) for value in peaks.values()]
    return {
        "peak_rss_mib": mib,
        "peak_rss_mib_max": max(mib) if mib else None,
        # Without a reset the kernel's mark is the worker's lifetime peak.
        "peak_rss_since_run_start": reset,
    }


@contextmanager
def postgres_probe(url: str) -> Iterator[PostgresProbe | None]:
    """A CPU probe of the PostgreSQL behind `url` when it runs on this machine."""
    host = conninfo_to_dict(url).get("host") or "/"
    if not (str(host).startswith("/") or host in {"127.0.0.1", "localhost", "::1"}):
        yield None
        return
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        postmaster = psutil.Process(row[0] if row else 0).ppid()

        def backends() -> dict[int, str | None]:
            rows = conn.execute(
                "SELECT pid, CASE WHEN backend_type = 'client backend' THEN datname END"
                "  FROM pg_stat_activity"
            ).fetchall()
            return {pid: datname for pid, datname in rows}

        yield PostgresProbe(postmaster, backends)


def postgres_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version()").fetchone()
    return str(row[0]) if row else "?"


def command_output(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False).stdout
    except OSError:
        return ""


def print_report(document: dict[str, Any]) -> None:
    meta, notes = document["meta"], document["notes"]
    g, s = meta["gunicorn"], meta["settings"]
    print(
        f"\n{g['workers']} gunicorn workers (uvicorn), "
        f"pool {g['pool_min_size']}-{g['pool_max_size']}; wrk {s['connections']} connections; "
        f"{s['duration']:g} s runs after {s['warmup']:g} s warm-up, median of {s['runs']}; "
        f"seeded {notes.get('seeded', {}).get('pastes', 0):,} pastes"
        + (f"; scaled table {notes['scale']['rows']:,} rows" if "scale" in notes else "")
    )
    print(report.figures_table(document["medians"]))
    print()
    print(report.ratios_table(document["ratios"], document["purge"]["medians"]))
    for failure in document["failures"]:
        print(f"FAILED: {failure}")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def server_connections(config: Config, workers: int | None = None) -> int:
    """The most connections one gunicorn server holds: a full pool per process."""
    return (workers or config.web_workers) * config.pool_max_size


def pgbench_clients(settings: Settings, config: Config) -> int:
    return settings.pgbench_clients or server_connections(config)


def connections_needed(settings: Settings, config: Config) -> int:
    """The most connections a run holds at once: every pool of the servers up
    together full (idle connections stay open), and pgbench's."""
    workers = max((config.web_workers, *settings.search_workers))
    servers = POOLED_SERVERS + (1 if settings.baseline else 0)
    pooled = servers * server_connections(config, workers)
    peer = PEER_CONNECTIONS if settings.peer else 0
    pgbench = settings.pgbench_clients or server_connections(config, workers)
    return pooled + pgbench + peer + SPARE_CONNECTIONS


def check_connections(url: str, needed: int) -> None:
    """Fail before anything starts when the server allows fewer connections
    than the run needs: pgbench would fail halfway, "too many clients"."""
    allowed = max_connections(url)
    if allowed < needed:
        raise SystemExit(
            f"bench: the database server allows {allowed} connections and this run needs "
            f"{needed} (WEB_CONCURRENCY x POOL_MAX_SIZE for each of {POOLED_SERVERS} servers "
            f"and pgbench); raise its max_connections, or leave DATABASE_URL unset for the "
            f"embedded server, which the harness sets up itself"
        )


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    loadgen.require_wrk()  # before anything starts
    # The URL is a placeholder: only the sizes are read here.
    sizes = Config.from_env(production_env("postgresql://", 8000, os.environ))
    needed = connections_needed(settings, sizes)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # stop cleanly, as on Ctrl-C
    registry = Registry()
    started = datetime.now(UTC)
    error: str | None = None
    harness: Harness | None = None
    try:
        with server_url(needed) as url:
            check_connections(url, needed)
            with scratch_database(url) as db_url:
                try:
                    harness = Harness(settings, registry, url, db_url)
                    harness.run()
                except KeyboardInterrupt:
                    error = "interrupted"
                except Exception as exc:
                    traceback.print_exc()
                    error = f"{type(exc).__name__}: {exc}"
                finally:
                    _ignore_interrupts()  # a second Ctrl-C must not cut the cleanup short
                    registry.stop_all()  # before the databases go
                    if harness is not None:
                        document = harness.document(started, error)
                        report.write_json(settings.output, document)
                        harness.close()
    finally:
        registry.stop_all()
    if harness is None:
        print(f"bench: failed before it started: {error}", file=sys.stderr)
        return 1
    print_report(document)
    print(f"\nbench: results in {settings.output}")
    if error:
        print(f"bench: stopped early: {error}", file=sys.stderr)
        return 130 if error == "interrupted" else 1
    return 1 if document["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
