"""The dashboard in a real browser: ``sluice import`` loads a small bucket with one bad file,
``sluice serve`` runs as a process, and headless Chromium (driven by Playwright) reads the
figures, the bad file's error and its load page as a person would see them. A relay between the
service and PostgreSQL is then cut, to see the pages say the database is unreachable and come
back by themselves once it answers again.

The browser is the Debian ``chromium`` package (``.ci/run`` installs it); nothing downloads a
browser at run time. Without it the browser tests are skipped, naming what is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.acceptance.conftest import Sluice, describe, scalar
from tests.acceptance.feeds import write_project, write_shard
from tests.fixtures.ports import free_port

pytestmark = pytest.mark.slow

#: Where Debian's chromium package puts the browser (the /usr/bin/chromium wrapper is a shell
#: script that prints harmless noise), then the names it may have on PATH.
CHROMIUM_PATHS = ("/usr/lib/chromium/chromium",)
CHROMIUM_NAMES = ("chromium", "chromium-browser")
LAUNCH_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TOKEN = "dashboard-test-secret"
SHARDS, ROWS = 3, 40
#: Markup in a value of the integer column ``shard``, on line 3: its error message quotes it,
#: and the page must show it as text.
BAD_VALUE = "<b>x&amp;y</b>"
#: Seconds to wait for the service, or for the page to come back after an outage.
DEADLINE = 60.0
#: Milliseconds Playwright waits for an element or a navigation.
BROWSER_TIMEOUT = 15_000


def chromium_binary() -> str | None:
    for path in CHROMIUM_PATHS:
        if os.access(path, os.X_OK):
            return path
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def browser() -> Iterator[Browser]:
    binary = chromium_binary()
    if binary is None:
        pytest.skip(
            "no Chromium browser: neither "
            + ", ".join(CHROMIUM_PATHS)
            + " nor "
            + " / ".join(CHROMIUM_NAMES)
            + " on PATH (Debian: apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=binary, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


# -- the service as a process -------------------------------------------------------------------


@contextmanager
def serving(
    sluice: Sluice, log: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``sluice serve`` on a free port until the block ends; yields its base URL once
    ``/healthz`` answers."""
    port = free_port()
    with log.open("w") as stderr:
        proc = sluice.start("serve", "--port", str(port), *args, env=env, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(base, proc, log), "sluice serve to answer /healthz")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


def healthy(base: str, proc: subprocess.Popen[str], log: Path) -> bool:
    if proc.poll() is not None:
        pytest.fail(f"sluice serve exited with {proc.returncode}:\n{log.read_text()}")
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def wait_for(check: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.2)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


# -- the project ----------------------------------------------------------------------------------


def import_with_one_bad_file(sluice: Sluice, tmp_path: Path) -> Path:
    """Import `SHARDS` good shards of `ROWS` rows and one bad file; return the bad file."""
    bucket = write_project(tmp_path, serving=True)
    for shard in range(1, SHARDS + 1):
        write_shard(bucket, shard, ROWS)
    bad = bucket / "e-0009.csv"
    bad.write_text(f"9000001,9,a\n9000002,9,b\n9000003,{BAD_VALUE},c\n")
    result = sluice.run("import")
    assert result.returncode == 1, describe(result)  # the bad file errored; the rest loaded
    return bad


def bad_file_error(path: Path) -> str:
    """The ledger's message for the bad file (the object as the store names it)."""
    reason = f'invalid input syntax for type integer: "{BAD_VALUE}"'
    return f"file://{path.resolve()}, line 3, column shard: {reason}"


