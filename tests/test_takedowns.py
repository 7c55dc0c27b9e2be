"""Abuse reports, the operator's admin command, 451 for removed pastes and
blocked content."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace

import pytest

from service import admin
from tests.conftest import assert_problem
from tests.servers import ROOT, free_port

PATH = "/api/v1/pastes"


def run_admin(config, *args: str) -> tuple[int, str, str]:
    """`python -m service.admin ARGS`, in process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = admin.execute(list(args), config)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def operator(config):
    return functools.partial(run_admin, config)


def report(client, paste_id: str, **body: object):
    return client.simulate_post(f"{PATH}/{paste_id}/report", json=body)


def test_a_report_is_received_and_stored(client, create, sql):
    paste_id = create("spam spam")["id"]
    result = report(client, paste_id, reason="spam", detail="selling things")
    assert result.status_code == 202
    assert result.json == {"status": "received"}
    assert sql.execute("SELECT paste_id, reason, detail FROM reports").fetchall() == [
        (paste_id, "spam", "selling things")
    ]
    # Reading a reported paste is unaffected.
    assert client.simulate_get(f"{PATH}/{paste_id}/raw").text == "spam spam"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"reason": "spam"}', "text/plain", 415),
        (b'{"reason": "spam"}', None, 415),
        (b'{"reason": ', "application/json", 400),
        (b'{"reason": "boring"}', "application/json", 422),
        (b'{"reason": "spam", "detail": 5}', "application/json", 422),
        (b'{"reason": "spam", "extra": 1}', "application/json", 422),
        (b"[]", "application/json", 422),
        (b'{"reason": "spam", "detail": "' + b"d" * 20_000 + b'"}', "application/json", 413),
    ],
)
def test_bad_reports(client, create, body, content_type, status):
    paste_id = create("x")["id"]
    headers = {"Content-Type": content_type} if content_type else {}
    result = client.simulate_post(f"{PATH}/{paste_id}/report", body=body, headers=headers)
    assert_problem(result, status)


def test_a_report_of_no_live_paste_is_404(client, create):
    assert_problem(report(client, "NoSuchPaste00", reason="spam"), 404)
    burned = create("x", burn_after_read=True)["id"]
    client.simulate_get(f"{PATH}/{burned}")
    assert_problem(report(client, burned, reason="spam"), 404)


