"""GET /api/v1/pastes: public, live pastes, newest first, keyset cursors."""

from __future__ import annotations

import pytest

from tests.conftest import assert_problem

PATH = "/api/v1/pastes"


def page(client, **params):
    result = client.simulate_get(PATH, params={k: str(v) for k, v in params.items()})
    assert result.status_code == 200, result.text
    return result.json


def test_lists_only_live_public_pastes_newest_first_without_content(client, create, sql):
    public = [create(f"p{i}", visibility="public")["id"] for i in range(3)]
    create("u", visibility="unlisted")
    create("b", visibility="public", burn_after_read=True)
    expired = create("e", visibility="public", expires_in=60)["id"]
    sql.execute(
        "UPDATE pastes SET created_at = now() - interval '2 minutes', "
        "expires_at = now() - interval '1 second' WHERE id = %s",
        [expired],
    )
    body = page(client)
    assert [item["id"] for item in body["items"]] == list(reversed(public))
    assert body["next_cursor"] is None
    for item in body["items"]:
        assert "content" not in item
        assert "delete_token" not in item
        assert item["raw_url"] == item["url"] + "/raw"


def test_empty_listing(client):
    assert page(client) == {"items": [], "next_cursor": None}


def test_default_limit_is_20(client, create):
    for i in range(25):
        create(f"p{i}", visibility="public")
    body = page(client)
    assert len(body["items"]) == 20
    assert body["next_cursor"]


def test_cursors_walk_every_page_once_in_order(client, sql):
    # 230 public pastes, several sharing a created_at, so ties are broken by id.
    sql.execute(
        """
        INSERT INTO pastes (id, content, visibility, size, created_at, delete_token_hash)
        SELECT 'id' || lpad(n::text, 10, '0'), 'x', 'public', 1,
               timestamptz '2026-01-01' + (n / 3) * interval '1 second', '\\x00'
          FROM generate_series(1, 230) AS n
        """
    )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        body = page(client, **params)
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(body["items"]) == 7
    expected = sql.execute("SELECT id FROM pastes ORDER BY created_at DESC, id DESC").fetchall()
    assert seen == [row[0] for row in expected]
    assert pages == 33


def test_new_pastes_do_not_shift_later_pages(client, create):
    ids = [create(f"p{i}", visibility="public")["id"] for i in range(6)]
    first = page(client, limit=3)
    create("newer", visibility="public")
    second = page(client, limit=3, cursor=first["next_cursor"])
    assert [item["id"] for item in second["items"]] == list(reversed(ids[:3]))


def test_limit_bounds(client, create):
    for i in range(3):
        create(f"p{i}", visibility="public")
    assert len(page(client, limit=1)["items"]) == 1
    assert len(page(client, limit=100)["items"]) == 3


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", "", "1e2"])
def test_bad_limits_are_422(client, limit):
    assert_problem(client.simulate_get(PATH, query_string=f"limit={limit}"), 422)


def test_empty_cursor_is_422(client):
    assert_problem(client.simulate_get(PATH, query_string="cursor="), 422)


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "%C3%A9", "!!", "x" * 500, "%00"],
)
def test_undecodable_cursor_is_400(client, cursor):
    assert_problem(client.simulate_get(PATH, query_string=f"cursor={cursor}"), 400)


def test_undecodable_cursor_outranks_a_bad_limit(client):
    assert_problem(client.simulate_get(PATH, query_string="limit=0&cursor=zzz"), 400)
    assert_problem(client.simulate_get(PATH, query_string="limit=0&cursor="), 422)


def test_tampered_cursor_is_400(client, create):
    for i in range(3):
        create(f"p{i}", visibility="public")
    cursor = page(client, limit=1)["next_cursor"]
    tampered = ("B" if cursor[0] == "A" else "A") + cursor[1:]
    assert_problem(client.simulate_get(PATH, params={"cursor": tampered}), 400)


def test_listing_query_uses_the_index_not_offset(sql):
    sql.execute(
        """
        INSERT INTO pastes (id, content, visibility, size, created_at, delete_token_hash)
        SELECT 'id' || lpad(n::text, 10, '0'), 'x',
               CASE WHEN n % 2 = 0 THEN 'public' ELSE 'unlisted' END, 1,
               timestamptz '2026-01-01' + n * interval '1 second', '\\x00'
          FROM generate_series(1, 20000) AS n
        """
    )
    sql.execute("ANALYZE pastes")
    from service.queries import load_queries

    query = load_queries()["list_public"].sql
    for after in (
        {"after_created_at": "2026-01-01T02:00:00Z", "after_id": "id0000007200"},
        {"after_created_at": None, "after_id": None},  # the first page
    ):
        plan = sql.execute("EXPLAIN " + query, {"limit": 21, **after}).fetchall()
        text = "\n".join(row[0] for row in plan)
        assert "Index Cond" in text
        assert "pastes_public_listing_idx" in text
        assert "Sort" not in text
    assert "OFFSET" not in query.upper()
