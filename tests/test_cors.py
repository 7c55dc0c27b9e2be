"""CORS for a paste application on another origin, and the usage page."""

from __future__ import annotations

import pytest

from service.config import Config, ConfigError

PATH = "/api/v1/pastes"
APP = "https://paste.example"
EXPOSED = "Location, ETag, Retry-After, X-Delete-Token, X-Request-ID"


@pytest.fixture
def cors(make_client):
    return make_client(cors_allow_origins=(APP, "http://localhost:5173"))


def test_no_cors_headers_by_default(client):
    result = client.simulate_get("/healthz", headers={"Origin": APP})
    assert "access-control-allow-origin" not in result.headers
    assert "vary" not in result.headers
    preflight = client.simulate_options(
        PATH, headers={"Origin": APP, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_an_allowed_origin_gets_its_own_origin_and_the_exposed_headers(cors):
    result = cors.simulate_post(PATH, json={"content": "x"}, headers={"Origin": APP})
    assert result.status_code == 201
    assert result.headers["access-control-allow-origin"] == APP
    assert result.headers["access-control-expose-headers"] == EXPOSED
    assert "Origin" in result.headers["vary"]
    assert "access-control-allow-credentials" not in result.headers


def test_every_reply_varies_on_origin_while_cors_is_on(cors):
    for headers in ({}, {"Origin": "https://evil.example"}, {"Origin": APP}):
        for path in ("/healthz", f"{PATH}/NoSuchPaste00", "/nowhere"):
            result = cors.simulate_get(path, headers=headers)
            assert "Origin" in result.headers["vary"], (path, headers)
    other = cors.simulate_get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    assert "access-control-expose-headers" not in other.headers


@pytest.mark.parametrize("path", [PATH, f"{PATH}/AbCdEfGhIjKl", f"{PATH}/AbCdEfGhIjKl/raw"])
def test_a_preflight_from_an_allowed_origin(cors, path):
    result = cors.simulate_options(
        path,
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "authorization, x-anything",
        },
    )
    assert result.status_code == 204
    assert result.headers["access-control-allow-origin"] == APP
    assert result.headers["access-control-allow-methods"] == "GET, HEAD, POST, DELETE"
    assert result.headers["access-control-allow-headers"] == (
        "Content-Type, Authorization, If-None-Match"
    )
    assert int(result.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in result.headers


def test_a_preflight_from_another_origin_gets_no_cors_headers(cors):
    result = cors.simulate_options(
        PATH, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert not any(name.startswith("access-control-") for name in result.headers)


def test_any_origin(make_client):
    anyone = make_client(cors_allow_origins=("*",))
    result = anyone.simulate_get("/healthz", headers={"Origin": "https://x.example"})
    assert result.headers["access-control-allow-origin"] == "*"
    assert "Origin" in result.headers["vary"]


def test_early_refusals_carry_cors_headers_too(make_client):
    small = make_client(cors_allow_origins=(APP,), paste_max_bytes=10)
    result = small.simulate_post(
        PATH,
        body=b"x" * 11,
        headers={"Origin": APP, "Content-Type": "text/plain", "Content-Length": "11"},
    )
    assert result.status_code == 413
    assert result.headers["access-control-allow-origin"] == APP


@pytest.mark.parametrize(
    "raw", ["paste.example", "https://paste.example/", "ftp://x", "https://a b"]
)
def test_bad_origins_are_refused_at_start(raw):
    with pytest.raises(ConfigError, match="CORS_ALLOW_ORIGINS"):
        Config.from_env({"CORS_ALLOW_ORIGINS": raw})


def test_usage_names_this_service(client, make_client):
    result = client.simulate_get("/", host="bin.test")
    assert result.status_code == 200
    assert result.headers["content-type"] == "text/plain; charset=utf-8"
    text = result.text
    for needle in ("curl", "-F content=@", "--data-binary", "Bearer", "/openapi.json", "15m"):
        assert needle in text
    assert "http://bin.test/api/v1/pastes" in text
    public = make_client(public_base_url="https://p.example/bin")
    assert "https://p.example/bin/api/v1/pastes" in public.simulate_get("/").text
