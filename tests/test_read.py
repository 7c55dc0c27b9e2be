"""GET/HEAD /api/v1/pastes/{id} and /raw: fields, headers, caching, 404s, burning."""

from __future__ import annotations

import re

import pytest

from tests.conftest import assert_problem

PATH = "/api/v1/pastes"


def test_json_read_has_every_field(client, create):
    created = create("body\n", title="t", language="rust", visibility="public", expires_in=60)
    result = client.simulate_get(f"{PATH}/{created['id']}")
    assert result.status_code == 200
    body = result.json
    assert body["content"] == "body\n"
    for field in (
        "id",
        "title",
        "language",
        "visibility",
        "burn_after_read",
        "size",
        "created_at",
        "expires_at",
        "url",
        "raw_url",
    ):
        assert body[field] == created[field], field
    assert "delete_token" not in body
    assert result.headers["content-type"] == "application/json"


def test_raw_read_is_plain_text_nosniff_with_a_csp(client, create):
    created = create("<script>alert(1)</script>")
    result = client.simulate_get(f"{PATH}/{created['id']}/raw")
    assert result.status_code == 200
    assert result.headers["content-type"] == "text/plain; charset=utf-8"
    assert result.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in result.headers["content-security-policy"]
    assert result.text == "<script>alert(1)</script>"


