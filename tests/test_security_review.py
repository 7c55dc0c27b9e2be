"""Regression tests for the findings of the security review (issue 19) that
are not covered where their code lives: see also test_rate_limits.py
(client keys, finding 1 and 3), test_memory.py (finding 2), test_e2e.py
(links from the Host header, finding 5) and test_domain.py (titles, finding 8)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service.config import Config, ConfigError
from tests.conftest import assert_problem
from tests.servers import ROOT, gunicorn

GOOD_SECRET = "s" * 40
PRODUCTION = {
    "APP_ENV": "production",
    "DATABASE_URL": "postgresql://x/y",
    "SECRET_KEY": GOOD_SECRET,
    "PUBLIC_BASE_URL": "https://paste.example",
}


# --- finding 1: one bucket for everyone behind a proxy ----------------------


@pytest.mark.parametrize("bind", [None, "127.0.0.1:8000", "[::1]:8000", "unix:/run/paste.sock"])
def test_production_refuses_a_proxy_only_bind_without_trusted_proxies(bind):
    environ = {**PRODUCTION, **({"BIND": bind} if bind else {})}
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        Config.from_env(environ).check_web()


@pytest.mark.parametrize(
    "extra",
    [
        {"TRUSTED_PROXIES": "127.0.0.1"},
        {"BIND": "unix:/run/paste.sock", "TRUSTED_PROXIES": "unix"},
        {"RATE_LIMITS": "false"},
        {"BIND": "0.0.0.0:8000"},
    ],
)
def test_production_starts_when_clients_can_be_told_apart(extra):
    Config.from_env({**PRODUCTION, **extra}).check_web()


def test_a_spent_miss_bucket_never_refuses_reads_of_pastes_that_exist(make_client, create):
    limited = make_client(rate_limits=True, rate_limit_miss_burst=2)
    paste_id = create("there")["id"]
    for _ in range(4):
        limited.simulate_get("/api/v1/pastes/NoSuchPaste00")
    assert limited.simulate_get("/api/v1/pastes/NoSuchPaste01").status_code == 429
    assert limited.simulate_get(f"/api/v1/pastes/{paste_id}/raw").text == "there"


# --- finding 4: DELETE as an existence oracle --------------------------------


def test_delete_cannot_tell_live_ids_from_dead_ones_while_refused(make_client, create):
    limited = make_client(rate_limits=True, rate_limit_miss_burst=3)
    live = create("x")["id"]
    wrong = {"Authorization": "Bearer not-the-token"}
    statuses = [
        limited.simulate_delete(f"/api/v1/pastes/{live}", headers=wrong).status_code
        for _ in range(3)
    ]
    assert statuses == [403, 403, 403]  # each 403 took a miss token
    refused = [
        limited.simulate_delete(path, headers=wrong).status_code
        for path in (f"/api/v1/pastes/{live}", "/api/v1/pastes/NoSuchPaste00")
    ]
    assert refused == [429, 429]
    # A missing token is still 401 first, whatever the limits.
    assert_problem(limited.simulate_delete(f"/api/v1/pastes/{live}"), 401)


# --- finding 5: links from the Host header ----------------------------------


def test_production_requires_public_base_url():
    environ = {k: v for k, v in PRODUCTION.items() if k != "PUBLIC_BASE_URL"}
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        Config.from_env({**environ, "TRUSTED_PROXIES": "127.0.0.1"}).check_web()


def test_the_worker_and_admin_need_no_web_settings():
    environ = {k: v for k, v in PRODUCTION.items() if k != "PUBLIC_BASE_URL"}
    assert Config.from_env(environ).is_production


def test_forwarded_scheme_is_not_believed_in_development(client):
    result = client.simulate_post(
        "/api/v1/pastes", json={"content": "x"}, headers={"X-Forwarded-Proto": "https"}
    )
    assert result.json["url"].startswith("http://")


# --- finding 6: gunicorn's control socket ------------------------------------


@pytest.mark.slow
def test_gunicorn_opens_no_control_socket(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    with gunicorn(database_url) as server:
        assert server.request("GET", "/healthz")[0] == 200
        assert not (tmp_path / ".gunicorn").exists()
        assert not any(path.name.endswith(".ctl") for path in tmp_path.rglob("*"))


# --- finding 7: secrets in development tracebacks ----------------------------


@pytest.mark.parametrize("env", ["development", "production"])
def test_tracebacks_never_print_local_variables(env):
    """With `rich` installed (schemathesis brings it), structlog's console
    renderer printed every frame's locals: a paste's content, a token."""
    script = """
import structlog
from service.config import Config
from service.logs import configure_logging
configure_logging(Config(app_env="development"))
def create(content):
    delete_token = "TOKEN-" + "t" * 20
    raise RuntimeError("boom")
try:
    create("CONTENT-" + "c" * 20)
except RuntimeError:
    structlog.get_logger("x").exception("unhandled_exception")
"""
    environ = {**os.environ, "APP_ENV": env, "LOG_JSON": "true" if env == "production" else ""}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "RuntimeError: boom" in result.stderr
    assert "CONTENT-" not in result.stderr
    assert "TOKEN-" not in result.stderr


# --- finding 8: access lines carry the client; /metrics is not public --------


def test_access_lines_carry_the_client_key(make_client, capfd):
    trusted = make_client(trusted_proxies=("10.0.0.0/8",))
    trusted.simulate_get(
        "/healthz", remote_addr="10.1.2.3", headers={"X-Forwarded-For": "198.51.100.23"}
    )
    assert "client=198.51.100.23" in capfd.readouterr().err


@pytest.mark.parametrize(
    ("remote_addr", "headers", "status"),
    [
        ("127.0.0.1", {}, 200),
        ("192.0.2.8", {}, 404),
        ("127.0.0.1", {"X-Forwarded-For": "192.0.2.8"}, 404),
        ("127.0.0.1", {"Forwarded": "for=192.0.2.8"}, 404),
    ],
)
def test_metrics_only_for_allowed_peers(client, remote_addr, headers, status):
    result = client.simulate_get("/metrics", remote_addr=remote_addr, headers=headers)
    assert result.status_code == status


def test_metrics_allow_from_opens_it_to_a_network(make_client):
    scraper = make_client(metrics_allow_from=("192.0.2.0/24",))
    assert scraper.simulate_get("/metrics", remote_addr="192.0.2.8").status_code == 200
    assert scraper.simulate_get("/metrics", remote_addr="127.0.0.1").status_code == 404


def test_control_characters_in_titles_are_422(client):
    result = client.simulate_post(
        "/api/v1/pastes", json={"content": "x", "title": "\x1b]0;owned\x07"}
    )
    assert assert_problem(result, 422)["field"] == "title"
