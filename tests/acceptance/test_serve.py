"""``sluice serve`` as a real process (uvicorn), over real HTTP: it keeps answering while a large
import runs in another process, it rides out a PostgreSQL crash and restart, and it refuses to
listen beyond the loopback interface without a token."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.db.embedded import EmbeddedServer
from tests.acceptance.conftest import Sluice, describe
from tests.fixtures.ports import free_port

#: Seconds `sluice serve` may take to answer its first request.
START_TIMEOUT = 30.0
#: The service waits this long for a database connection before answering 503.
POOL_TIMEOUT = 3.0
#: What "quickly" means for an answer while the database is down: the pool's wait, plus slack.
DOWN_ANSWER_SECONDS = POOL_TIMEOUT + 2.0
#: Seconds the service may take to answer 200 again once the database is back.
RECOVERY_SECONDS = 20.0
SHARDS = 8
ROWS_PER_SHARD = 20_000
TOKEN = "acceptance-token"


@dataclass
class Served:
    """A running ``sluice serve`` and an HTTP client of it."""

    proc: subprocess.Popen[str]
    client: httpx.Client
    log: Path

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serving(
    sluice: Sluice, *args: str, env: dict[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[Served]:
    """``sluice serve --port <free>`` until the block ends (then SIGTERM: it must exit 0)."""
    port = free_port()
    log = sluice.cwd / f"serve-{port}.log"
    with log.open("w") as sink:
        # stderr to a file: a pipe nobody reads would fill during an outage and stall the server
        proc = sluice.start("serve", "--port", str(port), *args, env=env, stderr=sink)
    client = httpx.Client(base_url=f"http://{host}:{port}", timeout=30.0)
    served = Served(proc, client, log)
    try:
        wait_until_up(served)
        yield served
    finally:
        client.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise
    assert code == 0, f"sluice serve exited {code}:\n{served.output()}"


def wait_until_up(served: Served) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if served.proc.poll() is not None:
            pytest.fail(f"sluice serve exited {served.proc.returncode}:\n{served.output()}")
        try:
            if served.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"sluice serve did not answer within {START_TIMEOUT:.0f} s:\n{served.output()}")


# -- answering while a large import runs ----------------------------------------------------------


def write_events_project(folder: Path) -> Path:
    """A project with one feed, ``events``, over `SHARDS` CSV shards of `ROWS_PER_SHARD` rows."""
    bucket = folder / "bucket"
    bucket.mkdir()
    (folder / "sluice.toml").write_text(
        "[feeds.events]\n"
        'source = "bucket"\n'
        'table = "events"\n'
        'columns = ["n bigint not null", "v text"]\n'
        'key = ["n"]\n'
    )
    for shard in range(SHARDS):
        rows = range(shard * ROWS_PER_SHARD, (shard + 1) * ROWS_PER_SHARD)
        text = "".join(f"{n},value number {n} of shard {shard}\n" for n in rows)
        (bucket / f"e-{shard:02d}.csv").write_text(text)
    return bucket


@dataclass
class Probe:
    """What the service answered while something else ran."""

    answers: list[tuple[str, int, float, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def ask(self, served: Served, path: str) -> None:
        started = time.monotonic()
        try:
            response = served.get(path, timeout=10.0)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            self.failures.append(f"{path}: {type(exc).__name__}: {exc}")
            return
        self.answers.append((path, response.status_code, time.monotonic() - started, body))


def test_it_keeps_answering_while_a_large_import_runs(sluice: Sluice, tmp_path: Path) -> None:
    write_events_project(tmp_path)
    with serving(sluice) as served:
        probe = Probe()
        importing = sluice.start("import", stderr=subprocess.DEVNULL)
        while importing.poll() is None:
            probe.ask(served, "/api/status")
            probe.ask(served, "/healthz")
        assert importing.wait(120) == 0
        final = served.get("/api/status").json()

    assert probe.failures == []
    statuses = [body for path, _, _, body in probe.answers if path == "/api/status"]
    assert len(statuses) >= 5, f"only {len(statuses)} answers while the import ran"
    assert {(path, code) for path, code, _, _ in probe.answers} == {
        ("/api/status", 200),
        ("/healthz", 200),
    }
    sections = {"loads", "leased", "errors", "runs", "targets", "days"}
    assert all(set(body) == sections for body in statuses)
    assert all(body == {"ok": True} for path, _, _, body in probe.answers if path == "/healthz")
    slowest = max(seconds for _, _, seconds, _ in probe.answers)
    assert slowest < 2.0, f"an answer took {slowest:.2f} s during the import"
    # Some answers came while the import was at work, not only before or after it.
    in_progress = [
        body
        for body in statuses
        if body["leased"] or 0 < body["loads"].get("events", {}).get("loaded", 0) < SHARDS
    ]
    assert in_progress, "no answer saw the import in progress"
    assert final["loads"] == {"events": {"loaded": SHARDS}}
    assert final["runs"][0]["rows"]["inserted"] == SHARDS * ROWS_PER_SHARD


# -- a PostgreSQL crash and restart ---------------------------------------------------------------


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A PostgreSQL of this test alone, which it may crash."""
    server = EmbeddedServer(tmp_path / "pg")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def crash(server: EmbeddedServer) -> None:
    """Stop the server the way a crash does: an immediate shutdown (SIGQUIT to the
    postmaster: every backend ends at once, no checkpoint; the next start recovers)."""
    pid = int((server.pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"the PostgreSQL postmaster {pid} did not stop")


def timed(served: Served, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = served.get(path)
    return response, time.monotonic() - started


def wait_for_200(served: Served, path: str) -> float:
    """Seconds until `path` answers 200 (failing after `RECOVERY_SECONDS`)."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_SECONDS:
        if served.get(path).status_code == 200:
            return time.monotonic() - started
        time.sleep(0.2)
    pytest.fail(f"{path} did not answer 200 within {RECOVERY_SECONDS:.0f} s:\n{served.output()}")


def test_it_rides_out_a_postgresql_crash_and_restart(
    sluice: Sluice, private_server: EmbeddedServer
) -> None:
    on_private = sluice.with_database(private_server.url)
    with serving(on_private) as served:
        assert served.get("/readyz").json() == {"ok": True, "database": "reachable"}
        before = served.get("/api/status")
        assert before.status_code == 200

        crash(private_server)
        for _ in range(2):
            ready, seconds = timed(served, "/readyz")
            assert ready.status_code == 503
            body = ready.json()
            assert (body["ok"], body["database"]) == (False, "unreachable")
            assert body["error"]
            assert seconds < DOWN_ANSWER_SECONDS, f"/readyz took {seconds:.1f} s"

            status, seconds = timed(served, "/api/status")
            assert status.status_code == 503
            [(key, message)] = status.json().items()
            assert key == "error"
            assert message.startswith("the database is unreachable: ")
            assert seconds < DOWN_ANSWER_SECONDS, f"/api/status took {seconds:.1f} s"

            alive, seconds = timed(served, "/healthz")  # the process itself is fine
            assert alive.status_code == 200
            assert seconds < 1.0

        assert EmbeddedServer(private_server.state_dir).start() == private_server.url
        wait_for_200(served, "/readyz")
        assert served.get("/readyz").json() == {"ok": True, "database": "reachable"}
        after = served.get("/api/status")
        assert after.status_code == 200, after.text
        assert after.json()["loads"] == before.json()["loads"]


# -- the token ------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_beyond_the_loopback_without_a_token_it_refuses_to_start(sluice: Sluice, host: str) -> None:
    result = sluice.run("serve", "--host", host, "--port", str(free_port()), timeout=60)
    assert result.returncode == 2, describe(result)
    [line] = result.stderr.splitlines()
    assert line.startswith(f"sluice: sluice serve on {host} would be open to the network")
    assert "SLUICE_HTTP_TOKEN" in line
    assert result.stdout == ""


def test_beyond_the_loopback_with_a_token_every_request_carries_it(sluice: Sluice) -> None:
    with serving(sluice, "--host", "0.0.0.0", env={"SLUICE_HTTP_TOKEN": TOKEN}) as served:
        assert served.get("/healthz").status_code == 200
        refused = served.get("/api/status")
        assert refused.status_code == 401
        assert refused.json()["error"].startswith("a token is required")
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert served.get("/api/status", headers=bearer).status_code == 200
        assert served.get("/metrics", headers=bearer).status_code == 200


def test_the_service_stops_cleanly_on_sigterm_while_requests_run(sluice: Sluice) -> None:
    with serving(sluice) as served:
        stop = threading.Event()
        answered: list[int] = []

        def ask() -> None:
            while not stop.is_set():
                try:
                    answered.append(served.get("/api/status").status_code)
                except httpx.HTTPError:
                    return

        asker = threading.Thread(target=ask)
        asker.start()
        time.sleep(0.5)
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(30) == 0
        stop.set()
        asker.join(30)
    assert answered and set(answered) == {200}