def test_raw_etag_is_strong_and_if_none_match_gives_304(client, create):
    paste_id = create("cache me")["id"]
    first = client.simulate_get(f"{PATH}/{paste_id}/raw")
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[^"]+"', etag)  # strong: no W/ prefix
    again = client.simulate_get(f"{PATH}/{paste_id}/raw", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    listed = client.simulate_get(
        f"{PATH}/{paste_id}/raw", headers={"If-None-Match": f'"nope", {etag}'}
    )
    assert listed.status_code == 304
    other = client.simulate_get(f"{PATH}/{paste_id}/raw", headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200
    assert other.text == "cache me"


def test_different_content_has_different_etags(client, create):
    a = client.simulate_get(f"{PATH}/{create('a')['id']}/raw").headers["etag"]
    b = client.simulate_get(f"{PATH}/{create('b')['id']}/raw").headers["etag"]
    assert a != b


@pytest.mark.parametrize("suffix", ["", "/raw"])
def test_cache_control_never_outlives_the_paste(client, create, suffix):
    forever = create("x")["id"]
    soon = create("x", expires_in=90)["id"]
    later = create("x", expires_in=86400)["id"]
    burn = create("x", burn_after_read=True)["id"]
    assert client.simulate_get(f"{PATH}/{forever}{suffix}").headers["cache-control"] == (
        "public, max-age=3600"
    )
    soon_cc = client.simulate_get(f"{PATH}/{soon}{suffix}").headers["cache-control"]
    max_age = int(re.fullmatch(r"public, max-age=(\d+)", soon_cc).group(1))
    assert 85 <= max_age <= 90
    assert client.simulate_get(f"{PATH}/{later}{suffix}").headers["cache-control"] == (
        "public, max-age=3600"
    )
    assert client.simulate_get(f"{PATH}/{burn}{suffix}").headers["cache-control"] == "no-store"


@pytest.mark.parametrize("suffix", ["", "/raw"])
def test_head_returns_headers_without_body(client, create, suffix):
    paste_id = create("some content")["id"]
    get = client.simulate_get(f"{PATH}/{paste_id}{suffix}")
    head = client.simulate_head(f"{PATH}/{paste_id}{suffix}")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["cache-control"] == get.headers["cache-control"]


@pytest.mark.parametrize("suffix", ["", "/raw"])
def test_head_never_burns(client, create, suffix):
    paste_id = create("secret", burn_after_read=True)["id"]
    for _ in range(3):
        assert client.simulate_head(f"{PATH}/{paste_id}{suffix}").status_code == 200
    assert client.simulate_get(f"{PATH}/{paste_id}{suffix}").status_code == 200
    assert client.simulate_head(f"{PATH}/{paste_id}{suffix}").status_code == 404


@pytest.mark.parametrize(
    ("first", "second"), [("", "/raw"), ("/raw", ""), ("", ""), ("/raw", "/raw")]
)
def test_burn_after_read_is_returned_once_then_gone(client, create, sql, first, second):
    paste_id = create("read me once", burn_after_read=True)["id"]
    got = client.simulate_get(f"{PATH}/{paste_id}{first}")
    assert got.status_code == 200
    assert got.headers["cache-control"] == "no-store"
    assert_problem(client.simulate_get(f"{PATH}/{paste_id}{second}"), 404)
    # Deleted for real, not hidden.
    assert sql.execute("SELECT count(*) FROM pastes WHERE id = %s", [paste_id]).fetchone() == (0,)


def test_burn_after_read_ignores_if_none_match(client, create):
    paste_id = create("once", burn_after_read=True)["id"]
    etag = client.simulate_head(f"{PATH}/{paste_id}/raw").headers["etag"]
    got = client.simulate_get(f"{PATH}/{paste_id}/raw", headers={"If-None-Match": etag})
    assert got.status_code == 200
    assert got.text == "once"
    assert client.simulate_get(f"{PATH}/{paste_id}/raw").status_code == 404


@pytest.mark.parametrize("suffix", ["", "/raw"])
def test_expired_paste_is_404_before_any_purge(client, create, sql, suffix):
    paste_id = create("old", expires_in=60)["id"]
    sql.execute(
        "UPDATE pastes SET created_at = now() - interval '2 minutes', "
        "expires_at = now() - interval '1 second' WHERE id = %s",
        [paste_id],
    )
    assert_problem(client.simulate_get(f"{PATH}/{paste_id}{suffix}"), 404)
    assert client.simulate_head(f"{PATH}/{paste_id}{suffix}").status_code == 404
    # Still in the table: it is the read path that hides it.
    assert sql.execute("SELECT count(*) FROM pastes WHERE id = %s", [paste_id]).fetchone() == (1,)


def test_expired_burn_paste_is_not_served(client, create, sql):
    paste_id = create("old", expires_in=60, burn_after_read=True)["id"]
    sql.execute(
        "UPDATE pastes SET created_at = now() - interval '2 minutes', "
        "expires_at = now() - interval '1 second' WHERE id = %s",
        [paste_id],
    )
    assert_problem(client.simulate_get(f"{PATH}/{paste_id}/raw"), 404)


def test_ids_are_case_sensitive(client, create):
    paste_id = create("x")["id"]
    swapped = paste_id.swapcase()
    assert swapped != paste_id
    assert_problem(client.simulate_get(f"{PATH}/{swapped}"), 404)


@pytest.mark.parametrize(
    "bad_id",
    [
        "doesnotexist",
        "a",
        "x" * 4000,
        "%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9",
        "..%2F..%2Fetc%2Fpasswd",
        "..",
        "1'%20OR%20'1'='1",
        "abc%00def",
        "%F0%9F%8E%89",
        "%ff%fe",
    ],
)
@pytest.mark.parametrize("suffix", ["", "/raw"])
def test_hostile_ids_are_plain_404s(client, bad_id, suffix):
    assert_problem(client.simulate_get(f"{PATH}/{bad_id}{suffix}"), 404)


def test_deleted_paste_is_404(client, create):
    created = create("x")
    client.simulate_delete(
        f"{PATH}/{created['id']}", headers={"Authorization": f"Bearer {created['delete_token']}"}
    )
    assert_problem(client.simulate_get(f"{PATH}/{created['id']}"), 404)
    assert_problem(client.simulate_get(f"{PATH}/{created['id']}/raw"), 404)


def test_a_request_target_over_the_limit_is_414(client):
    assert_problem(client.simulate_get(f"{PATH}/{'x' * 5000}"), 414)