def text(page: Page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def value(page: Page, selector: str) -> str | None:
    return page.locator(selector).get_attribute("data-value")


# -- the dashboard --------------------------------------------------------------------------------


def test_dashboard_shows_loads_rows_and_the_bad_files_error(
    sluice: Sluice, tmp_path: Path, browser: Browser
) -> None:
    bad = import_with_one_bad_file(sluice, tmp_path)
    assert sluice.database_url is not None
    bad_id = int(
        scalar(sluice.database_url, "SELECT id FROM sluice.units WHERE key = %s", [bad.name])
    )
    message = bad_file_error(bad)

    with serving(sluice, tmp_path / "serve.log", "--token", TOKEN) as base:
        assert status_of(f"{base}/") == 401  # the token guards the pages too
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(BROWSER_TIMEOUT)
        styles: list[int] = []
        page.on(
            "response",
            lambda r: styles.append(r.status) if r.url.endswith("/dashboard.css") else None,
        )

        answer = page.goto(f"{base}/?token={TOKEN}")
        assert answer is not None and answer.status == 200
        assert styles == [200], "the stylesheet was not served"
        refresh = page.locator('meta[http-equiv="refresh"]').get_attribute("content")
        assert refresh == "10"

        # the key figures and the feed's units by status
        assert value(page, "#total-loaded") == text(page, "#total-loaded") == str(SHARDS)
        assert value(page, "#total-errored") == "1"
        feed = '[data-feed="events"]'
        assert value(page, f'{feed} [data-status="loaded"]') == str(SHARDS)
        assert value(page, f'{feed} [data-status="errored"]') == "1"
        assert text(page, f'{feed} [data-status="errored"]') == "1"

        # the rows: the run's counts and the throughput of the last 3 hours
        run = page.locator("#runs tr[data-run-id]").first
        assert run.get_attribute("data-status") == "failed"
        assert run.locator('[data-field="rows-in"]').get_attribute("data-value") == str(
            SHARDS * ROWS
        )
        assert run.locator('[data-field="rows-inserted"]').inner_text() == f"{SHARDS * ROWS} new"
        assert run.locator('[data-field="rows-updated"]').get_attribute("data-value") == "0"
        assert value(page, "#total-rows") == str(SHARDS * ROWS)
        assert page.locator("#throughput-rows").get_attribute("data-total") == str(SHARDS * ROWS)
        assert page.locator("#throughput-rows rect.bar").count() >= 1
        hook = run.locator("li[data-view]")
        assert hook.get_attribute("data-view") == "public.view_events"
        assert hook.get_attribute("data-status") == "ok"

        # the bad file's error, in full, its markup shown as text
        error = page.locator(f'#errors li[data-load-id="{bad_id}"]')
        assert error.locator('[data-field="error"]').inner_text() == message
        assert "line 3" in message
        assert error.locator("b").count() == 0
        assert page.locator("#errors li").count() == 1

        screenshot = tmp_path / "dashboard.png"
        page.screenshot(path=screenshot, full_page=True)
        assert_png(screenshot, width=1280)

        # its load page, reached by a link: the cookie set by ?token= carries the token now
        error.get_by_role("link", name=f"load {bad_id}").click()
        page.wait_for_url(f"{base}/loads/{bad_id}")
        assert text(page, "#load-status") == "errored"
        assert page.locator("#load-error").inner_text() == message
        assert text(page, '#error-detail [data-detail="line"]') == "3"
        assert text(page, '#error-detail [data-detail="column"]') == "shard"
        assert text(page, '#load-fields [data-field="key"]') == bad.name
        assert text(page, '#load-fields [data-field="attempts"]') == "1"
        display = page.locator("header.top").evaluate("e => getComputedStyle(e).display")
        assert display == "flex", "the stylesheet did not apply on a page opened by a link"
        page.screenshot(path=tmp_path / "load.png", full_page=True)

        # the loads of a status, from the feed table's link; an unknown load is a 404 page
        page.goto(f"{base}/")
        page.locator(f'{feed} [data-status="errored"] a').click()
        page.wait_for_url(f"{base}/loads?feed=events&status=errored")
        assert page.locator("#loads-table tr[data-load-id]").count() == 1
        missing = page.goto(f"{base}/loads/999999")
        assert missing is not None and missing.status == 404
        assert text(page, "#notice") == "there is no load 999999"


def assert_png(path: Path, *, width: int) -> None:
    """`path` is a PNG image `width` pixels wide and of a plausible size for a whole page."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    found_width, height = struct.unpack(">II", data[16:24])
    assert found_width == width
    assert height >= 600, f"the page is only {height} pixels tall"
    assert 20_000 < len(data) < 20_000_000, f"{len(data)} bytes"


# -- the database unreachable ---------------------------------------------------------------------


class Relay:
    """A TCP relay from a local port to the test's PostgreSQL, which the test can cut (the
    service behind it loses its database) and restore on the same port."""

    def __init__(self, database_url: str) -> None:
        self.upstream = conninfo_to_dict(database_url)
        self.port = free_port()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        params = {k: v for k, v in self.upstream.items() if k not in {"host", "hostaddr", "port"}}
        return make_conninfo("", **params, host="127.0.0.1", port=str(self.port))

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.1)
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            open_sockets, self._sockets = self._sockets, set()
        for sock in open_sockets:
            _close(sock)

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while not self._stop.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                self._relay(client)

    def _relay(self, client: socket.socket) -> None:
        client.settimeout(None)
        try:
            server = self._connect()
        except OSError:
            _close(client)
            return
        with self._lock:
            self._sockets |= {client, server}
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def _connect(self) -> socket.socket:
        host = str(self.upstream.get("host") or "127.0.0.1")
        port = int(self.upstream.get("port") or 5432)
        if host.startswith("/"):  # the embedded server listens on a Unix socket only
            unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            unix.connect(f"{host}/.s.PGSQL.{port}")
            return unix
        return socket.create_connection((host, port), timeout=5)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):  # already shut down, or never connected
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def test_dashboard_says_the_database_is_unreachable_and_comes_back(
    sluice: Sluice, tmp_path: Path, browser: Browser
) -> None:
    bucket = write_project(tmp_path)
    write_shard(bucket, 1, ROWS)
    sluice.ok("import")
    assert sluice.database_url is not None
    relay = Relay(sluice.database_url)
    relay.start()
    env = {"SLUICE_DATABASE_URL": relay.url}
    try:
        with serving(sluice, tmp_path / "serve.log", env=env) as base:
            page = browser.new_page()
            page.set_default_timeout(BROWSER_TIMEOUT)
            answer = page.goto(f"{base}/")
            assert answer is not None and answer.status == 200
            assert value(page, "#total-loaded") == "1"

            relay.cut()
            for path in ("/", "/loads", "/loads/1"):
                answer = page.goto(f"{base}{path}")
                assert answer is not None and answer.status == 503, path
                notice = text(page, "#notice")
                assert notice.startswith("the database is unreachable: "), notice
                assert "Traceback" not in page.content()
                assert answer.headers["content-type"].startswith("text/html")
            page.goto(f"{base}/")  # left open on the overview, which reloads itself

            relay.start()
            # no one reloads the page: its own refresh brings the ledger back
            page.locator("#total-loaded").wait_for(timeout=DEADLINE * 1000)
            assert value(page, "#total-loaded") == "1"
            assert page.locator("#notice").count() == 0
    finally:
        relay.cut()
