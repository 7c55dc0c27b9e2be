"""The load generators: wrk for HTTP (with bench/lua/load.lua) and pgbench for
the database ceiling (with the service's own statements from sql/pastes.sql)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import statistics
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
LUA = BENCH_DIR / "lua" / "load.lua"
_PARAM = re.compile(r"%\((\w+)\)s")
# pgbench draws ids with random(); rows made for it have 12-digit decimal ids.
PGBENCH_FIRST_ID = 100_000_000_000
# Ids of the rows pgbench's insert makes: 19 digits, random, never colliding in practice.
PGBENCH_INSERT_IDS = (1_000_000_000_000_000_000, 9_000_000_000_000_000_000)


def require_wrk() -> str:
    """wrk's path; without it, say how to install it and exit non-zero."""
    path = shutil.which("wrk")
    if path is None:
        print(
            "bench: wrk is not installed; install it with `apt-get install wrk` "
            "(Debian/Ubuntu; `brew install wrk` on macOS) and run again",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return path


def find_pgbench() -> str | None:
    """pgbench on PATH, else the one the embedded pgserver package ships."""
    path = shutil.which("pgbench")
    if path:
        return path
    try:
        import pgserver  # optional: only to find the binaries it ships

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
        return str(bundled) if bundled.exists() else None
    except ImportError:
        return None


@dataclass(frozen=True)
class Workload:
    """What wrk sends: GETs of `path` (with "{id}" drawn from `ids`), and a
    `create_ratio` share of POSTs of `body`."""

    path: str
    ids: Path | None = None
    create_ratio: float = 0.0
    body: Path | None = None
    clients: int = 0  # distinct X-Forwarded-For addresses; 0: none
    create_path: str = "/api/v1/pastes"
    content_type: str = "application/json"


def wrk_command(
    wrk: str,
    url: str,
    workload: Workload,
    *,
    duration: float,
    connections: int,
    threads: int,
    timeout: float,
) -> list[str]:
    return [
        wrk,
        f"--threads={min(threads, connections)}",
        f"--connections={connections}",
        f"--duration={max(1, round(duration))}s",
        f"--timeout={max(1, round(timeout))}s",
        f"--script={LUA}",
        url,
        "--",
        workload.path,
        str(workload.ids) if workload.ids else "-",
        str(workload.create_ratio),
        str(workload.body) if workload.body else "-",
        str(workload.clients),
        workload.create_path,
        workload.content_type,
    ]


def parse_wrk(output: str) -> dict[str, Any]:
    """The figures of wrk's run from the BENCH_JSON line load.lua's done() prints."""
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            raw = json.loads(line.removeprefix("BENCH_JSON "))
            break
    else:
        raise RuntimeError(f"wrk printed no BENCH_JSON line:\n{output[-2000:]}")
    seconds = raw["duration_us"] / 1e6
    requests = raw["requests"]
    socket_errors = sum(raw[f"errors_{kind}"] for kind in ("connect", "read", "write", "timeout"))
    return {
        "requests": requests,
        "seconds": seconds,
        "rps": requests / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "p999_ms": raw["p999_us"] / 1000,
        "mean_ms": raw["latency_mean_us"] / 1000,
        "max_ms": raw["latency_max_us"] / 1000,
        # wrk counts a status of 400 and up as an error; no scenario expects a 3xx.
        "non_2xx": raw["errors_status"],
        "socket_errors": socket_errors,
        "errors": raw["errors_status"] + socket_errors,
    }


def render_pgbench(sql: str, nulls: frozenset[str] = frozenset()) -> str:
    """A named-parameter statement as pgbench SQL: %(x)s becomes :x, except the
    parameters in `nulls`, which become NULL (a pgbench variable cannot hold
    SQL NULL: it would be sent as the text 'NULL')."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return "NULL" if name in nulls else f":{name}"

    return _PARAM.sub(replace, sql).rstrip().removesuffix(";") + ";\n"


def pgbench_read_script(read_sql: str, rows: int) -> str:
    """find_paste of a random one of the `rows` rows made by insert_live."""
    draw = f"\\set id random({PGBENCH_FIRST_ID + 1}, {PGBENCH_FIRST_ID + rows})\n"
    return draw + render_pgbench(read_sql)


def pgbench_insert_script(insert_sql: list[str], clients: int = 0) -> str:
    """The create statement as the create scenario sends it: content only,
    unlisted, no title, language or expiry; with `clients`, the client of the
    rate-limited statement is one of that many, drawn per transaction, as the
    load generator's X-Forwarded-For addresses are."""
    low, high = PGBENCH_INSERT_IDS
    nulls = frozenset({"title", "language", "expires_in", "max_views", "password_hash"})
    draws = f"\\set id random({low}, {high})\n"
    if clients:
        draws += f"\\set client random(1, {clients})\n"
    return draws + "".join(render_pgbench(sql, nulls) for sql in insert_sql)


def pgbench_insert_defines(content: str, bucket: Mapping[str, object] | None = None) -> list[str]:
    """The constant parameters of the insert (and of its rate-limit bucket),
    as pgbench -D options."""
    return [
        f"--define=content={content}",
        f"--define=content_sha256=\\x{hashlib.sha256(content.encode('utf-8')).hexdigest()}",
        "--define=visibility=unlisted",
        f"--define=size={len(content.encode('utf-8'))}",
        "--define=delete_token_hash=\\x" + "00" * 32,
        *(f"--define={name}={value}" for name, value in (bucket or {}).items()),
    ]


def pgbench_command(
    pgbench: str,
    db_url: str,
    script: Path,
    *,
    clients: int,
    duration: float,
    log_prefix: Path | None,
    defines: list[str],
) -> list[str]:
    cmd = [
        pgbench,
        "--no-vacuum",  # its own tables are not used
        "--protocol=prepared",
        f"--client={clients}",
        f"--jobs={min(clients, 2)}",
        f"--time={max(1, round(duration))}",
        f"--file={script}",
        *defines,
    ]
    if log_prefix is not None:
        cmd += ["--log", f"--log-prefix={log_prefix}"]
    return [*cmd, db_url]


def parse_pgbench(output: str, log_prefix: Path | None) -> dict[str, Any]:
    """tps and latency from pgbench's report; percentiles from its
    per-transaction log (third field: latency in microseconds)."""
    tps = _number(r"^tps = ([\d.]+)", output)
    processed = _number(r"number of transactions actually processed: (\d+)", output)
    failed = _number(r"number of failed transactions: (\d+)", output, default=0.0)
    result: dict[str, Any] = {
        "requests": int(processed),
        "seconds": processed / tps if tps else 0.0,
        "rps": tps,
        "mean_ms": _number(r"latency average = ([\d.]+) ms", output),
        "non_2xx": 0,
        "socket_errors": int(failed),
        "errors": int(failed),
    }
    latencies = _pgbench_latencies(log_prefix) if log_prefix else []
    if latencies:
        cuts = statistics.quantiles(latencies, n=1000, method="inclusive")
        result |= {
            "p50_ms": cuts[499] / 1000,
            "p90_ms": cuts[899] / 1000,
            "p99_ms": cuts[989] / 1000,
            "p999_ms": cuts[998] / 1000,
            "max_ms": max(latencies) / 1000,
        }
    return result


def _pgbench_latencies(log_prefix: Path) -> list[int]:
    latencies: list[int] = []
    for log in log_prefix.parent.glob(f"{log_prefix.name}.*"):
        with log.open() as lines:
            for line in lines:
                fields = line.split()
                # A failed or skipped transaction has a word there, not a latency.
                if len(fields) > 2 and fields[2].isdigit():
                    latencies.append(int(fields[2]))
        log.unlink()
    return latencies


def _number(pattern: str, text: str, default: float | None = None) -> float:
    match = re.search(pattern, text, re.MULTILINE)
    if match:
        return float(match.group(1))
    if default is not None:
        return default
    raise RuntimeError(f"pgbench output has no {pattern!r}:\n{text[-2000:]}")
