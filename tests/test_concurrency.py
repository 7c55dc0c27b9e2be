"""Burn-after-read under concurrent requests in process (many requests
interleaved on the app's event loop, sharing its pool). The same is checked
over HTTP in test_e2e.py."""

from __future__ import annotations

from tests.conftest import concurrently


def test_exactly_one_of_many_concurrent_readers_gets_a_burn_paste(client, create):
    for suffix in ("", "/raw", "", "/raw", ""):
        paste_id = create("only once", burn_after_read=True)["id"]
        results = concurrently(client, "GET", f"/api/v1/pastes/{paste_id}{suffix}", 8)
        assert sorted(r.status_code for r in results) == [200] + [404] * 7


def test_concurrent_readers_of_a_normal_paste_all_get_it(client, create):
    paste_id = create("for everyone")["id"]
    results = concurrently(client, "GET", f"/api/v1/pastes/{paste_id}/raw", 8)
    assert [r.status_code for r in results] == [200] * 8
    assert {r.text for r in results} == {"for everyone"}
