"""Unit tests of the pure rules: no database, no HTTP."""

from __future__ import annotations

import contextlib
import math
import re
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service import cursors, domain, httpheaders, views
from service.cursors import Cursor
from service.errors import ContentTooLarge, InvalidInput, MalformedCursor

MAX = 1024
TTL = 3600
KEY = b"k" * 32


def validate(**fields):
    return domain.validate_new_paste(fields, max_bytes=MAX, max_ttl=TTL)


# --- ids and tokens ---------------------------------------------------------


def test_paste_ids_use_the_alphabet_and_carry_at_least_64_bits():
    ids = {domain.new_paste_id() for _ in range(2000)}
    assert len(ids) == 2000
    for paste_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9]{11,}", paste_id)
        assert len(paste_id) * math.log2(len(domain.ID_ALPHABET)) >= 64


def test_paste_id_characters_are_spread_over_the_whole_alphabet():
    counts = Counter("".join(domain.new_paste_id() for _ in range(3000)))
    assert set(counts) == set(domain.ID_ALPHABET)
    expected = 3000 * domain.ID_LENGTH / 62
    assert all(0.7 * expected < n < 1.3 * expected for n in counts.values())


@pytest.mark.parametrize(
    "candidate",
    ["", "short", "../../etc/passwd", "abc' OR '1'='1", "ÀÁÂÃÄÅÆÇÈÉÊ", "a" * 65, "abcdefghij k"],
)
def test_impossible_ids_are_recognised(candidate):
    assert not domain.is_possible_paste_id(candidate)


def test_delete_tokens_are_long_and_only_their_hash_matches():
    token = domain.new_delete_token()
    assert len(token) >= 43  # 32 bytes in base64url: 256 bits
    stored = domain.hash_delete_token(token)
    assert stored != token.encode()
    assert domain.delete_token_matches(token, stored)
    assert not domain.delete_token_matches(token + "x", stored)
    assert not domain.delete_token_matches(domain.new_delete_token(), stored)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic abc", None),
        ("abc", None),
    ],
)
def test_bearer_token_parsing(header, token):
    assert httpheaders.bearer_token(header) == token


# --- validation -------------------------------------------------------------


def test_defaults_fill_absent_and_null_fields():
    for new in (
        validate(content="x"),
        validate(
            content="x",
            title=None,
            language=None,
            visibility=None,
            burn_after_read=None,
            expires_in=None,
        ),
    ):
        assert new == domain.NewPaste(content="x")


def test_full_valid_paste():
    new = validate(
        content="héllo\r\n",
        title="t" * 200,
        language="c++",
        visibility="public",
        burn_after_read=True,
        expires_in=TTL,
    )
    assert new.size == len("héllo\r\n".encode())
    assert (new.title, new.language, new.visibility) == ("t" * 200, "c++", "public")
    assert new.max_views == 1
    assert new.expires_in == TTL


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "content"),
        ({"content": None}, "content"),
        ({"content": ""}, "content"),
        ({"content": 5}, "content"),
        ({"content": ["x"]}, "content"),
        ({"content": "a\x00b"}, "content"),
        ({"content": "x", "extra": 1}, "extra"),
        ({"content": "x", "title": ""}, "title"),
        ({"content": "x", "title": "t" * 201}, "title"),
        ({"content": "x", "title": 3}, "title"),
        ({"content": "x", "title": "a\x00"}, "title"),
        ({"content": "x", "language": ""}, "language"),
        ({"content": "x", "language": "l" * 51}, "language"),
        ({"content": "x", "language": "py thon"}, "language"),
        ({"content": "x", "language": "py\x00"}, "language"),
        ({"content": "x", "visibility": "private"}, "visibility"),
        ({"content": "x", "visibility": True}, "visibility"),
        ({"content": "x", "burn_after_read": "true"}, "burn_after_read"),
        ({"content": "x", "burn_after_read": 1}, "burn_after_read"),
        ({"content": "x", "expires_in": True}, "expires_in"),
        ({"content": "x", "expires_in": 3600.0}, "expires_in"),
        ({"content": "x", "expires_in": "60"}, "expires_in"),
        ({"content": "x", "expires_in": 0}, "expires_in"),
        ({"content": "x", "expires_in": -5}, "expires_in"),
        ({"content": "x", "expires_in": TTL + 1}, "expires_in"),
    ],
)
def test_invalid_fields_are_refused_naming_the_field(fields, field):
    with pytest.raises(InvalidInput) as caught:
        domain.validate_new_paste(fields, max_bytes=MAX, max_ttl=TTL)
    assert caught.value.field == field


def test_title_is_counted_in_code_points_not_bytes():
    assert validate(content="x", title="é" * 200).title == "é" * 200


