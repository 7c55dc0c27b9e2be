"""Results of a benchmark: medians of the runs, ratios to the ceilings, the
JSON document and the printed tables."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

Run = dict[str, Any]

# (figure, its ceiling, what the ratio says) — a ratio is figure rps / ceiling rps.
CEILING_RATIOS = (
    ("read-raw", "ceiling-read", "read-raw vs combined read ceiling"),
    ("read-json", "ceiling-read", "read-json vs combined read ceiling"),
    ("create", "ceiling-insert", "create vs combined insert ceiling"),
    ("create", "ceiling-insert-plain", "create vs plain-insert ceiling (no rate limit)"),
    ("mixed", "ceiling-mixed", "mixed vs combined mixed ceiling (95 % read, 5 % insert)"),
    ("ceiling-read", "ceiling-http", "combined read vs HTTP ceiling"),
    ("ceiling-read", "db-read", "combined read vs database read ceiling"),
    ("ceiling-insert", "db-insert", "combined insert vs database insert ceiling"),
    ("ceiling-insert", "ceiling-insert-plain", "rate-limited vs plain-insert ceiling"),
)
# (figure, the peer's same figure, label): rps and p99 against a peer, same rounds.
PEER_RATIOS = (
    ("read-raw", "peer-read-raw", "read-raw vs peer"),
    ("read-json", "peer-read-json", "read-json vs peer"),
    ("create", "peer-create", "create vs peer"),
    ("mixed", "peer-mixed", "mixed vs peer"),
)
# The same figures of an earlier revision (--baseline), same rounds.
BASELINE_RATIOS = tuple(
    (name, f"before-{name}", f"{name} vs baseline")
    for name in ("read-raw", "read-json", "create", "mixed", "list-first", "list-deep")
)
SCALE_RATIOS = (
    ("read-raw-scaled", "read-raw", "read-raw rps, big table vs seeded table (drift-corrected)"),
    ("list-deep", "list-first", "list rps, page after 1,000 cursors vs first page"),
)


def median_run(runs: list[Run]) -> Run:
    """Per numeric figure, the median over the runs (lists and text: the last run's)."""
    if not runs:
        return {}
    merged: Run = {}
    for key in runs[-1]:
        values = [run[key] for run in runs if key in run]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if numbers and len(numbers) == len(values):
            merged[key] = statistics.median(numbers)
        else:
            merged[key] = values[-1]
    return merged


def ratios(
    medians: Mapping[str, Run],
    purge: Mapping[str, float] | None,
    runs: Mapping[str, list[Run]] | None = None,
) -> list[Run]:
    rows: list[Run] = []
    runs = runs or {}
    for figure, ceiling, label in (*CEILING_RATIOS, *SCALE_RATIOS):
        top, bottom = medians.get(figure), medians.get(ceiling)
        if top and bottom and bottom.get("rps"):
            of_medians = top["rps"] / bottom["rps"]
            # Figures measured side by side in every round: the ratio is taken
            # within each round and the median of those reported, because this
            # machine's speed drifts between rounds (the ratio of medians is kept).
            per_round = _per_round(runs.get(figure, []), runs.get(ceiling, []), "rps")
            value = statistics.median(per_round) if per_round else of_medians
            if figure == "read-raw-scaled":
                value = _drift_corrected(runs) or of_medians
            rows.append({"ratio": label, "value": value, "of_medians": of_medians})
    for figure, peer, label in (*PEER_RATIOS, *BASELINE_RATIOS):
        top, bottom = medians.get(figure), medians.get(peer)
        if not (top and bottom):
            continue
        for key, what in (("rps", "req/s"), ("p99_ms", "p99")):
            if bottom.get(key):
                of_medians = top[key] / bottom[key]
                per_round = _per_round(runs.get(figure, []), runs.get(peer, []), key)
                value = statistics.median(per_round) if per_round else of_medians
                rows.append({"ratio": f"{label}, {what}", "value": value, "of_medians": of_medians})
    p99_idle = medians.get("read-raw-idle", {}).get("p99_ms")
    p99_purge = medians.get("read-raw-purging", {}).get("p99_ms")
    if p99_idle and p99_purge:
        per_round = _per_round(
            runs.get("read-raw-purging", []), runs.get("read-raw-idle", []), "p99_ms"
        )
        rows.append(
            {
                "ratio": "read-raw p99, purge running vs idle",
                "value": statistics.median(per_round) if per_round else p99_purge / p99_idle,
                "of_medians": p99_purge / p99_idle,
            }
        )
    for key, value in (purge or {}).items():
        if key.startswith("before_workers_") and purge and purge.get(key.removeprefix("before_")):
            label = f"purge with {key.removeprefix('before_workers_')} worker(s) vs baseline"
            ratio = purge[key.removeprefix("before_")] / value
            rows.append({"ratio": label, "value": ratio, "of_medians": ratio})
        elif key.startswith("workers_") and purge and purge.get("ceiling"):
            label = f"purge with {key.removeprefix('workers_')} worker(s) vs bare loop"
            ratio = value / purge["ceiling"]
            rows.append({"ratio": label, "value": ratio, "of_medians": ratio})
    return rows


def _drift_corrected(runs: Mapping[str, list[Run]]) -> float | None:
    """read-raw at scale vs on the seeded table, each first taken against the
    HTTP ceiling measured in its own round (which needs no database, so it
    only tells how fast the machine was at the time)."""
    scaled = _per_round(runs.get("read-raw-scaled", []), runs.get("ceiling-http-scaled", []), "rps")
    seeded = _per_round(runs.get("read-raw", []), runs.get("ceiling-http", []), "rps")
    if not scaled or not seeded:
        return None
    return statistics.median(scaled) / statistics.median(seeded)


def _per_round(tops: list[Run], bottoms: list[Run], key: str) -> list[float]:
    """top / bottom of `key` in each round both were measured in."""
    if len(tops) != len(bottoms):
        return []
    return [t[key] / b[key] for t, b in zip(tops, bottoms, strict=True) if b.get(key)]


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def figures_table(medians: Mapping[str, Run]) -> str:
    headers = [
        "figure",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors %",
        "cpu s server",
        "cpu s pg",
        "cpu s loadgen",
        "server cpu ms/req",
        "our cpu %",
        "idle %",
        "worker balance",
        "peak RSS MiB/worker",
    ]
    rows = [
        [
            name,
            _fmt(run.get("rps"), 0),
            _fmt(run.get("p50_ms"), 2),
            _fmt(run.get("p99_ms"), 2),
            _fmt(run.get("error_pct"), 3),
            _fmt(run.get("cpu_server_s"), 1),
            _fmt(run.get("cpu_pg_s"), 1),
            _fmt(run.get("cpu_loadgen_s"), 1),
            _fmt(run.get("cpu_server_ms_per_req"), 3),
            _fmt(100 * run["cpu_share"] if run.get("cpu_share") else None, 0),
            _fmt(run.get("machine_idle_pct"), 0),
            _fmt(run.get("worker_balance"), 2),
            _fmt(run.get("peak_rss_mib_max"), 1),
        ]
        for name, run in medians.items()
    ]
    return _table(headers, rows)


def ratios_table(rows: list[Run], purge: Mapping[str, float] | None) -> str:
    body = [
        [row["ratio"], f"{row['value']:.2f}", f"{row.get('of_medians', row['value']):.2f}"]
        for row in rows
    ]
    for key, value in (purge or {}).items():
        count = key.removeprefix("before_").removeprefix("workers_")
        label = "bare loop" if key == "ceiling" else f"{count} worker(s)"
        if key.startswith("before_"):
            label = f"baseline, {label}"
        body.append([f"purge rows/s, {label}", _fmt(value, 0), ""])
    return _table(["ratio / figure", "median of rounds", "of medians"], body)
