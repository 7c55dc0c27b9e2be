"""Operator actions on a machine with database access: `python -m service.admin`.

    reports                          reported pastes, most reported first
    remove ID [--reason T] [--block] delete a paste for good, keep a tombstone (451)
    block SHA256 / unblock SHA256    the blocklist of content hashes
    blocked                          list the blocklist

Exit status: 0 done, 1 unknown paste or hash, 2 usage error, 3 database unreachable.
Every action is logged (structlog) with what, when and why.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import Sequence
from typing import Any

import orjson
import structlog

from service.config import Config, ConfigError
from service.db import SyncDatabase
from service.errors import DatabaseUnavailable
from service.logs import configure_logging
from service.views import rfc3339

log = structlog.get_logger("service.admin")

OK, UNKNOWN, USAGE, UNREACHABLE = 0, 1, 2, 3
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _sha256(text: str) -> str:
    if not _SHA256.fullmatch(text):
        raise argparse.ArgumentTypeError("must be 64 hexadecimal digits (a SHA-256)")
    return text.lower()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service.admin",
        description="Operator actions: abuse reports, takedowns, the content blocklist.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    reports = commands.add_parser("reports", help="list reported pastes, most reported first")
    reports.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")

    remove = commands.add_parser(
        "remove", help="delete a paste for good; its reads answer 451 with the reason"
    )
    remove.add_argument("id", help="the paste's id")
    remove.add_argument("--reason", default="removed by the operator", help="shown to readers")
    remove.add_argument(
        "--block", action="store_true", help="also block its content (by SHA-256) from re-upload"
    )

    block = commands.add_parser(
        "block",
        help="refuse creates of content with this SHA-256 (of its exact UTF-8 bytes: "
        "a one-byte change evades it)",
    )
    block.add_argument("sha256", type=_sha256)
    block.add_argument("--reason", default=None, help="why, for the record")

    unblock = commands.add_parser("unblock", help="take a SHA-256 off the blocklist")
    unblock.add_argument("sha256", type=_sha256)

    commands.add_parser("blocked", help="list the blocklist")
    return parser


def _print(document: Any, as_json: bool, lines: Sequence[str]) -> None:
    if as_json:
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        for line in lines:
            print(line)


def run(args: argparse.Namespace, db: SyncDatabase) -> int:
    """Carry out one parsed command; its exit status."""
    operator = getpass.getuser()
    if args.command == "reports":
        rows = db.all("list_reports", limit=args.limit)
        items = [
            {
                "id": row["id"],
                "reports": row["reports"],
                "reasons": row["reasons"],
                "details": row["details"],
                "title": row["title"],
                "size": row["size"],
                "created_at": rfc3339(row["created_at"]),
                "last_reported": rfc3339(row["last_reported"]),
            }
            for row in rows
        ]
        lines = [
            f"{item['id']}  {item['reports']} report(s): "
            + ", ".join(f"{reason} {n}" for reason, n in sorted(item["reasons"].items()))
            + f"  last {item['last_reported']}  {item['size']} bytes"
            + (f"  title {item['title']!r}" if item["title"] else "")
            + "".join(f"\n    {detail!r}" for detail in item["details"])
            for item in items
        ] or ["no reported pastes"]
        _print(items, args.json, lines)
        return OK
    if args.command == "remove":
        row = db.one("remove_paste", id=args.id, reason=args.reason, block=args.block)
        if row is None:
            print(f"no live paste {args.id}", file=sys.stderr)
            return UNKNOWN
        log.info(
            "paste_removed",
            id=args.id,
            reason=args.reason,
            blocked=args.block,
            sha256=row["sha256"],
            operator=operator,
        )
        result = {"id": args.id, "removed": True, "blocked": args.block, "sha256": row["sha256"]}
        blocked = f"; content {row['sha256']} blocked" if args.block else ""
        _print(result, args.json, [f"removed {args.id}{blocked}"])
        return OK
    if args.command == "block":
        db.execute("block_content", sha256=args.sha256, reason=args.reason)
        log.info("content_blocked", sha256=args.sha256, reason=args.reason, operator=operator)
        _print({"sha256": args.sha256, "blocked": True}, args.json, [f"blocked {args.sha256}"])
        return OK
    if args.command == "unblock":
        if db.one("unblock_content", sha256=args.sha256) is None:
            print(f"{args.sha256} is not blocked", file=sys.stderr)
            return UNKNOWN
        log.info("content_unblocked", sha256=args.sha256, operator=operator)
        _print({"sha256": args.sha256, "blocked": False}, args.json, [f"unblocked {args.sha256}"])
        return OK
    rows = db.all("list_blocked")
    items = [
        {"sha256": r["sha256"], "reason": r["reason"], "blocked_at": rfc3339(r["blocked_at"])}
        for r in rows
    ]
    lines = [
        f"{item['sha256']}  {item['blocked_at']}"
        + (f"  {item['reason']}" if item["reason"] else "")
        for item in items
    ] or ["the blocklist is empty"]
    _print(items, args.json, lines)
    return OK


def execute(argv: Sequence[str] | None, config: Config) -> int:
    """Parse `argv` and carry the command out against `config`'s database."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # a usage error (2), or --help (0)
        return int(exc.code or 0)
    if not config.database_url:
        print("admin: DATABASE_URL is not set", file=sys.stderr)
        return USAGE
    db = SyncDatabase.from_config(config, name="pastebin-admin")
    try:
        return run(args, db)
    except DatabaseUnavailable:
        print("admin: the database cannot be reached", file=sys.stderr)
        return UNREACHABLE
    finally:
        db.close()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"admin: {exc}", file=sys.stderr)
        return USAGE
    configure_logging(config)
    return execute(argv, config)


if __name__ == "__main__":
    sys.exit(main())
