"""Service functions for pastes: what the API does, in terms of named queries.

Each takes the database handle first and plain values after; none knows HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from service import domain
from service.cursors import Cursor
from service.db import Database, Row
from service.domain import NewPaste, Paste
from service.errors import PasteNotFound, RateLimited, WrongDeleteToken
from service.ratelimit import Limit


@dataclass(frozen=True, slots=True)
class CreatedPaste:
    paste: Paste
    delete_token: str


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Paste]
    next_cursor: Cursor | None


async def create_paste(
    db: Database, new: NewPaste, *, client: str | None = None, limit: Limit | None = None
) -> CreatedPaste:
    """Store `new` and return it with its one-time delete token.

    With a `limit`, the paste is stored only if `client` has a token left in
    that bucket (taken by the same statement); else RateLimited is raised. The
    insert commits before this returns, so an acknowledged paste is durable.
    """
    token = domain.new_delete_token()
    values = {
        "id": domain.new_paste_id(),
        "content": new.content,
        "title": new.title,
        "language": new.language,
        "visibility": new.visibility,
        "burn_after_read": new.burn_after_read,
        "size": new.size,
        "expires_in": new.expires_in,
        "delete_token_hash": domain.hash_delete_token(token),
    }
    if limit is None or client is None:
        row = await db.one("insert_paste", **values)
    else:
        row = await db.one(
            "insert_paste_rate_limited",
            **values,
            bucket=limit.bucket,
            client=client,
            burst=limit.burst,
            per_second=limit.per_second,
        )
        assert row is not None  # the bucket's upsert always yields a row
        if row["id"] is None:
            raise RateLimited(limit.retry_after(row["tokens"]))
    assert row is not None  # INSERT … RETURNING always yields the row
    return CreatedPaste(paste=_paste(row), delete_token=token)


async def read_paste(db: Database, paste_id: str, *, consume: bool = True) -> Paste:
    """A live paste with its content. A burn-after-read paste is consumed by
    the read, unless `consume` is false (HEAD never burns).

    Raises PasteNotFound when there is no live paste `paste_id`.
    """
    if not domain.is_possible_paste_id(paste_id):
        raise PasteNotFound()
    if consume:
        row = await db.one("read_paste", id=paste_id)
    else:
        row = await db.one("peek_paste", id=paste_id)
    if row is None:
        raise PasteNotFound()
    return _paste(row)


async def delete_paste(db: Database, paste_id: str, token: str) -> None:
    """Delete a live paste whose delete token is `token`.

    Raises PasteNotFound when there is no such live paste, WrongDeleteToken when
    the token does not match (compared in constant time).
    """
    if not domain.is_possible_paste_id(paste_id):
        raise PasteNotFound()
    async with db.transaction() as tx:
        row = await tx.one("lock_paste_for_delete", id=paste_id)
        if row is None:
            raise PasteNotFound()
        if not domain.delete_token_matches(token, bytes(row["delete_token_hash"])):
            raise WrongDeleteToken()
        await tx.execute("delete_paste", id=paste_id)


async def list_public(db: Database, *, limit: int, after: Cursor | None = None) -> Page:
    """Live public pastes, newest first, `limit` at most, after `after`."""
    # One row more than asked tells whether another page exists.
    if after is None:
        rows = await db.all("list_public_first", limit=limit + 1)
    else:
        rows = await db.all(
            "list_public_after",
            limit=limit + 1,
            after_created_at=after.created_at,
            after_id=after.id,
        )
    items = [_paste(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = Cursor(created_at=last.created_at, id=last.id)
    return Page(items=items, next_cursor=next_cursor)


def _paste(row: Row) -> Paste:
    return Paste(
        id=row["id"],
        title=row["title"],
        language=row["language"],
        visibility=row["visibility"],
        burn_after_read=row["burn_after_read"],
        size=row["size"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        content=row.get("content"),
    )