def test_reports_are_limited_per_client(make_client, create):
    limited = make_client(rate_limits=True, rate_limit_create_burst=2)
    paste_id = create("x")["id"]
    statuses = [
        limited.simulate_post(
            f"{PATH}/{paste_id}/report", json={"reason": "spam"}, remote_addr="192.0.2.3"
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [202, 202, 429]


def test_reports_lists_most_reported_first(client, create, operator):
    quiet = create("a", title="quiet")["id"]
    loud = create("b")["id"]
    report(client, quiet, reason="other")
    for reason in ("spam", "spam", "phishing"):
        report(client, loud, reason=reason, detail=f"looks like {reason}")
    status, out, _ = operator("--json", "reports")
    assert status == 0
    listed = json.loads(out)
    assert [item["id"] for item in listed] == [loud, quiet]
    assert listed[0]["reports"] == 3
    assert listed[0]["reasons"] == {"spam": 2, "phishing": 1}
    assert listed[0]["details"][0] == "looks like phishing"
    status, out, _ = operator("reports")
    assert status == 0
    assert out.splitlines()[0].startswith(f"{loud}  3 report(s): phishing 1, spam 2")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("suffix", ["", "/raw"])
def test_a_removed_paste_answers_451_with_the_reason(client, create, operator, method, suffix):
    paste_id = create("bad", password="pw")["id"]
    status, out, _ = operator("remove", paste_id, "--reason", "court order 17")
    assert (status, out.strip()) == (0, f"removed {paste_id}")
    result = client.simulate_request(method, f"{PATH}/{paste_id}{suffix}")
    assert result.status_code == 451  # before 401: the password is not asked for
    if method == "GET":
        assert "court order 17" in assert_problem(result, 451)["detail"]


def test_remove_block_keeps_the_content_out(client, create, operator, sql):
    created = create("malware payload")
    report(client, created["id"], reason="malware")
    status, out, _ = operator("--json", "remove", created["id"], "--block")
    assert status == 0
    digest = hashlib.sha256(b"malware payload").hexdigest()
    assert json.loads(out) == {
        "id": created["id"],
        "removed": True,
        "blocked": True,
        "sha256": digest,
    }
    assert sql.execute("SELECT count(*) FROM reports").fetchone()[0] == 0
    again = client.simulate_post(PATH, json={"content": "malware payload"})
    assert_problem(again, 451)
    assert sql.execute("SELECT count(*) FROM pastes").fetchone()[0] == 0
    # The hash is of the exact bytes: one byte more is another paste.
    assert client.simulate_post(PATH, json={"content": "malware payload!"}).status_code == 201
    # A delete or a report of the removed paste finds nothing.
    token = {"Authorization": f"Bearer {created['delete_token']}"}
    assert_problem(client.simulate_delete(f"{PATH}/{created['id']}", headers=token), 404)
    assert_problem(report(client, created["id"], reason="spam"), 404)
    status, out, _ = operator("blocked")
    assert (status, out.split()[0]) == (0, digest)


def test_block_and_unblock_by_hash(client, operator):
    content = "ünïcode\r\n"
    digest = hashlib.sha256(content.encode()).hexdigest()
    assert operator("block", digest.upper(), "--reason", "known bad")[0] == 0
    for body, content_type in (
        (json.dumps({"content": content}).encode(), "application/json"),
        (content.encode(), "text/plain"),
    ):
        result = client.simulate_post(PATH, body=body, headers={"Content-Type": content_type})
        assert_problem(result, 451)
    assert operator("block", digest)[0] == 0  # again: still blocked, still fine
    status, out, _ = operator("--json", "blocked")
    assert [(i["sha256"], i["reason"]) for i in json.loads(out)] == [(digest, "known bad")]
    assert operator("unblock", digest)[0] == 0
    assert client.simulate_post(PATH, json={"content": content}).status_code == 201
    status, _, err = operator("unblock", digest)
    assert status == 1
    assert "not blocked" in err


def test_exit_statuses(operator, create):
    paste_id = create("x", expires_in=1)["id"]
    assert operator("remove", "NoSuchPaste00")[0] == 1
    assert operator("remove", paste_id)[0] == 0
    assert operator("remove", paste_id)[0] == 1  # already removed
    assert operator("block", "not-a-hash")[0] == 2
    assert operator("frobnicate")[0] == 2
    assert operator()[0] == 2
    status, out, _ = operator("remove", "--help")
    assert status == 0
    assert "--block" in out


def test_an_unreachable_database_is_exit_3(config):
    unreachable = replace(
        config,
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x",
        pool_timeout=1.0,
        connect_timeout=1,
    )
    status, _, err = run_admin(unreachable, "blocked")
    assert status == 3
    assert "cannot be reached" in err


def test_the_module_runs_and_logs_its_actions(database_url, create):
    paste_id = create("x")["id"]
    result = subprocess.run(
        [sys.executable, "-m", "service.admin", "remove", paste_id, "--reason", "spam run"],
        cwd=ROOT,
        env={"DATABASE_URL": database_url, "APP_ENV": "testing", "LOG_JSON": "true", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    action = next(line for line in logged if line["event"] == "paste_removed")
    assert (action["id"], action["reason"]) == (paste_id, "spam run")
    assert "timestamp" in action
    assert "operator" in action


def test_operator_removals_are_counted_on_metrics(client, create, operator):
    paste_id = create("x")["id"]
    operator("remove", paste_id)
    text = client.simulate_get("/metrics", remote_addr="127.0.0.1").text
    assert 'pastebin_pastes_deleted_total{reason="operator"} 1.0' in text
