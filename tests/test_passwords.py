"""Password-protected pastes: HTTP Basic, 401 without the right password,
wrong passwords counted as misses, never cached or counted as a view."""

from __future__ import annotations

import asyncio
import base64

import pytest
from falcon import testing

from service import passwords
from tests.conftest import assert_problem, run

PATH = "/api/v1/pastes"
CHALLENGE = 'Basic realm="paste", charset="UTF-8"'


def basic(password: str, user: str = "") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_the_password_is_stored_only_as_a_salted_slow_hash(create, sql):
    first = create("x", password="hunter2")
    second = create("x", password="hunter2")
    assert first["password_protected"] is True
    assert "password" not in first
    stored = [
        sql.execute("SELECT password_hash FROM pastes WHERE id = %s", [p["id"]]).fetchone()[0]
        for p in (first, second)
    ]
    assert all(s.startswith("scrypt$") and "hunter2" not in s for s in stored)
    assert stored[0] != stored[1]  # salted
    assert passwords.password_matches("hunter2", stored[0])
    assert not passwords.password_matches("hunter3", stored[0])


@pytest.mark.parametrize("suffix", ["", "/raw"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_without_the_right_password_no_content(client, create, suffix, method):
    paste_id = create("the secret", password="s3cret")["id"]
    path = f"{PATH}/{paste_id}{suffix}"
    for headers in (
        {},
        basic("wrong"),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer x"},
    ):
        result = client.simulate_request(method, path, headers=headers)
        assert result.status_code == 401
        assert result.headers["www-authenticate"] == CHALLENGE
        assert result.headers["cache-control"] == "no-store"
        assert "the secret" not in result.text
    ok = client.simulate_request(method, path, headers=basic("s3cret", user="anyone"))
    assert ok.status_code == 200
    assert ok.headers["cache-control"] == "no-store"
    if method == "GET":
        assert "the secret" in ok.text


def test_a_password_with_a_colon_and_unicode(client, create):
    paste_id = create("x", password="a:b:ü")["id"]
    result = client.simulate_get(f"{PATH}/{paste_id}/raw", headers=basic("a:b:ü"))
    assert result.status_code == 200


def test_304_only_with_the_right_password(client, create):
    paste_id = create("x", password="pw")["id"]
    etag = client.simulate_head(f"{PATH}/{paste_id}/raw", headers=basic("pw")).headers["etag"]
    without = client.simulate_get(f"{PATH}/{paste_id}/raw", headers={"If-None-Match": etag})
    assert without.status_code == 401
    right = client.simulate_get(
        f"{PATH}/{paste_id}/raw", headers={"If-None-Match": etag, **basic("pw")}
    )
    assert right.status_code == 304


def test_wrong_passwords_take_no_view(client, create):
    paste_id = create("once", password="pw", max_views=1)["id"]
    for _ in range(3):
        assert client.simulate_get(f"{PATH}/{paste_id}/raw", headers=basic("no")).status_code == 401
        assert client.simulate_get(f"{PATH}/{paste_id}/raw").status_code == 401
    assert client.simulate_get(f"{PATH}/{paste_id}/raw", headers=basic("pw")).text == "once"
    assert client.simulate_get(f"{PATH}/{paste_id}/raw", headers=basic("pw")).status_code == 404


def test_wrong_passwords_spend_the_miss_limit(make_client, create):
    limited = make_client(rate_limits=True, rate_limit_miss_burst=3)
    paste_id = create("x", password="pw")["id"]
    path = f"{PATH}/{paste_id}/raw"
    statuses = [
        limited.simulate_get(path, headers=basic(f"guess{i}"), remote_addr="192.0.2.7").status_code
        for i in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    refused = limited.simulate_get(path, headers=basic("guess"), remote_addr="192.0.2.7")
    assert int(refused.headers["retry-after"]) >= 1
    # A missing password is not a guess: it takes nothing.
    other = [limited.simulate_get(path, remote_addr="192.0.2.8").status_code for _ in range(5)]
    assert other == [401] * 5


def test_checking_a_password_does_not_stall_other_requests(client, create):
    """The check (tens of milliseconds of scrypt) runs in a thread: a plain
    read that starts after it finishes first."""
    protected = create("x", password="pw")["id"]
    plain = create("plain")["id"]
    finished: list[str] = []

    async def scenario() -> None:
        async with testing.ASGIConductor(client.app) as conductor:

            async def get(name: str, path: str, **kwargs: object) -> None:
                result = await conductor.simulate_get(path, **kwargs)
                assert result.status_code == 200
                finished.append(name)

            check = asyncio.ensure_future(
                get("check", f"{PATH}/{protected}/raw", headers=basic("pw"))
            )
            await asyncio.sleep(0.01)  # the check is under way
            await get("plain", f"{PATH}/{plain}/raw")
            await check

    run(scenario)
    assert finished == ["plain", "check"]


@pytest.mark.parametrize("password", ["", "x" * 1025])
def test_bad_passwords_are_422(client, password):
    result = client.simulate_post(PATH, json={"content": "x", "password": password})
    assert_problem(result, 422)


def test_a_protected_paste_is_deleted_with_its_token_alone(client, create):
    created = create("x", password="pw")
    result = client.simulate_delete(
        f"{PATH}/{created['id']}", headers={"Authorization": f"Bearer {created['delete_token']}"}
    )
    assert result.status_code == 204