def test_content_limit_is_counted_in_utf8_bytes():
    assert validate(content="a" * MAX).size == MAX
    with pytest.raises(ContentTooLarge):
        validate(content="é" * (MAX // 2 + 1))


def test_oversized_content_wins_over_other_rule_breaks():
    with pytest.raises(ContentTooLarge):
        validate(content="a" * (MAX + 1), unknown=True, expires_in="soon")


@pytest.mark.parametrize(
    ("params", "typed"),
    [
        ({"expires_in": "3600"}, {"expires_in": 3600}),
        ({"expires_in": "90"}, {"expires_in": 90}),
        ({"expires_in": "90s"}, {"expires_in": 90}),
        ({"expires_in": "15m"}, {"expires_in": 900}),
        ({"expires_in": "12h"}, {"expires_in": 43_200}),
        ({"expires_in": "7d"}, {"expires_in": 604_800}),
        ({"expires_in": "2w"}, {"expires_in": 1_209_600}),
        ({"max_views": "7"}, {"max_views": 7}),
        ({"burn_after_read": "true"}, {"burn_after_read": True}),
        ({"burn_after_read": "FALSE"}, {"burn_after_read": False}),
        ({"language": "python", "title": "x"}, {"language": "python", "title": "x"}),
    ],
)
def test_query_fields_are_typed(params, typed):
    assert domain.fields_from_text(params) == typed


@pytest.mark.parametrize(
    "params",
    [
        {"expires_in": "abc"},
        {"expires_in": "3600.0"},
        {"expires_in": "-1"},
        {"expires_in": ""},
        {"burn_after_read": "maybe"},
        {"language": ""},
        {"title": ["a", "b"]},
        {"expires_in": "1.5h"},
        {"expires_in": "1y"},
        {"expires_in": "1H"},
        {"expires_in": "h"},
        {"max_views": "two"},
    ],
)
def test_bad_query_values_are_refused(params):
    with pytest.raises(InvalidInput):
        domain.fields_from_text(params)


@pytest.mark.parametrize(("raw", "limit"), [(None, 20), ("1", 1), ("100", 100), ("007", 7)])
def test_limit_parsing(raw, limit):
    assert domain.parse_limit(raw) == limit


@pytest.mark.parametrize("raw", ["0", "101", "", "abc", "-1", "1.5", ["1", "2"]])
def test_bad_limits_are_refused(raw):
    with pytest.raises(InvalidInput):
        domain.parse_limit(raw)


# --- media types ------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("application/json", "json"),
        ("Application/JSON; charset=UTF-8", "json"),
        ("text/plain", "text"),
        ("TEXT/PLAIN;charset=utf8", "text"),
        ('text/plain; charset="utf-8"', "text"),
        (None, None),
        ("", None),
        ("text/html", None),
        ("application/x-www-form-urlencoded", None),
        ("text/plain; charset=latin-1", None),
        ("application/json; charset=utf-16", None),
        ("application/jsonx", None),
    ],
)
def test_create_body_kinds(content_type, kind):
    assert httpheaders.create_body_kind(content_type) == kind


# --- expiry, lifecycle, caching ---------------------------------------------

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expires_in", "max_age"),
    [(None, 3600), (10, 10), (3599, 3599), (3600, 3600), (86400, 3600), (0, 0), (-5, 0)],
)
def test_cache_max_age_never_outlives_the_paste_or_an_hour(expires_in, max_age):
    expires_at = None if expires_in is None else NOW + timedelta(seconds=expires_in)
    assert httpheaders.cache_max_age(expires_at, NOW) == max_age


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC), "2026-05-06T07:08:09.123456Z"),
        (datetime(2026, 5, 6, 7, 8, 9, 120, tzinfo=UTC), "2026-05-06T07:08:09.000120Z"),
        # A zero fraction is written all the same: every timestamp has six digits.
        (datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC), "2026-05-06T07:08:09.000000Z"),
        # Other zones are converted to UTC.
        (
            datetime(2026, 5, 6, 9, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2))),
            "2026-05-06T07:08:09.123456Z",
        ),
        (
            datetime(2026, 5, 6, 7, 8, 9, 5, tzinfo=ZoneInfo("America/New_York")),
            "2026-05-06T11:08:09.000005Z",
        ),
        (
            datetime(2026, 5, 6, 7, 8, 9, 1, tzinfo=ZoneInfo("Etc/UTC")),
            "2026-05-06T07:08:09.000001Z",
        ),
        (None, None),
    ],
)
def test_rfc3339_is_utc_with_z_and_microseconds(moment, expected):
    assert views.rfc3339(moment) == expected


