"""Named SQL queries, loaded once from `sql/*.sql`.

Each query starts with a `-- name: verb_noun` line; the comment lines after it
say what it does and which index serves it. An `-- idempotent` line marks a
query that leaves the database as it found it after one run when run twice,
so it may run again after its connection was lost mid-call. Duplicate names
are an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_IDEMPOTENT_LINE = re.compile(r"^\s*--\s*idempotent\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    sql: str
    idempotent: bool = False


class QueryFileError(Exception):
    """A SQL file is not in the expected named-query form."""


def parse_queries(text: str, source: str = "<string>") -> dict[str, Query]:
    """Split one file's text into {name: query}."""
    matches = list(_NAME_LINE.finditer(text))
    if not matches:
        raise QueryFileError(f"{source}: no '-- name:' line")
    if text[: matches[0].start()].strip():
        raise QueryFileError(f"{source}: text before the first '-- name:' line")
    queries: dict[str, Query] = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        name = match.group(1)
        end = following.start() if following else len(text)
        body = text[match.end() : end]
        statement = "\n".join(
            line for line in body.splitlines() if not line.lstrip().startswith("--")
        ).strip()
        statement = statement.removesuffix(";").strip()
        if not statement:
            raise QueryFileError(f"{source}: query {name!r} is empty")
        if name in queries:
            raise QueryFileError(f"{source}: query {name!r} is defined twice")
        queries[name] = Query(name, statement, bool(_IDEMPOTENT_LINE.search(body)))
    return queries


def load_queries(directory: Path = SQL_DIR) -> dict[str, Query]:
    """Every named query of every `.sql` file in `directory`."""
    queries: dict[str, Query] = {}
    for path in sorted(directory.glob("*.sql")):
        for name, query in parse_queries(path.read_text("utf-8"), path.name).items():
            if name in queries:
                raise QueryFileError(f"{path.name}: query {name!r} is defined twice")
            queries[name] = query
    return queries
