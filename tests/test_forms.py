"""Creates from multipart/form-data bodies (curl -F) and expires_in units."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import assert_problem
from tests.forms import multipart

PATH = "/api/v1/pastes"


def post_form(client, *parts, query: str = "", **kwargs):
    body, content_type = multipart(*parts)
    headers = {"Content-Type": content_type, **kwargs.pop("headers", {})}
    return client.simulate_post(f"{PATH}{query}", body=body, headers=headers, **kwargs)


def expires_in_seconds(document: dict) -> float:
    expires = datetime.fromisoformat(document["expires_at"].replace("Z", "+00:00"))
    return (expires - datetime.now(UTC)).total_seconds()


def test_a_file_part_with_other_fields_as_parts(client):
    content = "print('hi')\r\n\ttabs and ünïcode 🎉\n"
    result = post_form(
        client,
        ("content", content.encode(), "hello.py"),
        ("language", "python", None),
        ("expires_in", "1h", None),
        ("max_views", "3", None),
    )
    assert result.status_code == 201, result.text
    created = result.json
    assert (created["language"], created["max_views"]) == ("python", 3)
    assert 3590 < expires_in_seconds(created) <= 3600
    raw = client.simulate_get(f"{PATH}/{created['id']}/raw")
    assert raw.content == content.encode()


def test_a_plain_content_part_and_fields_from_the_query(client):
    result = post_form(
        client, ("content", "from stdin", None), query="?visibility=public&expires_in=2w"
    )
    assert result.status_code == 201, result.text
    assert result.json["visibility"] == "public"
    assert 14 * 86400 - 10 < expires_in_seconds(result.json) <= 14 * 86400


def test_plain_text_reply_for_shell_users(client):
    result = post_form(client, ("content", "x", None), headers={"Accept": "text/plain"})
    assert result.status_code == 201
    assert result.text.endswith("/raw\n")
    assert result.headers["x-delete-token"]


@pytest.mark.parametrize(
    ("parts", "query", "field"),
    [
        ((("content", "x", None), ("content", "y", None)), "", "content"),
        ((("content", "x", None), ("title", "a", None), ("title", "b", None)), "", "title"),
        ((("content", "x", None), ("title", "", None)), "", "title"),
        ((("content", "", "empty.txt"),), "", "content"),
        ((("content", "x", None), ("colour", "red", None)), "", "colour"),
        ((("content", "x", None), ("title", "t", None)), "?title=u", "title"),
        ((("title", "no content", None),), "", "content"),
        ((("content", "x", None), ("expires_in", "1.5h", None)), "", "expires_in"),
        ((("content", "x", None), ("expires_in", "1y", None)), "", "expires_in"),
        ((("content", "x", None), ("expires_in", "1H", None)), "", "expires_in"),
        ((("content", "x", None), ("burn_after_read", "maybe", None)), "", "burn_after_read"),
        ((("content", "a\x00b", None),), "", "content"),
    ],
)
def test_form_rule_breaks_are_422(client, parts, query, field):
    document = assert_problem(post_form(client, *parts, query=query), 422)
    assert document["field"] == field


def test_content_over_the_limit_is_413_even_when_other_parts_are_bad(make_client):
    small = make_client(paste_max_bytes=10)
    result = post_form(small, ("content", "x" * 11, "big.txt"), ("colour", b"\xff", None))
    assert_problem(result, 413)


def test_a_body_over_the_form_limit_is_413(make_client):
    small = make_client(paste_max_bytes=10)
    parts = [("content", "x", None)] + [(f"p{i}", "y" * 1024, None) for i in range(70)]
    assert_problem(post_form(small, *parts), 413)


@pytest.mark.parametrize(
    "body",
    [
        b"not a multipart body at all",
        b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n",  # no name
    ],
)
def test_malformed_forms_are_400(client, body):
    result = client.simulate_post(
        PATH, body=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert_problem(result, 400)


def test_a_part_that_is_not_utf8_is_400(client):
    assert_problem(post_form(client, ("content", b"\xff\xfe", "bin")), 400)


@pytest.mark.parametrize(
    ("query", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43_200), ("7d", 604_800), ("2w", 1_209_600)],
)
def test_expires_in_units_in_the_query(client, query, seconds):
    result = client.simulate_post(
        f"{PATH}?expires_in={query}", body=b"x", headers={"Content-Type": "text/plain"}
    )
    assert result.status_code == 201, result.text
    assert seconds - 10 < expires_in_seconds(result.json) <= seconds


@pytest.mark.parametrize("value", ["15m", "90", 90.0, True])
def test_json_takes_whole_seconds_only(client, value):
    result = client.simulate_post(PATH, json={"content": "x", "expires_in": value})
    assert assert_problem(result, 422)["field"] == "expires_in"


def test_a_unit_past_the_maximum_is_422(make_client):
    short = make_client(paste_max_ttl=3600)
    result = short.simulate_post(
        f"{PATH}?expires_in=2h", body=b"x", headers={"Content-Type": "text/plain"}
    )
    assert assert_problem(result, 422)["field"] == "expires_in"