def test_etags_are_strong_and_name_the_paste_by_its_creation_to_the_microsecond():
    created = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    etag = httpheaders.paste_etag(created)
    assert re.fullmatch(r'"[0-9a-f]+"', etag)  # strong: no W/ prefix
    assert etag == httpheaders.paste_etag(created.astimezone(timezone(timedelta(hours=2))))
    assert etag != httpheaders.paste_etag(created + timedelta(microseconds=1))


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abcd"', False),
        ("abc", False),
    ],
)
def test_if_none_match(header, matches):
    assert httpheaders.etag_matches(header, '"abc"') is matches


# --- cursors ----------------------------------------------------------------


def test_cursor_round_trip_keeps_microseconds():
    cursor = Cursor(datetime(2026, 3, 4, 5, 6, 7, 999999, tzinfo=UTC), "AbCdEfGhIjKl")
    token = cursors.encode_cursor(cursor, KEY)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert cursors.decode_cursor(token, KEY) == cursor


@pytest.mark.parametrize("token", ["x", "!!!!", "é", "AAAA", "a" * 200, "=" * 8])
def test_garbage_cursors_are_malformed(token):
    with pytest.raises(MalformedCursor):
        cursors.decode_cursor(token, KEY)


def test_tampered_or_foreign_cursors_are_malformed():
    cursor = Cursor(datetime(2026, 3, 4, tzinfo=UTC), "AbCdEfGhIjKl")
    token = cursors.encode_cursor(cursor, KEY)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    with pytest.raises(MalformedCursor):
        cursors.decode_cursor(flipped, KEY)
    with pytest.raises(MalformedCursor):
        cursors.decode_cursor(token, b"another key")


# --- properties -------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@given(_text.filter(lambda s: 0 < len(s.encode()) <= MAX))
def test_any_text_without_nul_is_accepted_unchanged(content):
    new = validate(content=content)
    assert new.content == content
    assert new.size == len(content.encode("utf-8"))


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(UTC),
    ),
    st.text(domain.ID_ALPHABET, min_size=11, max_size=64),
)
def test_any_cursor_round_trips(created_at, paste_id):
    cursor = Cursor(created_at, paste_id)
    assert cursors.decode_cursor(cursors.encode_cursor(cursor, KEY), KEY) == cursor


@given(st.text(max_size=80))
def test_no_string_crashes_the_cursor_decoder(token):
    with contextlib.suppress(MalformedCursor):
        cursors.decode_cursor(token, KEY)


@given(st.integers(min_value=1, max_value=TTL))
def test_every_expiry_in_range_is_kept(seconds):
    assert validate(content="x", expires_in=seconds).expires_in == seconds


@given(st.integers().filter(lambda n: n < 1 or n > TTL))
def test_every_expiry_out_of_range_is_refused(seconds):
    with pytest.raises(InvalidInput):
        validate(content="x", expires_in=seconds)


@pytest.mark.parametrize(
    ("fields", "max_views"),
    [
        ({}, None),
        ({"max_views": 1}, 1),
        ({"max_views": 1_000_000}, 1_000_000),
        ({"burn_after_read": True}, 1),
        ({"burn_after_read": True, "max_views": 1}, 1),
        ({"burn_after_read": False, "max_views": 3}, 3),
    ],
)
def test_view_limits(fields, max_views):
    assert validate(content="x", **fields).max_views == max_views


@pytest.mark.parametrize(
    "fields",
    [
        {"max_views": 0},
        {"max_views": 1_000_001},
        {"max_views": True},
        {"max_views": 2.0},
        {"max_views": "2"},
        {"burn_after_read": True, "max_views": 2},
        {"password": ""},
        {"password": "x" * 1025},
        {"password": 5},
        {"password": "a\x00b"},
        {"title": "\x1b[31mred"},
        {"title": "line\nbreak"},
    ],
)
def test_view_limit_password_and_title_rules(fields):
    with pytest.raises(InvalidInput):
        validate(content="x", **fields)


def test_a_title_may_hold_a_tab_and_a_password_any_text():
    new = validate(content="x", title="a\tb", password="p" * 1024)
    assert (new.title, new.password) == ("a\tb", "p" * 1024)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"reason": "spam"}, ("spam", None)),
        ({"reason": "other", "detail": "d" * 1000}, ("other", "d" * 1000)),
        ({"reason": "malware", "detail": None}, ("malware", None)),
    ],
)
def test_reports(document, expected):
    assert domain.validate_report(document) == expected


@pytest.mark.parametrize(
    "document",
    [
        [],
        {},
        {"reason": "boring"},
        {"reason": "spam", "detail": "d" * 1001},
        {"reason": "spam", "detail": 3},
        {"reason": "spam", "extra": 1},
        {"reason": "spam", "detail": "a\x00"},
    ],
)
def test_bad_reports(document):
    with pytest.raises(InvalidInput):
        domain.validate_report(document)
