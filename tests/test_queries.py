"""The named-query files: well formed, every query used, every use defined."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.db import Database
from service.queries import Query, QueryFileError, load_queries, parse_queries
from tests.conftest import run

SERVICE_DIR = Path(__file__).resolve().parent.parent / "service"
# db.one("name", ...), tx.execute("name", ...), queries["name"]
_USE = re.compile(r"(?:\.(?:one|all|execute)\(|queries\[)\s*\"([a-z_]+)\"")


def names_used_by_code() -> set[str]:
    used: set[str] = set()
    for path in SERVICE_DIR.glob("*.py"):
        used |= set(_USE.findall(path.read_text()))
    return used


def test_every_query_is_used_and_every_used_query_exists():
    defined = set(load_queries())
    used = names_used_by_code()
    assert used - defined == set(), "code calls queries that sql/ does not define"
    assert defined - used == set(), "sql/ defines queries nothing calls"


def test_queries_use_named_parameters_only():
    for name, query in load_queries().items():
        assert "%s" not in query.sql, name
        assert "{" not in query.sql, f"{name} looks like a format string"


def test_parse_strips_comments_and_semicolons():
    queries = parse_queries(
        "-- name: a_b\n-- says what\n-- idempotent\nSELECT 1;\n\n-- name: c\nSELECT 2\n"
    )
    assert queries == {"a_b": Query("a_b", "SELECT 1", True), "c": Query("c", "SELECT 2")}


def test_only_reads_are_marked_idempotent():
    safe = {name for name, query in load_queries().items() if query.idempotent}
    assert safe == {
        "find_paste",
        "find_removed_paste",
        "list_public",
        "ping",
        "list_reports",
        "list_blocked",
        "count_removed_pastes",
    }


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 1",
        "-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;",
        "-- name: empty\n-- only a comment\n",
        "SELECT 0;\n-- name: a\nSELECT 1;",
    ],
)
def test_malformed_query_files_are_refused(text):
    with pytest.raises(QueryFileError):
        parse_queries(text)


def test_every_query_plans_against_the_migrated_schema(sql):
    params = {
        "id": "AbCdEfGhIjKl",
        "content": "x",
        "content_sha256": b"\x00" * 32,
        "title": None,
        "language": None,
        "visibility": "public",
        "max_views": None,
        "password_hash": None,
        "size": 1,
        "expires_in": None,
        "delete_token_hash": b"\x00",
        "limit": 1,
        "after_created_at": "2026-01-01T00:00:00Z",
        "after_id": "AbCdEfGhIjKl",
        "batch": 10,
        "after": "2026-01-01T00:00:00Z",
        "bucket": "create",
        "client": "192.0.2.1",
        "burst": 10,
        "per_second": 0.5,
        "idle_seconds": 3600,
        "reason": "spam",
        "detail": None,
        "block": False,
        "sha256": "00" * 32,
    }
    for query in load_queries().values():
        sql.execute("EXPLAIN " + query.sql, params)


def test_rows_are_dicts_keyed_by_each_querys_own_columns(db):
    """Column names are kept per query: each query's rows carry its own."""
    two = Database(
        db.pool, {"ab": Query("ab", "SELECT 1 AS a, 2 AS b"), "c": Query("c", "SELECT 3 AS c")}
    )

    async def rows() -> None:
        for _ in range(2):  # the second time from the kept names
            assert await two.one("ab") == {"a": 1, "b": 2}
            assert await two.one("c") == {"c": 3}
            assert await two.all("ab") == [{"a": 1, "b": 2}]
            async with two.transaction() as tx:
                assert await tx.one("c") == {"c": 3}

    run(rows)
