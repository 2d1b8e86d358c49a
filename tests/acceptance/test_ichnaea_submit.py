"""The Ichnaea submit API through ``sluice ichnaea serve`` (uvicorn, a real process) and a real
HTTP client: every route, status code and error body; keys, sampling and daily limits; the
back-pressure and outage 503s; and generated requests against the OpenAPI paths — no 500, and
every report a 2xx answer accepted is in the stream, exactly as the parser makes it."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings

from sluice.recipes.ichnaea.api import openapi_paths
from sluice.recipes.ichnaea.endpoints import ENDPOINTS
from tests.acceptance.conftest import Sluice, describe, sluice_command
from tests.fixtures.fix_db import fresh_database
from tests.fixtures.fix_redis import forget
from tests.fixtures.ports import free_port

START_TIMEOUT = 30.0
CORS = {"access-control-allow-origin": "*", "access-control-max-age": "2592000"}
WIFI = {"macAddress": "ab:cd:ef:01:23:45", "signalStrength": -70}
REPORT = {"position": {"latitude": 51.5, "longitude": -0.1}, "wifiAccessPoints": [WIFI]}
DEAD_REDIS = "redis://127.0.0.1:1/0"


def ichnaea_command() -> list[str]:
    """``sluice ichnaea``."""
    return [*sluice_command(), "ichnaea"]


def run_ichnaea(
    sluice: Sluice, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ichnaea_command(), *args],
        cwd=sluice.cwd,
        env=sluice.env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(sluice: Sluice, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = run_ichnaea(sluice, *args, env=env)
    assert result.returncode == 0, describe(result)
    return result


@dataclass
class Served:
    """A running ``sluice ichnaea serve``, an HTTP client of it and its Redis keys."""

    proc: subprocess.Popen[str]
    client: httpx.Client
    log: Path
    redis_url: str
    prefix: str

    @property
    def stream(self) -> str:
        return f"{self.prefix}:intake"

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def last_id(self) -> str:
        with self.redis() as r:
            found = r.xrevrange(self.stream, count=1)
        return str(found[0][0]) if found else "0-0"

    def entries_after(self, after: str) -> list[dict[str, str]]:
        with self.redis() as r:
            return [fields for _, fields in r.xrange(self.stream, min=f"({after}")]

    def counters(self) -> dict[str, int]:
        with self.redis() as r:
            return {k: int(v) for k, v in r.hgetall(f"{self.prefix}:counters").items()}


@contextmanager
def serving(
    sluice: Sluice, redis_url: str, *, command: list[str] | None = None, **env: str
) -> Iterator[Served]:
    port = free_port()
    prefix = f"sluice-test:{uuid.uuid4().hex[:8]}"
    extra = {"SLUICE_REDIS_URL": redis_url, "SLUICE_ICHNAEA_REDIS_PREFIX": prefix, **env}
    log = sluice.cwd / f"ichnaea-{port}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [*(command or [*ichnaea_command(), "serve"]), "--port", str(port)],
            cwd=sluice.cwd,
            env=sluice.env(extra),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            text=True,
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0)
    served = Served(proc, client, log, redis_url, prefix)
    try:
        _wait_until_up(served)
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
        _forget(redis_url, prefix)
        assert code == 0, f"sluice ichnaea serve exited {code}:\n{log.read_text()}"


def _wait_until_up(served: Served) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if served.proc.poll() is not None:
            pytest.fail(f"the service exited {served.proc.returncode}:\n{served.log.read_text()}")
        try:
            if served.client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the service did not answer within {START_TIMEOUT:.0f} s")


def _forget(redis_url: str, prefix: str) -> None:
    if redis_url == DEAD_REDIS:
        return
    forget(redis_url, prefix)


# -- one service for the module -------------------------------------------------------------------

#: Keys added before the service starts (so that no lookup caches them as unknown first).
KEYS = {"half-key": ("--sample-submit", "50"), "none-key": ("--sample-submit", "0")}
LIMITED = "limited-key"


@pytest.fixture(scope="module")
def module_sluice(
    server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sluice]:
    with fresh_database(server_url, "sluice_t", template_db) as url:
        yield Sluice(tmp_path_factory.mktemp("ichnaea"), url)


@pytest.fixture(scope="module")
def served(module_sluice: Sluice, redis_url: str) -> Iterator[Served]:
    env = {"SLUICE_REDIS_URL": redis_url}
    ok(module_sluice, "keys", "add", "known-key", env=env)
    ok(module_sluice, "keys", "add", LIMITED, "--maxreq", "2", env=env)
    for key, args in KEYS.items():
        ok(module_sluice, "keys", "add", key, *args, env=env)
    with serving(module_sluice, redis_url) as running:
        yield running


def post(served: Served, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json", **kwargs.pop("headers", {})}
    return served.client.post(path, content=content, headers=headers, **kwargs)


def assert_error(response: httpx.Response, code: int, reason: str, domain: str = "global") -> Any:
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    error = body["error"]
    assert set(body) == {"error"}
    assert error["code"] == code
    assert [(e["domain"], e["reason"]) for e in error["errors"]] == [(domain, reason)]
    assert isinstance(error["message"], str) and error["message"]
    assert_cors(response)
    return error


def assert_cors(response: httpx.Response) -> None:
    for name, value in CORS.items():
        assert response.headers.get(name) == value, (name, dict(response.headers))


# -- success --------------------------------------------------------------------------------------


def test_v2_geosubmit_answers_200_empty_object_and_queues_each_report(served: Served) -> None:
    before = served.last_id()
    second = {"cellTowers": [{"radioType": "umts", "cellId": 1}], "position": {"source": "fused"}}
    response = post(served, "/v2/geosubmit", {"items": [REPORT, second, {"position": {}}]})
    assert response.status_code == 200
    assert response.json() == {}
    assert_cors(response)
    entries = served.entries_after(before)
    assert [json.loads(e["report"]) for e in entries] == [
        REPORT,
        {"cellTowers": [{"radioType": "wcdma", "cellId": 1}], "position": {"source": "fused"}},
    ]
    assert [e["source"] for e in entries] == ["gnss", "fused"]
    assert all("api_key" not in e for e in entries)


def test_integers_beyond_64_bits_and_nan_literals_are_read_as_the_seed_reads_them(
    served: Served,
) -> None:
    # The fast JSON parser rounds integers beyond 64 bits and refuses NaN: the intake falls
    # back to the exact parser, so the queued report is the one the seed would queue.
    huge = 18446744073709551617
    before = served.last_id()
    body = (
        b'{"items": [{"cellTowers": [{"cellId": %d, "age": 1.5}], '
        b'"position": {"latitude": NaN, "longitude": 2.5, "accuracy": 1e400}}]}' % huge
    )
    response = post(served, "/v2/geosubmit", body)
    assert response.status_code == 200, response.text
    (entry,) = served.entries_after(before)
    assert json.loads(entry["report"]) == {
        "cellTowers": [{"cellId": huge, "age": 1}],
        "position": {"longitude": 2.5},
    }


def test_v1_geosubmit_answers_200_and_queues_v2(served: Served) -> None:
    before = served.last_id()
    flat = {"latitude": 1.5, "longitude": 2.5, "cellTowers": [{"cellId": 3, "psc": 4}]}
    response = post(served, "/v1/geosubmit", {"items": [flat]})
    assert response.status_code == 200 and response.json() == {}
    (entry,) = served.entries_after(before)
    assert json.loads(entry["report"]) == {
        "position": {"latitude": 1.5, "longitude": 2.5},
        "cellTowers": [{"cellId": 3, "primaryScramblingCode": 4}],
    }


def test_v1_submit_answers_204_empty_and_queues_v2(served: Served) -> None:
    before = served.last_id()
    response = post(served, "/v1/submit", {"items": [{"lat": 1.0, "wifi": [{"key": "ab:cd"}]}]})
    assert response.status_code == 204
    assert response.content == b""
    assert_cors(response)
    (entry,) = served.entries_after(before)
    assert json.loads(entry["report"]) == {
        "position": {"latitude": 1.0},
        "wifiAccessPoints": [{"macAddress": "ab:cd"}],
    }


def test_gzip_body(served: Served) -> None:
    before = served.last_id()
    body = gzip.compress(json.dumps({"items": [REPORT]}).encode())
    response = post(served, "/v2/geosubmit", body, headers={"content-encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert len(served.entries_after(before)) == 1


def test_a_large_batch_is_queued_whole(served: Served) -> None:
    before = served.last_id()
    reports = [{**REPORT, "timestamp": 1_700_000_000_000 + i} for i in range(3000)]
    body = json.dumps({"items": reports}).encode()
    assert len(body) > 64 << 10  # parsed in a thread
    assert post(served, "/v2/geosubmit", body).status_code == 200
    queued = served.entries_after(before)
    assert [json.loads(e["report"])["timestamp"] for e in queued] == [
        r["timestamp"] for r in reports
    ]


def test_reports_without_networks_are_counted(served: Served) -> None:
    before = served.counters().get("dropped:no_networks", 0)
    response = post(served, "/v2/geosubmit", {"items": [{"position": {"latitude": 1.0}}]})
    assert response.status_code == 200
    assert served.counters()["dropped:no_networks"] == before + 1


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [e.path for e in ENDPOINTS])
def test_bad_json_is_400_parse_error_with_decode_details(served: Served, path: str) -> None:
    error = assert_error(post(served, path, b'{"items": [}'), 400, "parseError")
    assert error["details"]["decode"]


def test_wrong_types_are_400_with_validation_details(served: Served) -> None:
    before = served.last_id()
    body = {"items": [REPORT, {"wifiAccessPoints": [{"macAddress": 10}]}]}
    error = assert_error(post(served, "/v2/geosubmit", body), 400, "parseError")
    assert error["details"] == {
        "validation": {"items.1.wifiAccessPoints.0.macAddress": "a number is not a string"}
    }
    assert served.entries_after(before) == []  # the whole request is refused


def test_empty_body_is_400_without_details(served: Served) -> None:
    error = assert_error(post(served, "/v2/geosubmit", b""), 400, "parseError")
    assert "details" not in error


def test_broken_gzip_and_bad_charset_are_400(served: Served) -> None:
    gz = {"content-encoding": "gzip"}
    assert_error(post(served, "/v2/geosubmit", b"plain", headers=gz), 400, "parseError")
    latin = {"content-type": "application/json; charset=utf-8"}
    assert_error(
        post(served, "/v2/geosubmit", b'{"items": ["\xe9"]}', headers=latin), 400, "parseError"
    )


def test_too_large_bodies_are_413(served: Served) -> None:
    assert_error(post(served, "/v2/geosubmit", b" " * (2 << 20)), 413, "payloadTooLarge")
    bomb = gzip.compress(b" " * (40 << 20))
    response = post(served, "/v2/geosubmit", bomb, headers={"content-encoding": "gzip"})
    assert_error(response, 413, "payloadTooLarge")


@pytest.mark.parametrize("path", [e.path for e in ENDPOINTS])
def test_get_is_400_without_details_and_head_is_400(served: Served, path: str) -> None:
    error = assert_error(served.client.get(path), 400, "parseError")
    assert "details" not in error
    head = served.client.head(path)
    assert head.status_code == 400
    assert_cors(head)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(served: Served, method: str) -> None:
    response = served.client.request(method, "/v2/geosubmit", content=b"{}")
    assert_error(response, 405, "methodNotAllowed")
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"


@pytest.mark.parametrize("path", [e.path for e in ENDPOINTS])
def test_options_answers_the_cors_headers(served: Served, path: str) -> None:
    response = served.client.options(path, headers={"origin": "https://example.org"})
    assert response.status_code == 200
    assert response.content == b""
    assert_cors(response)


# -- keys, sampling, daily limits -----------------------------------------------------------------


def test_a_known_key_is_queued_with_the_report(served: Served) -> None:
    before = served.last_id()
    response = post(served, "/v2/geosubmit", {"items": [REPORT]}, params={"key": "known-key"})
    assert response.status_code == 200
    assert [e.get("api_key") for e in served.entries_after(before)] == ["known-key"]


@pytest.mark.parametrize("key", ["unknown-key", "bad key!", "abc", "x" * 41])
def test_unknown_or_malformed_keys_count_as_no_key(served: Served, key: str) -> None:
    before = served.last_id()
    response = post(served, "/v2/geosubmit", {"items": [REPORT]}, params={"key": key})
    assert response.status_code == 200
    (entry,) = served.entries_after(before)
    assert "api_key" not in entry


def test_sample_rate_zero_drops_everything_with_success(served: Served) -> None:
    before, sampled = served.last_id(), served.counters().get("sampled_out", 0)
    for path in ("/v2/geosubmit", "/v1/geosubmit"):
        response = post(served, path, {"items": [REPORT, REPORT]}, params={"key": "none-key"})
        assert response.status_code == 200 and response.json() == {}
    assert served.entries_after(before) == []
    assert served.counters()["sampled_out"] == sampled + 4


def test_sample_rate_half_keeps_whole_requests_about_half_the_time(served: Served) -> None:
    before = served.last_id()
    for _ in range(60):
        response = post(
            served, "/v2/geosubmit", {"items": [REPORT] * 2}, params={"key": "half-key"}
        )
        assert response.status_code == 200
    kept = len(served.entries_after(before))
    assert kept % 2 == 0  # whole requests, never a part of one
    assert 20 <= kept // 2 <= 40


def test_daily_limit_per_key_and_path_is_403(served: Served) -> None:
    params = {"key": LIMITED}
    for _ in range(2):
        assert post(served, "/v2/geosubmit", {"items": [REPORT]}, params=params).status_code == 200
    error = assert_error(
        post(served, "/v2/geosubmit", {"items": [REPORT]}, params=params),
        403,
        "dailyLimitExceeded",
        domain="usageLimits",
    )
    assert LIMITED not in json.dumps(error)
    # another path has its own count
    assert post(served, "/v1/geosubmit", {"items": [REPORT]}, params=params).status_code == 200


# -- back-pressure and outages --------------------------------------------------------------------


def test_backlog_over_the_bound_is_503_with_retry_after(
    module_sluice: Sluice, redis_url: str
) -> None:
    env = {"SLUICE_ICHNAEA_MAX_BACKLOG": "2", "SLUICE_ICHNAEA_RETRY_AFTER": "17"}
    with serving(module_sluice, redis_url, **env) as backlogged:
        assert post(backlogged, "/v2/geosubmit", {"items": [REPORT] * 2}).status_code == 200
        response = post(backlogged, "/v2/geosubmit", {"items": [REPORT]})
        assert_error(response, 503, "serviceUnavailable")
        assert response.headers["retry-after"] == "17"
        assert backlogged.counters()["dropped:backlog"] == 1
        status = json.loads(
            ok(
                module_sluice,
                "status",
                "--json",
                env={
                    "SLUICE_REDIS_URL": redis_url,
                    "SLUICE_ICHNAEA_REDIS_PREFIX": backlogged.prefix,
                },
            ).stdout
        )
        assert status["depth"] == 2
        assert status["accepted"] == 2
        assert status["dropped"] == {"backlog": 1}
        assert status["oldest_age_seconds"] >= 0


def test_unreachable_redis_is_503_quickly(module_sluice: Sluice) -> None:
    with serving(module_sluice, DEAD_REDIS) as down:
        started = time.monotonic()
        response = post(down, "/v2/geosubmit", {"items": [REPORT]})
        assert time.monotonic() - started < 5
        error = assert_error(response, 503, "serviceUnavailable")
        assert "127.0.0.1" not in json.dumps(error)  # the queue's address is not the client's
        assert response.headers["retry-after"].isdigit()
        # nothing to queue: nothing refused
        assert post(down, "/v2/geosubmit", {"items": []}).status_code == 200
    result = run_ichnaea(module_sluice, "status", env={"SLUICE_REDIS_URL": DEAD_REDIS})
    assert result.returncode == 1 and "failed" in result.stderr, describe(result)


def test_a_token_guards_the_service_but_not_the_submit_api(
    module_sluice: Sluice, redis_url: str
) -> None:
    with serving(module_sluice, redis_url, SLUICE_HTTP_TOKEN="svc-token") as guarded:
        assert post(guarded, "/v2/geosubmit", {"items": [REPORT]}).status_code == 200
        assert guarded.client.options("/v1/submit").status_code == 200
        assert guarded.client.get("/api/feeds").status_code == 401
        bearer = {"authorization": "Bearer svc-token"}
        assert guarded.client.get("/api/feeds", headers=bearer).status_code == 200


# -- generated requests ---------------------------------------------------------------------------

SCHEMA = schemathesis.openapi.from_dict(
    {"openapi": "3.0.3", "info": {"title": "ichnaea", "version": "1"}, "paths": openapi_paths()}
)
PARSERS = {e.path: e.parser for e in ENDPOINTS}


# GET takes no input to generate (its one answer, 400, is a contract test above).
@pytest.mark.parametrize("path", [e.path for e in ENDPOINTS])
def test_generated_requests_never_500_and_every_accepted_report_is_queued(
    served: Served, path: str
) -> None:
    operation = SCHEMA[path]["POST"]
    base_url = str(served.client.base_url)
    queued_in_all: list[int] = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        # The same cases on every run: whether one of them is queued is not left to chance.
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: Any) -> None:
        before = served.last_id()
        response = case.call_and_validate(base_url=base_url)
        assert response.status_code < 500, response.text
        queued = [json.loads(e["report"]) for e in served.entries_after(before)]
        if response.status_code in (200, 204) and case.body is not None:
            expected = [r.report for r in PARSERS[path](case.body).reports]
            assert _without_now(queued) == _without_now(expected)
        else:
            assert queued == []
        queued_in_all.append(len(queued))

    check()
    assert sum(queued_in_all) > 0, "no generated report was ever queued: the check saw nothing"


def _without_now(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reports with a timestamp taken as "now" made equal (the server's now is not ours)."""
    return [{k: v for k, v in r.items() if k != "timestamp"} for r in reports]


def test_sluice_serve_mounts_the_submit_api_when_the_project_enables_it(
    module_sluice: Sluice, redis_url: str
) -> None:
    (module_sluice.cwd / "sluice.toml").write_text("[ichnaea]\nenabled = true\n")
    try:
        with serving(module_sluice, redis_url, command=[*sluice_command(), "serve"]) as served:
            after = served.last_id()
            response = post(served, "/v2/geosubmit", {"items": [REPORT]})
            assert (response.status_code, response.json()) == (200, {})
            [entry] = served.entries_after(after)
            assert json.loads(entry["report"])["wifiAccessPoints"] == [WIFI]
            described = served.client.get("/openapi.json").json()
            assert "/v2/geosubmit" in described["paths"]
            assert served.client.get("/api/status").status_code == 200  # the service itself
    finally:
        (module_sluice.cwd / "sluice.toml").unlink()
