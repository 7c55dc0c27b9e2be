"""A browser on another origin calls the service: headless Chromium driven by
Selenium loads a page from a second local server and runs `fetch` against a
real gunicorn. Needs Debian's chromium and chromium-driver (.ci/run installs
them); skipped without them."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.servers import free_port, gunicorn

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver")

# The paste application's page: create, read the headers, read raw, delete.
PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>paste app</title>
<script>
async function run(api) {
  const steps = {};
  try {
    const created = await fetch(api + "/api/v1/pastes", {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "text/plain"},
      body: JSON.stringify({content: "from the browser \\u{1F600}", expires_in: 600}),
    });
    steps.create = created.status;
    steps.location = created.headers.get("Location");
    steps.token = created.headers.get("X-Delete-Token");
    steps.requestId = created.headers.get("X-Request-ID");
    const raw = await fetch(steps.location + "/raw");
    steps.read = raw.status;
    steps.etag = raw.headers.get("ETag");
    steps.content = await raw.text();
    const deleted = await fetch(steps.location, {
      method: "DELETE",
      headers: {"Authorization": "Bearer " + steps.token},
    });
    steps.delete = deleted.status;
    // Past the browser's cache, which may keep a read for its max-age.
    steps.after = (await fetch(steps.location + "/raw", {cache: "no-store"})).status;
  } catch (error) {
    steps.error = String(error);
  }
  return steps;
}
</script>
"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def page_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def run_page(browser: Any, page_origin: str, api: str) -> dict[str, Any]:
    browser.get(page_origin + "/")
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1]; run(arguments[0]).then(done);", api
    )


def test_a_page_on_an_allowed_origin_creates_reads_and_deletes(browser, database_url):
    with page_server() as page_port:
        allowed = f"http://127.0.0.1:{page_port}"
        with gunicorn(database_url, CORS_ALLOW_ORIGINS=allowed) as server:
            api = f"http://127.0.0.1:{server.port}"
            steps = run_page(browser, allowed, api)
    print("browser on an allowed origin:", steps)
    assert "error" not in steps, steps
    assert steps["create"] == 201
    assert steps["location"].startswith(f"{api}/api/v1/pastes/")
    assert steps["token"]
    assert steps["requestId"]
    assert (steps["read"], steps["content"]) == (200, "from the browser \U0001f600")
    assert steps["etag"]
    assert (steps["delete"], steps["after"]) == (204, 404)


def test_a_page_on_another_origin_is_refused_by_the_browser(browser, database_url):
    with page_server() as page_port, page_server() as other_port:
        allowed = f"http://127.0.0.1:{page_port}"
        with gunicorn(database_url, CORS_ALLOW_ORIGINS=allowed) as server:
            api = f"http://127.0.0.1:{server.port}"
            steps = run_page(browser, f"http://127.0.0.1:{other_port}", api)
    print("browser on another origin:", steps)
    assert "create" not in steps
    assert "Failed to fetch" in steps["error"]
