"""Storage of paste content: pglz (PostgreSQL's default) beside lz4.

Loads the same 100,000 pastes of 4 KiB source code (slices of the standard
library's own .py files) into two tables that differ only in the content
column's compression, and reports each table's size and the time of a point
read of the content (alternating rounds on one connection, medians).

    .venv/bin/python bench/storage.py [--pastes 100000] [--rounds 5]

Uses BENCH_DATABASE_URL / DATABASE_URL, else the embedded PostgreSQL (which
has no lz4: the script says so and stops).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import sysconfig
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import scratch_database, server_url

PASTE_BYTES = 4096


def corpus(count: int) -> list[str]:
    """`count` slices of PASTE_BYTES of the standard library's source."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    text = ""
    for path in sorted(stdlib.glob("*.py")):
        text += path.read_text("utf-8", errors="replace")
        if len(text) > 8 * 1024 * 1024:
            break
    data = text.encode("ascii", errors="replace").decode("ascii")
    slices = len(data) // PASTE_BYTES
    return [
        data[(i % slices) * PASTE_BYTES : (i % slices + 1) * PASTE_BYTES]
        + f"\n# paste {i}\n"  # every paste differs
        for i in range(count)
    ]


def has_lz4(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    ).fetchone()
    return bool(row and row[0])


def load(conn: psycopg.Connection, table: str, method: str, pastes: list[str]) -> None:
    conn.execute(
        f"CREATE TABLE {table} (id text PRIMARY KEY, content text COMPRESSION {method} NOT NULL)"
    )
    with conn.cursor().copy(f"COPY {table} (id, content) FROM STDIN") as copy:
        for i, content in enumerate(pastes):
            copy.write_row((f"p{i:011d}", content))
    conn.execute(f"VACUUM ANALYZE {table}")


def read_round(conn: psycopg.Connection, table: str, ids: list[str]) -> float:
    """Microseconds per point read of the content."""
    query = f"SELECT content FROM {table} WHERE id = %s"
    started = time.perf_counter()
    for paste_id in ids:
        conn.execute(query, (paste_id,), prepare=True).fetchone()
    return (time.perf_counter() - started) / len(ids) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pastes", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reads", type=int, default=20_000, help="point reads per round")
    args = parser.parse_args()
    pastes = corpus(args.pastes)
    raw_mib = sum(len(p) for p in pastes) / 2**20
    with (
        server_url() as url,
        scratch_database(url) as db_url,
        psycopg.connect(db_url, autocommit=True) as conn,
    ):
        if not has_lz4(conn):
            print("storage: this PostgreSQL was built without lz4; nothing to compare")
            return 1
        version = conn.execute("SHOW server_version").fetchone()
        tables = {"pglz": "content_pglz", "lz4": "content_lz4"}
        for method, table in tables.items():
            started = time.perf_counter()
            load(conn, table, method, pastes)
            print(f"loaded {method}: {time.perf_counter() - started:.1f} s")
        print(
            f"PostgreSQL {version[0] if version else '?'}; {args.pastes} pastes of "
            f"{PASTE_BYTES} B source code, {raw_mib:.0f} MiB of text"
        )
        for method, table in tables.items():
            row = conn.execute(
                "SELECT pg_total_relation_size(%s), pg_table_size(%s)", (table, table)
            ).fetchone()
            assert row is not None
            total, table_and_toast = row[0] / 2**20, row[1] / 2**20
            print(f"  {method:5s} total {total:7.1f} MiB  (table+toast {table_and_toast:.1f} MiB)")
        rng = random.Random(7)
        timings: dict[str, list[float]] = {method: [] for method in tables}
        for _ in range(args.rounds):
            ids = [f"p{rng.randrange(args.pastes):011d}" for _ in range(args.reads)]
            for method, table in tables.items():
                timings[method].append(read_round(conn, table, ids))
        for method in tables:
            print(
                f"  {method:5s} point read of the content: median "
                f"{statistics.median(timings[method]):.1f} µs ({args.rounds} rounds)"
            )
        ratio = statistics.median(timings["lz4"]) / statistics.median(timings["pglz"])
        print(f"  lz4 / pglz read time: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
