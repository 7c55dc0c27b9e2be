"""Response documents: timestamps left to the JSON encoder come out as rfc3339 writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service import views
from service.domain import Paste


def written(moment: datetime | None) -> object:
    return orjson.loads(views.to_json({"at": views.timestamp(moment)}))["at"]


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        datetime(2026, 5, 6, 7, 8, 9, 120, tzinfo=UTC),
        datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC),  # a zero fraction: orjson would drop it
        datetime(2026, 5, 6, 9, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 5, 6, 7, 8, 9, 5, tzinfo=ZoneInfo("Etc/UTC")),  # UTC, another object
        None,
    ],
)
def test_a_timestamp_is_written_as_rfc3339_writes_it(moment):
    assert written(moment) == views.rfc3339(moment)


# Years a paste's timestamps can have (far from datetime's own limits, which a
# conversion to UTC could cross).
MOMENTS = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(9000, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))]),
)


@given(MOMENTS)
def test_any_aware_timestamp_is_written_as_rfc3339_writes_it(moment):
    assert written(moment) == views.rfc3339(moment)


def test_a_full_document_carries_every_field_and_the_content():
    paste = Paste(
        id="abcdefgh2345",
        title="t",
        language=None,
        visibility="public",
        max_views=3,
        views_left=2,
        size=2,
        created_at=datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC),
        expires_at=datetime(2026, 5, 7, 7, 8, 9, 1, tzinfo=UTC),
        content="hi",
    )
    document = orjson.loads(views.to_json(views.full(paste, "https://p.example")))
    assert document == {
        "id": "abcdefgh2345",
        "title": "t",
        "language": None,
        "visibility": "public",
        "burn_after_read": False,
        "max_views": 3,
        "views_left": 2,
        "password_protected": False,
        "size": 2,
        "created_at": "2026-05-06T07:08:09.000000Z",
        "expires_at": "2026-05-07T07:08:09.000001Z",
        "url": "https://p.example/api/v1/pastes/abcdefgh2345",
        "raw_url": "https://p.example/api/v1/pastes/abcdefgh2345/raw",
        "content": "hi",
    }
