"""Service functions for pastes: what the API does, in terms of named queries.

Each takes the database handle first and plain values after; none knows HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from service import domain
from service.cursors import Cursor
from service.db import Database, Row
from service.domain import NewPaste, Paste
from service.errors import (
    ContentBlocked,
    PasswordRequired,
    PasteNotFound,
    PasteRemoved,
    WrongDeleteToken,
    WrongPassword,
)
from service.passwords import Hasher


@dataclass(frozen=True, slots=True)
class CreatedPaste:
    paste: Paste
    delete_token: str


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Paste]
    next_cursor: Cursor | None


async def create_paste(db: Database, new: NewPaste, hasher: Hasher) -> CreatedPaste:
    """Store `new` and return it with its one-time delete token.

    Raises ContentBlocked, storing nothing, when the content's SHA-256 is on
    the blocklist. The insert commits before this returns, so an acknowledged
    paste is durable.
    """
    token = domain.new_delete_token()
    password_hash = None if new.password is None else await hasher.hash(new.password)
    paste_id = domain.new_paste_id()
    encoded = new.content.encode("utf-8")  # once, for its size and its hash
    row = await db.one(
        "insert_paste",
        id=paste_id,
        content=new.content,
        content_sha256=domain.content_sha256(encoded),
        title=new.title,
        language=new.language,
        visibility=new.visibility,
        max_views=new.max_views,
        password_hash=password_hash,
        size=len(encoded),
        expires_in=new.expires_in,
        delete_token_hash=domain.hash_delete_token(token),
    )
    if row is None:
        raise ContentBlocked()
    paste = Paste(
        id=paste_id,
        title=new.title,
        language=new.language,
        visibility=new.visibility,
        max_views=new.max_views,
        views_left=new.max_views,
        size=len(encoded),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        password_hash=password_hash,
    )
    return CreatedPaste(paste=paste, delete_token=token)


async def read_paste(
    db: Database,
    paste_id: str,
    *,
    consume: bool = True,
    password: str | None = None,
    hasher: Hasher | None = None,
) -> Paste:
    """A live paste with its content. A read of a paste with a view limit
    takes a view (the last one deletes it) unless `consume` is false (HEAD
    never does).

    Raises PasteNotFound when there is no live paste `paste_id` (or no view is
    left), PasteRemoved when an operator removed it, and for a protected paste
    PasswordRequired without a `password`, WrongPassword with a wrong one;
    no view is taken then.
    """
    if not domain.is_possible_paste_id(paste_id):
        raise PasteNotFound()
    row = await db.one("find_paste", id=paste_id)
    if row is None:
        removed = await db.one("find_removed_paste", id=paste_id)
        if removed is not None:
            raise PasteRemoved(f"This paste was removed by the operator: {removed['reason']}")
        raise PasteNotFound()
    if row["password_hash"] is not None:
        if password is None or hasher is None:
            raise PasswordRequired()
        if not await hasher.matches(password, row["password_hash"]):
            raise WrongPassword()
    if consume and row["max_views"] is not None:
        row = await db.one("take_view", id=paste_id)
        if row is None:  # another reader took the last view
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
    rows = await db.all(
        "list_public",
        limit=limit + 1,
        after_created_at=after.created_at if after else None,
        after_id=after.id if after else None,
    )
    items = [_paste(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = Cursor(created_at=last.created_at, id=last.id)
    return Page(items=items, next_cursor=next_cursor)


async def report_paste(db: Database, paste_id: str, reason: str, detail: str | None) -> None:
    """Record an abuse report; PasteNotFound when there is no live paste."""
    if not domain.is_possible_paste_id(paste_id):
        raise PasteNotFound()
    if await db.one("insert_report", id=paste_id, reason=reason, detail=detail) is None:
        raise PasteNotFound()


def _paste(row: Row) -> Paste:
    return Paste(
        id=row["id"],
        title=row["title"],
        language=row["language"],
        visibility=row["visibility"],
        max_views=row["max_views"],
        views_left=row["views_left"],
        size=row["size"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        content=row.get("content"),
        password_hash=row["password_hash"],
    )
