"""Health, readiness, metrics, OpenAPI, request ids, and errors in general."""

from __future__ import annotations

import json
import re

import pytest
import structlog
from falcon import testing
from structlog.testing import capture_logs

from service.app import create_app
from service.config import Config
from service.db import Database
from tests.conftest import assert_problem, run


def unreachable_app(retry_after: int = 2) -> tuple[testing.TestClient, Database]:
    """An app whose database is a closed port: every query fails fast."""
    config = Config(
        app_env="testing",
        database_url="postgresql://nobody@127.0.0.1:9/none",
        pool_min_size=0,
        pool_timeout=0.5,
        connect_timeout=1,
        readiness_timeout=0.5,
        retry_after_seconds=retry_after,
        log_level="CRITICAL",
    )
    db = Database.from_config(config)
    run(db.open)
    return testing.TestClient(create_app(config, db=db)), db


def test_healthz_is_200_without_a_database():
    client, db = unreachable_app()
    try:
        result = client.simulate_get("/healthz")
        assert result.status_code == 200
    finally:
        run(db.close)


def test_readyz_is_200_when_the_database_answers(client):
    assert client.simulate_get("/readyz").status_code == 200


def test_unreachable_database_is_503_with_retry_after():
    client, db = unreachable_app(retry_after=7)
    try:
        ready = client.simulate_get("/readyz")
        assert_problem(ready, 503)
        assert ready.headers["retry-after"] == "7"
        for result in (
            client.simulate_get("/api/v1/pastes/AbCdEfGhIjKl"),
            client.simulate_post("/api/v1/pastes", json={"content": "x"}),
            client.simulate_get("/api/v1/pastes"),
        ):
            document = assert_problem(result, 503)
            assert result.headers["retry-after"] == "7"
            assert "127.0.0.1" not in document["detail"]
    finally:
        run(db.close)


def test_exhausted_pool_is_a_fast_503(config):
    db = Database.from_config(Config(**_with(config)))
    run(db.pool.open, wait=True, timeout=10)
    client = testing.TestClient(create_app(config, db=db))
    held = [run(db.pool.getconn) for _ in range(db.pool.max_size)]
    try:
        result = client.simulate_get("/api/v1/pastes")
        assert_problem(result, 503)
        assert "retry-after" in result.headers
    finally:
        for conn in held:
            run(db.pool.putconn, conn)
        run(db.close)


def _with(config: Config) -> dict:
    from dataclasses import asdict

    return {**asdict(config), "pool_max_size": 2, "pool_min_size": 2, "pool_timeout": 0.3}


