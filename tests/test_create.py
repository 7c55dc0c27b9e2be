"""POST /api/v1/pastes: JSON and plain-text bodies, replies, and every refusal."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta

import pytest

from service import bodies, problems
from service.errors import BodyTimeout, ContentTooLarge, MalformedRequest
from tests.conftest import assert_problem, run

PATH = "/api/v1/pastes"
ID = re.compile(r"[A-Za-z0-9]{11,}")


def post_json(client, body: bytes | str, content_type: str = "application/json", **kwargs):
    return client.simulate_post(PATH, body=body, headers={"Content-Type": content_type}, **kwargs)


def test_json_create_returns_metadata_links_and_token(client, sql):
    result = client.simulate_post(
        PATH,
        json={
            "content": "print('hi')\n",
            "title": "greeting",
            "language": "python",
            "visibility": "public",
            "expires_in": 600,
        },
    )
    assert result.status_code == 201
    body = result.json
    assert ID.fullmatch(body["id"])
    assert "content" not in body
    assert body["title"] == "greeting"
    assert body["language"] == "python"
    assert body["visibility"] == "public"
    assert body["burn_after_read"] is False
    assert body["size"] == len(b"print('hi')\n")
    assert body["url"] == f"http://falconframework.org/api/v1/pastes/{body['id']}"
    assert body["raw_url"] == body["url"] + "/raw"
    assert result.headers["location"] == body["url"]
    created = datetime.fromisoformat(body["created_at"])
    expires = datetime.fromisoformat(body["expires_at"])
    assert body["created_at"].endswith("Z")
    assert expires - created == timedelta(seconds=600)
    assert len(body["delete_token"]) >= 22  # at least 128 bits in base64url
    # Only a hash of the token is stored.
    (stored,) = sql.execute(
        "SELECT delete_token_hash FROM pastes WHERE id = %s", [body["id"]]
    ).fetchone()
    assert body["delete_token"].encode() not in bytes(stored)


def test_defaults(create):
    body = create("x")
    assert body["visibility"] == "unlisted"
    assert body["burn_after_read"] is False
    assert body["expires_at"] is None
    assert body["title"] is None
    assert body["language"] is None


def test_nulls_mean_defaults(create):
    body = create(
        "x", title=None, language=None, visibility=None, burn_after_read=None, expires_in=None
    )
    assert (body["visibility"], body["burn_after_read"], body["expires_at"]) == (
        "unlisted",
        False,
        None,
    )


@pytest.mark.parametrize(
    "content",
    [
        "line one\r\nline two\r\n",
        "trailing spaces   \n\n\n",
        "\tindented\ttabs",
        "emoji 🎉👩‍👩‍👧 and RTL: שלום עולם مرحبا",
        "\ufeffbyte order mark",
        "no newline at end",
        " ",
        "\u2028\u2029\x7f\x01",
    ],
)
def test_content_round_trips_byte_for_byte(client, create, content):
    paste = create(content)
    raw = client.simulate_get(f"{PATH}/{paste['id']}/raw")
    assert raw.content == content.encode("utf-8")
    assert client.simulate_get(f"{PATH}/{paste['id']}").json["content"] == content
    assert paste["size"] == len(content.encode("utf-8"))


def test_plain_text_create_takes_fields_from_the_query(client):
    content = "SELECT 1;\r\n-- trailing  \n"
    result = client.simulate_post(
        PATH,
        body=content.encode(),
        headers={"Content-Type": "text/plain"},
        params={
            "expires_in": "3600",
            "language": "sql",
            "title": "q",
            "visibility": "public",
            "burn_after_read": "true",
        },
    )
    assert result.status_code == 201, result.text
    body = result.json
    assert (body["language"], body["title"], body["visibility"]) == ("sql", "q", "public")
    assert body["burn_after_read"] is True
    assert datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(
        body["created_at"]
    ) == timedelta(seconds=3600)
    raw = client.simulate_get(f"{PATH}/{body['id']}/raw")
    assert raw.content == content.encode()


def test_accept_text_plain_replies_with_the_raw_url_and_token_header(client):
    result = client.simulate_post(
        PATH,
        body=b"for shell users\n",
        headers={"Content-Type": "text/plain", "Accept": "text/plain"},
    )
    assert result.status_code == 201
    assert result.headers["content-type"].startswith("text/plain")
    url = result.text
    assert url.endswith("/raw\n")
    assert url.strip() == result.headers["location"] + "/raw"
    token = result.headers["x-delete-token"]
    assert len(token) >= 22
    paste_path = url.strip().removeprefix("http://falconframework.org")
    assert client.simulate_get(paste_path).text == "for shell users\n"
    deleted = client.simulate_delete(
        paste_path.removesuffix("/raw"), headers={"Authorization": f"Bearer {token}"}
    )
    assert deleted.status_code == 204


def test_json_reply_has_no_token_header(client):
    result = client.simulate_post(PATH, json={"content": "x"})
    assert "x-delete-token" not in result.headers


def test_public_base_url_with_path_prefix_builds_links(make_client):
    client = make_client(public_base_url="https://paste.example.org/p")
    body = client.simulate_post(PATH, json={"content": "x"}).json
    assert body["url"] == f"https://paste.example.org/p/api/v1/pastes/{body['id']}"
    assert body["raw_url"] == body["url"] + "/raw"


def test_links_follow_the_request_host(client):
    result = client.simulate_post(PATH, json={"content": "x"}, host="pastes.test")
    assert result.json["url"].startswith("http://pastes.test/api/v1/pastes/")


def test_ids_are_unique(create):
    assert len({create("x")["id"] for _ in range(50)}) == 50


# --- refusals ---------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/html",
        "application/x-www-form-urlencoded",
        "text/plain; charset=iso-8859-1",
        "application/json; charset=utf-16",
    ],
)
def test_unsupported_media_types_are_415(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    result = client.simulate_post(PATH, body=b'{"content": "x"}', headers=headers)
    assert_problem(result, 415)


@pytest.mark.parametrize(
    "content_type", ["APPLICATION/JSON", "application/json; charset=UTF-8", "Application/Json"]
)
def test_media_types_compare_case_insensitively(client, content_type):
    assert post_json(client, '{"content": "x"}', content_type).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"content": "x",}',
        b'{"content": NaN}',
        b'{"content": "x", "expires_in": Infinity}',
        b'{"content": "x", "expires_in": -Infinity}',
        b'{"content": "\xff\xfe"}',
        b"",
        b"'single quotes'",
        b'{"content": "\\ud800"}',
    ],
)
def test_unparseable_json_is_400(client, body):
    assert_problem(post_json(client, body), 400)


def test_plain_text_that_is_not_utf8_is_400(client):
    result = post_json(client, b"caf\xe9", "text/plain")
    assert_problem(result, 400)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[]", None),
        (b'"just a string"', None),
        (b"42", None),
        (b"null", None),
        (b"{}", "content"),
        (b'{"content": ""}', "content"),
        (b'{"content": "a\\u0000b"}', "content"),
        (b'{"content": 123}', "content"),
        (b'{"content": "x", "bogus": 1}', "bogus"),
        (b'{"content": "x", "expires_in": true}', "expires_in"),
        (b'{"content": "x", "expires_in": 3600.0}', "expires_in"),
        (b'{"content": "x", "expires_in": 1e400}', None),
        (b'{"content": "x", "expires_in": 0}', "expires_in"),
        (b'{"content": "x", "expires_in": 31536001}', "expires_in"),
        (b'{"content": "x", "expires_in": 99999999999999999999999}', "expires_in"),
        (b'{"content": "x", "title": ""}', "title"),
        (b'{"content": "x", "title": "a\\u0000"}', "title"),
        (b'{"content": "x", "language": ""}', "language"),
        (b'{"content": "x", "language": "<script>"}', "language"),
        (b'{"content": "x", "visibility": "secret"}', "visibility"),
        (b'{"content": "x", "burn_after_read": "yes"}', "burn_after_read"),
    ],
)
def test_rule_breaking_json_is_422(client, body, field):
    result = post_json(client, body)
    if field is None and result.status_code == 400:
        # 1e400 overflows a double: a parse failure is an acceptable reading too.
        assert_problem(result, 400)
        return
    document = assert_problem(result, 422)
    if field:
        assert document["field"] == field


def test_title_of_200_code_points_is_accepted_and_201_refused(client):
    assert post_json(client, '{"content": "x", "title": "%s"}' % ("é" * 200)).status_code == 201
    assert_problem(post_json(client, '{"content": "x", "title": "%s"}' % ("é" * 201)), 422)


@pytest.mark.parametrize(
    "query",
    [
        "expires_in=abc",
        "expires_in=",
        "expires_in=3600.0",
        "expires_in=0",
        "burn_after_read=maybe",
        "language=",
        "visibility=everyone",
        "unknown=1",
        "expires_in=1&expires_in=2",
    ],
)
def test_bad_query_values_on_plain_text_create_are_422(client, query):
    result = client.simulate_post(
        PATH, body=b"x", headers={"Content-Type": "text/plain"}, query_string=query
    )
    assert_problem(result, 422)


def test_query_fields_combine_with_a_json_body_but_never_twice(client):
    result = client.simulate_post(
        PATH, json={"content": "x", "title": "t"}, query_string="expires_in=60&language=c"
    )
    assert result.status_code == 201
    assert (result.json["title"], result.json["language"]) == ("t", "c")
    assert result.json["expires_at"] is not None
    twice = client.simulate_post(
        PATH, json={"content": "x", "expires_in": 60}, query_string="expires_in=60"
    )
    assert assert_problem(twice, 422)["field"] == "expires_in"
    unknown = client.simulate_post(PATH, json={"content": "x"}, query_string="foo=1")
    assert_problem(unknown, 422)


def test_query_string_that_is_not_utf8_is_400(client):
    result = client.simulate_post(
        PATH, body=b"x", headers={"Content-Type": "text/plain"}, query_string="title=%ff"
    )
    assert_problem(result, 400)


def test_empty_plain_text_body_is_422(client):
    assert_problem(post_json(client, b"", "text/plain"), 422)


def test_nul_in_plain_text_is_422(client):
    assert_problem(post_json(client, b"a\x00b", "text/plain"), 422)


def test_content_limits(make_client):
    client = make_client(paste_max_bytes=10)
    assert post_json(client, b"0123456789", "text/plain").status_code == 201
    assert_problem(post_json(client, b"0123456789A", "text/plain"), 413)
    # Multi-byte characters count in bytes: 4 x 3 bytes = 12.
    assert_problem(post_json(client, "€€€€".encode(), "text/plain"), 413)
    assert_problem(client.simulate_post(PATH, json={"content": "€€€€"}), 413)
    assert client.simulate_post(PATH, json={"content": "€€€"}).status_code == 201


def test_json_body_limit_leaves_room_for_escaped_content(make_client):
    client = make_client(paste_max_bytes=10)
    # Ten NULs would be 422, but ten escaped control characters fit: 6 x 10 bytes.
    escaped = '{"content": "%s"}' % ("\\u0001" * 10)
    assert post_json(client, escaped).status_code == 201


def test_oversized_json_body_is_413_from_content_length(make_client):
    client = make_client(paste_max_bytes=10)
    limit = 6 * 10 + 64 * 1024
    body = b'{"content": "' + b" " * limit + b'"}'
    assert_problem(post_json(client, body), 413)


class _ExplodingStream:
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read
    readlines = read

    def __iter__(self):
        raise AssertionError("the body was read")


def test_declared_oversize_is_refused_without_reading_the_body(make_client):
    client = make_client(paste_max_bytes=10)
    result = client.simulate_post(
        PATH,
        headers={"Content-Type": "text/plain", "Content-Length": "11"},
        extras={"wsgi.input": _ExplodingStream()},
    )
    assert_problem(result, 413)


class _Upload:
    """A request whose body arrives in 16 KiB chunks, as uvicorn hands them
    over, counting what was taken; `declared` is its Content-Length."""

    def __init__(self, total: int, declared: int | None = None, delay: float = 0.0) -> None:
        self.left = total
        self.delivered = 0
        self.content_length = declared
        self.delay = delay

    @property
    def stream(self):
        return self._chunks()

    async def _chunks(self):
        while self.left:
            await asyncio.sleep(self.delay)
            size = min(16384, self.left)
            self.left -= size
            self.delivered += size
            yield b"a" * size


def test_chunked_body_is_cut_off_at_the_limit_not_buffered_whole():
    upload = _Upload(50 * 1024 * 1024)
    with pytest.raises(ContentTooLarge):
        run(bodies.read_limited, upload, 1000, 10.0)
    assert upload.delivered < 1000 + 128 * 1024


def test_a_body_within_the_limit_is_read_whole():
    assert run(bodies.read_limited, _Upload(40000, declared=40000), 40000, 10.0) == b"a" * 40000


def test_truncated_upload_is_400():
    with pytest.raises(MalformedRequest):
        run(bodies.read_limited, _Upload(5, declared=50), 1000, 10.0)


def test_a_body_that_does_not_arrive_in_time_is_408():
    with pytest.raises(BodyTimeout):
        run(bodies.read_limited, _Upload(10**6, delay=0.05), 10**7, 0.3)
    assert problems.status_of(BodyTimeout()) == 408


def test_precedence_holds_between_body_and_query(make_client):
    client = make_client(paste_max_bytes=10)
    # Oversized content (413) outranks a query string that is not UTF-8 (400)...
    big = client.simulate_post(PATH, json={"content": "x" * 11}, query_string="title=%ff")
    assert_problem(big, 413)
    # ...which outranks a body that is not a JSON object (422).
    assert_problem(post_json(client, b"[]", query_string="title=%ff"), 400)


def test_415_beats_413_beats_400_beats_422(make_client):
    client = make_client(paste_max_bytes=10)
    big_bad_json = b"{" * 100
    assert_problem(post_json(client, big_bad_json, "text/html"), 415)
    assert_problem(post_json(client, b"\xff" * 11, "text/plain"), 413)
    assert_problem(post_json(client, b'{"content": "x", "extra": 1', "application/json"), 400)
    assert_problem(post_json(client, b'{"content": "x", "extra": 1}', "application/json"), 422)
    assert_problem(
        post_json(client, b'{"content": "01234567890", "extra": 1}', "application/json"), 413
    )
