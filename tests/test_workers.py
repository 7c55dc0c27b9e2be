"""The gunicorn worker class's own response: the same headers as gunicorn's."""

from __future__ import annotations

from typing import Any

import pytest
from gunicorn.http import wsgi
from gunicorn.http.errors import InvalidResponseHeader
from hypothesis import given
from hypothesis import strategies as st

from service import workers

NAMES = st.sampled_from(
    [
        "Content-Type",
        "Content-Length",
        "ETag",
        "X-Request-ID",
        "Connection",
        "Transfer-Encoding",
        "Upgrade",
        "Bad Name",
        "Bad:Name",
        "",
        "Caf\u00e9",
    ]
)
VALUES = st.one_of(
    st.sampled_from(
        ["text/plain", " padded\t", "\tx", "trailing ", " leading", "keep-alive", "websocket", ""]
    ),
    st.text(alphabet=st.characters(max_codepoint=0x17F), max_size=12),
)


def outcome(response_class: type[wsgi.Response], batches: list[list[Any]]) -> list[Any]:
    """What each batch of headers leaves in a fresh response: its headers, its
    length and upgrade flag, or the exception it raised."""
    seen = []
    for headers in batches:
        response = response_class(None, None, None)
        try:
            response.process_headers(headers)
        except Exception as exc:
            seen.append(("raised", type(exc)))
        else:
            seen.append((response.headers, response.response_length, response.upgrade))
    return seen


@given(st.lists(st.lists(st.tuples(NAMES, VALUES), max_size=6), max_size=6))
def test_headers_come_out_as_gunicorn_makes_them(batches):
    # Every batch twice: the second time the names that passed are known.
    twice = [batch for batch in batches for _ in range(2)]
    assert outcome(workers.CheckedOnceHeaders, twice) == outcome(wsgi.Response, twice)


@pytest.mark.parametrize("value", ["ok\r\nX-Injected: 1", "nul\x00", "bell\x07", "\u0100"])
def test_a_known_name_with_a_bad_value_is_still_refused(monkeypatch, value):
    monkeypatch.setattr(workers, "_plain_names", set())
    workers.CheckedOnceHeaders(None, None, None).process_headers([("X-Note", "fine")])
    assert "X-Note" in workers._plain_names
    for response_class in (workers.CheckedOnceHeaders, wsgi.Response):
        with pytest.raises(InvalidResponseHeader):
            response_class(None, None, None).process_headers([("X-Note", value)])


def test_content_length_and_hop_by_hop_names_are_never_taken_as_plain(monkeypatch):
    monkeypatch.setattr(workers, "_plain_names", set())
    response = workers.CheckedOnceHeaders(None, None, None)
    response.process_headers([("Content-Length", "5"), ("Connection", "close"), ("ETag", '"1"')])
    assert workers._plain_names == {"ETag"}
    assert response.response_length == 5
    assert response.headers == [("Content-Length", "5"), ("ETag", '"1"')]


@pytest.mark.parametrize("value", [" leading", "trailing ", "\ttab", "in\tside", "", "caf\u00e9"])
def test_a_known_name_with_a_value_to_strip_or_recheck_matches_gunicorn(monkeypatch, value):
    monkeypatch.setattr(workers, "_plain_names", {"X-Note"})
    batches = [[("X-Note", value)]]
    assert outcome(workers.CheckedOnceHeaders, batches) == outcome(wsgi.Response, batches)
