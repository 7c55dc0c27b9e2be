"""The README's curl examples, run as written against a real gunicorn."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import with_database
from tests.servers import ROOT, Server, gunicorn

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]


def readme_lines() -> list[str]:
    """The command lines of the README's "Try it" block."""
    text = (ROOT / "README.md").read_text("utf-8")
    block = re.search(r"## Try it\n.*?```sh\n(.*?)```", text, re.DOTALL)
    assert block, "README.md has no Try it block"
    return [
        line
        for line in block.group(1).splitlines()
        if line.strip() and not line.startswith(("#", "URL="))
    ]


@pytest.fixture(scope="module")
def server(postgres_url: str, template_database: str) -> Iterator[Server]:
    """One server for every line, on a database of this module's own."""
    name = f"pastebin_readme_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    try:
        with gunicorn(with_database(postgres_url, name)) as server:
            yield server
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_paste(server: Server, password: str | None) -> dict:
    fields = {"content": "x", **({"password": password} if password else {})}
    status, _, body = server.request(
        "POST",
        "/api/v1/pastes",
        body=json.dumps(fields).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 201
    return json.loads(body)


def test_the_try_it_block_covers_every_kind_of_create_and_read():
    lines = "\n".join(readme_lines())
    for needle in ("-F content=@", "-F 'content=<-'", "--data-binary @-", "-u :", "DELETE"):
        assert needle in lines


@pytest.mark.parametrize("line", readme_lines())
def test_readme_line_runs_as_written(server, line, tmp_path):
    # Every non-2xx reply fails the command, as --fail-with-body does.
    (tmp_path / ".curlrc").write_text("fail-with-body\nsilent\nshow-error\n")
    if "ID" in line:
        password = re.search(r"-u :(\S+)", line)
        paste = fresh_paste(server, password.group(1) if password else None)
        line = line.replace("TOKEN", paste["delete_token"]).replace("ID", paste["id"])
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", line],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "CURL_HOME": str(tmp_path),
            "URL": f"http://127.0.0.1:{server.port}",
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    print(f"$ {line}\n{result.stdout}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_usage_pages_examples_run_as_written(server, tmp_path):
    """`GET /`'s curl lines, with a file for file.txt and a fresh paste for
    ID, TOKEN and PASSWORD."""
    (tmp_path / ".curlrc").write_text("fail-with-body\nsilent\nshow-error\n")
    (tmp_path / "file.txt").write_text("from the usage page\n")
    status, _, page = server.request("GET", "/")
    assert status == 200
    lines = [line.strip() for line in page.decode().splitlines() if line.startswith("  curl")]
    assert len(lines) >= 10
    for line in lines:
        if "NEXT_CURSOR" in line:
            continue
        paste = fresh_paste(server, "pw" if "PASSWORD" in line else None)
        line = (
            line.replace("TOKEN", paste["delete_token"])
            .replace("PASSWORD", "pw")
            .replace("ID", paste["id"])
        )
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", line],
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "CURL_HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, (line, result.stdout + result.stderr)