def test_unknown_route_is_a_404_problem(client):
    assert_problem(client.simulate_get("/nope"), 404)
    assert_problem(client.simulate_get("/api/v2/pastes"), 404)
    assert_problem(client.simulate_get("/api/v1/pastes/AbCdEfGhIjKl/raw/extra"), 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/pastes", {"GET", "POST"}),
        ("DELETE", "/api/v1/pastes", {"GET", "POST"}),
        ("PATCH", "/api/v1/pastes/AbCdEfGhIjKl", {"GET", "HEAD", "DELETE"}),
        ("POST", "/api/v1/pastes/AbCdEfGhIjKl/raw", {"GET", "HEAD"}),
        ("DELETE", "/api/v1/pastes/AbCdEfGhIjKl/raw", {"GET", "HEAD"}),
        ("POST", "/healthz", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(client, method, path, allowed):
    result = client.simulate_request(method, path)
    assert_problem(result, 405)
    methods = {m.strip() for m in result.headers["allow"].split(",")}
    assert allowed <= methods
    assert method not in methods


def test_request_id_is_echoed_or_generated(client):
    given = client.simulate_get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = client.simulate_get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    hostile = client.simulate_get("/healthz", headers={"X-Request-ID": 'a" b\x7f' + "x" * 500})
    assert hostile.headers["x-request-id"] != 'a" b\x7f' + "x" * 500


def test_every_response_has_nosniff(client, create):
    paste_id = create("x")["id"]
    for path in ("/healthz", "/nope", f"/api/v1/pastes/{paste_id}", "/api/v1/pastes"):
        assert client.simulate_get(path).headers["x-content-type-options"] == "nosniff"


def test_access_log_line_carries_request_id_route_template_and_status(client, create):
    paste_id = create("secret content")["id"]
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        client.simulate_get(f"/api/v1/pastes/{paste_id}", headers={"X-Request-ID": "req-42"})
    (line,) = [entry for entry in logs if entry["event"] == "request_handled"]
    assert line["request_id"] == "req-42"
    assert line["route"] == "/api/v1/pastes/{paste_id}"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["duration_ms"] >= 0
    assert "secret content" not in repr(logs)


def test_unexpected_errors_are_500_problems_logged_with_the_request_id(config, db):
    app = create_app(config, db=db)

    class Broken:
        async def on_get(self, req, resp):
            raise RuntimeError("internal detail: password=hunter2")

    app.app.add_route("/broken", Broken())
    client = testing.TestClient(app)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        result = client.simulate_get("/broken", headers={"X-Request-ID": "req-500"})
    document = assert_problem(result, 500)
    assert "hunter2" not in result.text
    assert "RuntimeError" not in document["detail"]
    (line,) = [entry for entry in logs if entry["event"] == "unhandled_exception"]
    assert line["request_id"] == "req-500"


def test_metrics_count_requests_by_route_template_not_raw_path(client, create):
    paste_id = create("x")["id"]
    client.simulate_get(f"/api/v1/pastes/{paste_id}/raw")
    client.simulate_get("/api/v1/pastes/NoSuchPaste1/raw")
    result = client.simulate_get("/metrics", remote_addr="127.0.0.1")
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/plain")
    text = result.text
    assert re.search(
        r'pastebin_http_requests_total\{method="GET",route="/api/v1/pastes/\{paste_id\}/raw",'
        r'status="404"\} [1-9]',
        text,
    )
    assert "pastebin_http_request_duration_seconds_bucket" in text
    assert "pastebin_pastes_deleted_total" in text
    assert "pastebin_db_pool_connections" in text
    assert paste_id not in text
    assert "NoSuchPaste1" not in text


def test_metrics_counters_move(client, create):
    def value(pattern: str) -> float:
        text = client.simulate_get("/metrics", remote_addr="127.0.0.1").text
        match = re.search(rf"^{pattern} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    created = r'pastebin_http_requests_total\{method="POST",route="/api/v1/pastes",status="201"\}'
    read = (
        r'pastebin_http_requests_total\{method="GET",route="/api/v1/pastes/\{paste_id\}",'
        r'status="200"\}'
    )
    latency = (
        r'pastebin_http_request_duration_seconds_count\{method="GET",'
        r'route="/api/v1/pastes/\{paste_id\}",status="200"\}'
    )
    missed = (
        r'pastebin_http_request_duration_seconds_count\{method="GET",'
        r'route="/api/v1/pastes/\{paste_id\}",status="404"\}'
    )
    pastes_created = "pastebin_pastes_created_total"
    pastes_read = "pastebin_pastes_read_total"
    deleted = {
        reason: rf'pastebin_pastes_deleted_total\{{reason="{reason}"\}}'
        for reason in ("token", "burn", "views", "operator")
    }
    names = (created, read, latency, missed, pastes_created, pastes_read, *deleted.values())
    before = {name: value(name) for name in names}
    paste_id = create("x")["id"]
    client.simulate_get(f"/api/v1/pastes/{paste_id}")
    etag = client.simulate_get(f"/api/v1/pastes/{paste_id}/raw").headers["etag"]
    client.simulate_get(f"/api/v1/pastes/{paste_id}/raw", headers={"If-None-Match": etag})
    client.simulate_head(f"/api/v1/pastes/{paste_id}/raw")
    burn_id = create("y", burn_after_read=True)["id"]
    client.simulate_get(f"/api/v1/pastes/{burn_id}")
    client.simulate_get(f"/api/v1/pastes/{burn_id}")
    twice = create("z", max_views=2)["id"]
    client.simulate_get(f"/api/v1/pastes/{twice}/raw")
    client.simulate_get(f"/api/v1/pastes/{twice}/raw")
    gone = create("w")
    client.simulate_delete(
        f"/api/v1/pastes/{gone['id']}",
        headers={"Authorization": f"Bearer {gone['delete_token']}"},
    )
    assert value(created) == before[created] + 4
    assert value(read) == before[read] + 2
    assert value(latency) == before[latency] + 2
    assert value(missed) == before[missed] + 1
    assert value(pastes_created) == before[pastes_created] + 4
    # Content returned: two JSON reads and three raw (not the 304, not HEAD).
    assert value(pastes_read) == before[pastes_read] + 5
    for reason, moved in (("token", 1), ("burn", 1), ("views", 1), ("operator", 0)):
        assert value(deleted[reason]) == before[deleted[reason]] + moved, reason


def test_unknown_methods_do_not_mint_metric_labels(client):
    client.simulate_request("FROBNICATE", "/api/v1/pastes")
    text = client.simulate_get("/metrics", remote_addr="127.0.0.1").text
    assert "FROBNICATE" not in text
    assert 'method="OTHER"' in text


def test_generated_request_ids_differ_between_requests_and_processes():
    import os

    from service.middleware import RequestIds

    ids = RequestIds()
    made = {ids.next() for _ in range(1000)}
    assert len(made) == 1000
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what a gunicorn worker forked after the parent made ids
        os.write(write, ids.next().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child_id = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert re.fullmatch(r"[0-9a-f]{32}", child_id)
    assert child_id not in made
    assert child_id[:16] != ids.next()[:16]


def test_json_access_line_has_the_fields_of_every_other_line(config, db, capsys):
    # Production logs JSON: one object a line, with the request id and a UTC timestamp.
    from dataclasses import replace
    from datetime import datetime

    from service.logs import configure_logging

    client = testing.TestClient(create_app(replace(config, log_json=True), db=db))
    try:
        capsys.readouterr()
        client.simulate_get("/healthz", headers={"X-Request-ID": "req-7"})
        client.simulate_get("/nope")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        configure_logging(config)
    first, second = [line for line in lines if line["event"] == "request_handled"]
    assert first["level"] == "info"
    assert first["request_id"] == "req-7"
    assert (first["method"], first["route"], first["status"]) == ("GET", "/healthz", 200)
    assert first["timestamp"].endswith("Z")
    assert datetime.fromisoformat(first["timestamp"]).tzinfo is not None
    assert second["status"] == 404
    assert second["request_id"] != "req-7"


def test_access_lines_follow_the_log_level(config, db):
    from dataclasses import replace

    for level, expected in (("WARNING", 0), ("INFO", 1)):
        client = testing.TestClient(create_app(replace(config, log_level=level), db=db))
        with capture_logs() as logs:
            client.simulate_get("/healthz")
        assert len([e for e in logs if e["event"] == "request_handled"]) == expected, level
