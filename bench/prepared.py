"""read-raw with prepared statements on and off, side by side: what
DB_PREPARED_STATEMENTS=false costs (README, Operations).

    .venv/bin/python bench/prepared.py [--runs 3] [--duration 10] [--warmup 3]
                                       [--connections 64] [--seed-pastes 10000]

One scratch database (BENCH_DATABASE_URL / DATABASE_URL, else the embedded
PostgreSQL of the benchmark), seeded through the API, with the timeouts as the
role's defaults as README says; three gunicorn servers as production runs them
(gunicorn.conf.py, APP_ENV=production, WEB_CONCURRENCY and POOL_* from the
environment):

    on             straight to PostgreSQL, DB_PREPARED_STATEMENTS=true (the default)
    off            straight to PostgreSQL, DB_PREPARED_STATEMENTS=false
    off-pgbouncer  DB_PREPARED_STATEMENTS=false through pgbouncer in transaction
                   mode (default_pool_size = WEB_CONCURRENCY x POOL_MAX_SIZE)

Each round runs wrk (bench/lua/load.lua, GET /api/v1/pastes/{id}/raw of random
seeded ids) against each in turn, after a discarded warm-up, the order
rotated each round; the report gives the medians of the rounds and the
median of each round's ratio to `on` (the machine's drift cancels). Writes
bench/results/prepared.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import dataset, loadgen
from bench.common import ROOT, scratch_database, server_url, settle
from bench.procs import Bounded, Registry
from bench.servers import SERVICE_APP, Server, free_port, gunicorn, production_env
from service.config import Config
from tests.pgbouncer import MISSING, PgBouncer, pgbouncer_binary, set_role_defaults

RAW = "/api/v1/pastes/{id}/raw"
VARIANTS = ("on", "off", "off-pgbouncer")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds discarded before it")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--seed-pastes", type=int, default=10_000)
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/prepared.json")
    return parser.parse_args(argv)


def wrk_run(
    registry: Registry, wrk: str, server: Server, workload: loadgen.Workload, args: Any, tmp: Path
) -> dict[str, Any]:
    cmd = loadgen.wrk_command(
        wrk,
        server.url,
        workload,
        duration=args.duration,
        connections=args.connections,
        threads=1,
        timeout=5,
    )
    finished = Bounded(registry, "wrk", cmd, args.duration + 35, tmp / "wrk.log").wait()
    if finished.returncode != 0 or server.process.poll() is not None:
        raise RuntimeError(f"wrk or {server.name} failed:\n{finished.output}\n{server.tail()}")
    return loadgen.parse_wrk(finished.output)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = loadgen.require_wrk()
    if pgbouncer_binary() is None:
        print(f"bench: {MISSING}", file=sys.stderr)
        return 2
    base = production_env("postgresql://", 8000, os.environ)
    base.setdefault("PUBLIC_BASE_URL", "http://127.0.0.1")
    sizes = Config.from_env(base)
    registry = Registry()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    tmp = Path(tempfile.mkdtemp(prefix="pastebin-prepared-"))
    with ExitStack() as stack:
        stack.callback(registry.stop_all)
        url = stack.enter_context(server_url(3 * sizes.web_workers * sizes.pool_max_size + 10))
        db_url = stack.enter_context(scratch_database(url))
        set_role_defaults(db_url, Config())
        bouncer = PgBouncer(url, pool_size=sizes.web_workers * sizes.pool_max_size)
        stack.callback(bouncer.close)
        bouncer.start()
        targets = {"on": db_url, "off": db_url, "off-pgbouncer": bouncer.url(db_url)}
        servers = {}
        for name in VARIANTS:
            env = production_env(targets[name], free_port(), base)
            env["DB_PREPARED_STATEMENTS"] = "true" if name == "on" else "false"
            env["LOG_LEVEL"] = "WARNING"  # no access line per request, alike for all three
            servers[name] = stack.enter_context(
                gunicorn(
                    registry, name, SERVICE_APP, env, tmp / f"{name}.log", ready_path="/readyz"
                )
            )
        ids = dataset.create_pastes("127.0.0.1", servers["on"].port, args.seed_pastes)
        workload = loadgen.Workload(RAW, dataset.write_ids(tmp / "ids", ids))
        settle(db_url)
        for run in range(args.runs):
            order = VARIANTS[run % 3 :] + VARIANTS[: run % 3]
            for name in order:
                if args.warmup > 0:
                    warm = argparse.Namespace(**{**vars(args), "duration": args.warmup})
                    wrk_run(registry, wrk, servers[name], workload, warm, tmp)
                result = wrk_run(registry, wrk, servers[name], workload, args, tmp)
                runs[name].append(result)
                print(
                    f"bench: round {run + 1} {name}: {result['rps']:,.0f} req/s, "
                    f"p99 {result['p99_ms']:.2f} ms, errors {result['errors']}",
                    flush=True,
                )
    medians = {
        name: {
            key: statistics.median(r[key] for r in results)
            for key in ("rps", "p50_ms", "p99_ms", "errors")
        }
        for name, results in runs.items()
    }
    for name, figures in medians.items():  # against `on` in the same round: less noise
        ratios = [r["rps"] / o["rps"] for r, o in zip(runs[name], runs["on"], strict=True)]
        figures["rps_vs_on_per_round"] = statistics.median(ratios)
    print(
        f"\nread-raw, medians of {args.runs} rounds ({args.duration:g} s each, "
        f"{args.connections} connections, WEB_CONCURRENCY={sizes.web_workers}, "
        f"POOL_MAX_SIZE={sizes.pool_max_size}):"
    )
    for name, figures in medians.items():
        print(
            f"  {name:14} {figures['rps']:8,.0f} req/s  "
            f"x{figures['rps_vs_on_per_round']:.2f} of `on` (median of the rounds' ratios)  "
            f"p50 {figures['p50_ms']:.2f} ms  p99 {figures['p99_ms']:.2f} ms  "
            f"errors {figures['errors']:g}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        "medians": medians,
        "runs": runs,
    }
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"bench: results in {args.output}")
    return 1 if any(figures["errors"] for figures in medians.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
