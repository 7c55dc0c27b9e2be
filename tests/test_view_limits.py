"""View limits: exactly max_views reads get the content, however many race."""

from __future__ import annotations

import pytest

from tests.conftest import assert_problem, concurrently

PATH = "/api/v1/pastes"


def test_create_reply_shows_the_limit(create):
    created = create("x", max_views=3)
    assert (created["max_views"], created["views_left"]) == (3, 3)
    assert created["burn_after_read"] is False
    assert create("x", max_views=1)["burn_after_read"] is True
    burn = create("x", burn_after_read=True)
    assert (burn["max_views"], burn["views_left"], burn["burn_after_read"]) == (1, 1, True)
    plain = create("x")
    assert (plain["max_views"], plain["views_left"]) == (None, None)


def test_each_read_takes_a_view_and_the_last_deletes(client, create, sql):
    paste_id = create("three times", max_views=3)["id"]
    first = client.simulate_get(f"{PATH}/{paste_id}")
    assert (first.json["views_left"], first.json["content"]) == (2, "three times")
    assert first.headers["cache-control"] == "no-store"
    raw = client.simulate_get(f"{PATH}/{paste_id}/raw")
    assert (raw.status_code, raw.text) == (200, "three times")
    assert raw.headers["cache-control"] == "no-store"
    last = client.simulate_get(f"{PATH}/{paste_id}")
    assert last.json["views_left"] == 0
    assert sql.execute("SELECT count(*) FROM pastes WHERE id = %s", [paste_id]).fetchone()[0] == 0
    assert_problem(client.simulate_get(f"{PATH}/{paste_id}/raw"), 404)


def test_head_takes_no_view(client, create):
    paste_id = create("x", max_views=1)["id"]
    for suffix in ("", "/raw", "", "/raw"):
        head = client.simulate_head(f"{PATH}/{paste_id}{suffix}")
        assert head.status_code == 200
        assert head.headers["cache-control"] == "no-store"
    assert client.simulate_get(f"{PATH}/{paste_id}/raw").status_code == 200
    assert client.simulate_head(f"{PATH}/{paste_id}").status_code == 404


def test_a_limited_paste_ignores_if_none_match(client, create):
    paste_id = create("x", max_views=2)["id"]
    etag = client.simulate_head(f"{PATH}/{paste_id}/raw").headers["etag"]
    result = client.simulate_get(f"{PATH}/{paste_id}/raw", headers={"If-None-Match": etag})
    assert (result.status_code, result.text) == (200, "x")
    assert client.simulate_get(f"{PATH}/{paste_id}").json["views_left"] == 0


@pytest.mark.parametrize("max_views", [1, 2, 7])
def test_exactly_max_views_of_many_concurrent_readers_get_it(client, create, max_views):
    for suffix in ("", "/raw", ""):
        paste_id = create("limited", max_views=max_views)["id"]
        results = concurrently(client, "GET", f"{PATH}/{paste_id}{suffix}", 50)
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200] * max_views + [404] * (50 - max_views)
        if suffix == "":
            left = sorted(r.json["views_left"] for r in results if r.status_code == 200)
            assert left == list(range(max_views))


def test_limited_pastes_are_not_listed(client, create):
    create("a", visibility="public", max_views=5)
    create("b", visibility="public", password="pw")
    shown = create("c", visibility="public")["id"]
    items = client.simulate_get(PATH).json["items"]
    assert [item["id"] for item in items] == [shown]


@pytest.mark.parametrize(
    ("fields", "query"),
    [
        ({"max_views": 0}, ""),
        ({"max_views": 1_000_001}, ""),
        ({"max_views": "2"}, ""),
        ({"burn_after_read": True, "max_views": 3}, ""),
        ({}, "?max_views=0"),
        ({}, "?max_views=two"),
        ({"burn_after_read": True}, "?max_views=2"),
    ],
)
def test_bad_view_limits_are_422(client, fields, query):
    result = client.simulate_post(f"{PATH}{query}", json={"content": "x", **fields})
    assert_problem(result, 422)
