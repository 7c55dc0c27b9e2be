"""Configuration from the environment, and production's refusals."""

from __future__ import annotations

import pytest

from service.config import DEV_SECRET_KEY, Config, ConfigError

GOOD_SECRET = "s" * 40


def test_defaults():
    config = Config.from_env({})
    assert config.app_env == "development"
    assert config.paste_max_bytes == 1024 * 1024
    assert config.paste_max_ttl == 365 * 86400
    assert config.worker_interval == 10.0
    assert config.body_limit("json") == 6 * 1024 * 1024 + 64 * 1024
    assert config.body_limit("text") == 1024 * 1024
    assert not config.json_logs


def test_values_are_read_and_coerced():
    config = Config.from_env(
        {
            "APP_ENV": "testing",
            "DATABASE_URL": "postgresql://x/y",
            "PASTE_MAX_BYTES": "100",
            "PASTE_MAX_TTL": "60",
            "POOL_MAX_SIZE": "9",
            "POOL_TIMEOUT": "1.5",
            "WORKER_INTERVAL": "0.25",
            "PUBLIC_BASE_URL": "https://p.example/x/",
            "LOG_JSON": "true",
        }
    )
    assert config.paste_max_bytes == 100
    assert config.paste_max_ttl == 60
    assert config.pool_max_size == 9
    assert config.pool_timeout == 1.5
    assert config.worker_interval == 0.25
    assert config.public_base_url == "https://p.example/x"
    assert config.json_logs


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APP_ENV", "staging"),
        ("PASTE_MAX_BYTES", "0"),
        ("PASTE_MAX_BYTES", "lots"),
        ("WORKER_INTERVAL", "-1"),
        ("WORKER_INTERVAL", "nan"),
        ("WORKER_INTERVAL", "inf"),
        ("POOL_TIMEOUT", "0"),
        ("PUBLIC_BASE_URL", "paste.example"),
        ("LOG_LEVEL", "LOUD"),
        ("LOG_JSON", "perhaps"),
    ],
)
def test_bad_values_name_their_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: value})


def test_pool_min_above_max_is_refused():
    with pytest.raises(ConfigError):
        Config.from_env({"POOL_MIN_SIZE": "5", "POOL_MAX_SIZE": "2"})


@pytest.mark.parametrize(
    "environ",
    [
        {"APP_ENV": "production", "SECRET_KEY": GOOD_SECRET},
        {"APP_ENV": "production", "DATABASE_URL": "postgresql://x/y"},
        {"APP_ENV": "production", "DATABASE_URL": "postgresql://x/y", "SECRET_KEY": DEV_SECRET_KEY},
        {"APP_ENV": "production", "DATABASE_URL": "postgresql://x/y", "SECRET_KEY": "short"},
    ],
)
def test_production_refuses_unsafe_settings(environ):
    with pytest.raises(ConfigError):
        Config.from_env(environ)


def test_production_with_safe_settings_logs_json():
    config = Config.from_env(
        {
            "APP_ENV": "production",
            "DATABASE_URL": "postgresql://x/y",
            "SECRET_KEY": GOOD_SECRET,
            "PUBLIC_BASE_URL": "https://paste.example",
            "TRUSTED_PROXIES": "127.0.0.1",
        }
    )
    assert config.is_production
    assert config.json_logs


def test_rate_limits_default_on_in_production_only():
    production = {"APP_ENV": "production", "DATABASE_URL": "postgresql://x/y"}
    production["SECRET_KEY"] = GOOD_SECRET
    production["PUBLIC_BASE_URL"] = "https://paste.example"
    production["TRUSTED_PROXIES"] = "127.0.0.1"
    assert Config.from_env(production).rate_limits_enabled
    assert not Config.from_env({}).rate_limits_enabled
    assert not Config.from_env({**production, "RATE_LIMITS": "off"}).rate_limits_enabled
    assert Config.from_env({"RATE_LIMITS": "on"}).rate_limits_enabled
