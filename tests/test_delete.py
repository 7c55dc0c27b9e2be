"""DELETE /api/v1/pastes/{id}: bearer token, 401/403/404/204."""

from __future__ import annotations

import pytest

from tests.conftest import assert_problem

PATH = "/api/v1/pastes"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_delete_with_the_token_removes_the_row(client, create, sql):
    created = create("bye")
    result = client.simulate_delete(
        f"{PATH}/{created['id']}", headers=bearer(created["delete_token"])
    )
    assert result.status_code == 204
    assert result.content == b""
    assert sql.execute("SELECT count(*) FROM pastes WHERE id = %s", [created["id"]]).fetchone() == (
        0,
    )
    again = client.simulate_delete(
        f"{PATH}/{created['id']}", headers=bearer(created["delete_token"])
    )
    assert_problem(again, 404)


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_scheme_is_case_insensitive(client, create, scheme):
    created = create("x")
    result = client.simulate_delete(
        f"{PATH}/{created['id']}", headers={"Authorization": f"{scheme} {created['delete_token']}"}
    )
    assert result.status_code == 204


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "token"])
@pytest.mark.parametrize(
    "paste_id", ["real", "NoSuchPasteX", "..", "x" * 3000, "1%27%20OR%201=1--", "%C3%A9t%C3%A9"]
)
def test_missing_token_is_401_before_anything_about_the_id(client, create, header, paste_id):
    if paste_id == "real":
        paste_id = create("x")["id"]
    headers = {"Authorization": header} if header is not None else {}
    result = client.simulate_delete(f"{PATH}/{paste_id}", headers=headers)
    assert_problem(result, 401)
    assert result.headers["www-authenticate"].lower().startswith("bearer")


def test_wrong_token_is_403_and_keeps_the_paste(client, create):
    created = create("keep")
    other = create("other")
    for token in ("wrong", other["delete_token"], created["delete_token"][:-1]):
        assert_problem(
            client.simulate_delete(f"{PATH}/{created['id']}", headers=bearer(token)), 403
        )
    assert client.simulate_get(f"{PATH}/{created['id']}/raw").text == "keep"


def test_unknown_id_with_a_token_is_404(client):
    assert_problem(client.simulate_delete(f"{PATH}/NoSuchPaste1", headers=bearer("t")), 404)


def test_expired_paste_cannot_be_deleted(client, create, sql):
    created = create("x", expires_in=60)
    sql.execute(
        "UPDATE pastes SET created_at = now() - interval '2 minutes', "
        "expires_at = now() - interval '1 second' WHERE id = %s",
        [created["id"]],
    )
    result = client.simulate_delete(
        f"{PATH}/{created['id']}", headers=bearer(created["delete_token"])
    )
    assert_problem(result, 404)


def test_burned_paste_cannot_be_deleted(client, create):
    created = create("x", burn_after_read=True)
    client.simulate_get(f"{PATH}/{created['id']}")
    result = client.simulate_delete(
        f"{PATH}/{created['id']}", headers=bearer(created["delete_token"])
    )
    assert_problem(result, 404)
