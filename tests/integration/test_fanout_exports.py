"""The fan-out on a real Redis and PostgreSQL, with real exporters: a geosubmit target (an
HTTP server process), a local folder and an S3 server process. Exact reports and bodies per
export, skip filters, batching by size and age, retries, dead letters and redrive, a batch
taken over from a consumer that died, status and the Prometheus text."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import redis

from sluice.api import Engine
from sluice.errors import ConfigError, TransientError
from sluice.fanout import deliver
from sluice.fanout.configs import ExportConfig
from sluice.fanout.exporters import EXPORTERS, Batch, ExportContext, register
from sluice.fanout.names import Names
from sluice.fanout.status import metrics_text
from sluice.fanout.worker import FanoutWorker
from sluice.intake.queue import IntakeQueue, QueueOptions, connect
from sluice.intake.submission import Report
from sluice.recipes.ichnaea import fanout as api
from sluice.recipes.ichnaea.options import IchnaeaOptions
from sluice.store import S3Options
from tests.fixtures.fix_redis import ichnaea_options
from tests.fixtures.fix_s3 import s3_client
from tests.fixtures.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def options(redis_url: str) -> Iterator[IchnaeaOptions]:
    with ichnaea_options(redis_url, "sluice-test") as chosen:
        yield chosen


class Target:
    """A geosubmit target process and what it received."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.port = free_port()
        self.log = tmp / f"target-{self.port}.jsonl"
        self.log.touch()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.test_fanout_target",
                str(self.port),
                str(self.log),
                *args,
            ],
            cwd=ROOT,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, "no target"
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/geosubmit"

    def mode(self, **state: Any) -> None:
        httpx.post(f"http://127.0.0.1:{self.port}/mode", json=state).raise_for_status()

    def posts(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def delivered(self) -> list[dict[str, Any]]:
        """The items of the POSTs answered 200, each batch once (by its idempotency key)."""
        seen: dict[str, list[dict[str, Any]]] = {}
        for post in self.posts():
            if post["status"] == 200:
                seen.setdefault(post["idempotency_key"], post["items"])
        return [item for items in seen.values() for item in items]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Target]:
    running = Target(tmp_path)
    yield running
    running.stop()


def report(n: int, source: str = "gnss") -> Report:
    return Report(
        {
            "timestamp": 1_700_000_000_000 + n,
            "position": {"latitude": 51.0 + n / 1000, "longitude": -0.1, "source": source},
            "wifiAccessPoints": [{"macAddress": f"ab:cd:ef:00:{n // 256:02x}:{n % 256:02x}"}],
        },
        source,
    )


def submit(options: IchnaeaOptions, reports: list[Report], key: str | None = None) -> None:
    queue_options = QueueOptions(redis_url=options.redis_url, prefix=options.redis_prefix)

    async def put() -> None:
        client = connect(queue_options)
        try:
            await IntakeQueue(client, queue_options).put(reports, key, {})
        finally:
            await client.aclose()

    asyncio.run(put())


def drain(engine: Engine, options: IchnaeaOptions, s3: S3Options | None = None) -> Any:
    return api.run_fanout(engine.db, options, threading.Event(), s3=s3, once=True)


def status_of(engine: Engine, options: IchnaeaOptions) -> dict[str, dict[str, Any]]:
    return {s.name: s.as_dict() for s in api.delivery_status(engine.db, options)}


def bucket_reports(folder: Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.rglob("*.json.gz")):
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        found[str(path.relative_to(folder))] = [json.loads(line) for line in lines]
    return found


def test_every_export_gets_every_report_once(
    engine: Engine, options: IchnaeaOptions, target: Target, tmp_path: Path
) -> None:
    folder = tmp_path / "bucket"
    api.add_export(engine.db, ExportConfig("count", "dummy", batch=7))
    api.add_export(engine.db, ExportConfig("geo", "geosubmit", url=target.url, batch=10))
    api.add_export(
        engine.db,
        ExportConfig("files", "bucket", url=f"{folder}/{{source}}/{{api_key}}/{{year}}", batch=50),
    )
    submit(options, [report(n) for n in range(25)], key="key-a")
    submit(options, [report(n, "fused") for n in range(25, 30)])
    result = drain(engine, options)

    assert result.fanned_out == 30 and result.copies == 90
    expected = [report(n).report for n in range(25)] + [
        report(n, "fused").report for n in range(25, 30)
    ]
    posts = target.posts()
    assert [len(p["items"]) for p in posts] == [10, 10, 10]
    assert all(p["user_agent"] == "ichnaea" for p in posts)
    assert all(p["content_encoding"] == "gzip" for p in posts)
    assert all(p["content_type"] == "application/json" for p in posts)
    assert target.delivered() == expected
    year = time.gmtime().tm_year
    files = bucket_reports(folder)
    assert sorted(files) == [f"fused/no_key/{year}/{name}" for name in _names(files, "fused")] + [
        f"gnss/key-a/{year}/{name}" for name in _names(files, "gnss")
    ]
    assert [r for k in sorted(files) if k.startswith("gnss") for r in files[k]] == expected[:25]
    assert [r for k in sorted(files) if k.startswith("fused") for r in files[k]] == expected[25:]
    status = status_of(engine, options)
    assert {
        n: (s["queued"], s["delivered"], s["depth"], s["batches"]) for n, s in status.items()
    } == {
        "count": (30, 30, 0, 5),
        "files": (30, 30, 0, 1),
        "geo": (30, 30, 0, 3),
    }
    with redis.Redis.from_url(options.redis_url) as client:
        assert client.xlen(Names(options.redis_prefix).intake) == 0


def _names(files: dict[str, Any], source: str) -> list[str]:
    return sorted(k.rsplit("/", 1)[1] for k in files if k.startswith(source))


def test_skip_filters_route_by_key_and_source(
    engine: Engine, options: IchnaeaOptions, target: Target
) -> None:
    api.add_export(engine.db, ExportConfig("all", "dummy"))
    api.add_export(
        engine.db,
        ExportConfig(
            "geo",
            "geosubmit",
            url=target.url,
            skip_keys=frozenset({"skip-me"}),
            skip_sources=frozenset({"query"}),
        ),
    )
    submit(options, [report(1), report(2)], key="skip-me")
    submit(options, [report(3, "query")], key="other")
    submit(options, [report(4)], key="other")
    submit(options, [report(5)])
    drain(engine, options)
    assert target.delivered() == [report(4).report, report(5).report]
    status = status_of(engine, options)
    assert (status["all"]["delivered"], status["all"]["skipped"]) == (5, 0)
    assert (status["geo"]["delivered"], status["geo"]["skipped"]) == (2, 3)


def test_a_failing_target_is_retried_and_delivered_once(
    engine: Engine, options: IchnaeaOptions, target: Target
) -> None:
    target.mode(fail=3, status=500)
    api.add_export(engine.db, ExportConfig("geo", "geosubmit", url=target.url, max_attempts=5))
    submit(options, [report(n) for n in range(4)])
    drain(engine, options)
    assert [p["status"] for p in target.posts()] == [500, 500, 500, 200]
    assert target.delivered() == [report(n).report for n in range(4)]
    status = status_of(engine, options)["geo"]
    assert (status["delivered"], status["retried"], status["dead_lettered"]) == (4, 12, 0)


def test_a_target_that_stays_down_dead_letters_then_redrives(
    engine: Engine, options: IchnaeaOptions, target: Target
) -> None:
    target.mode(fail=-1, status=503)
    api.add_export(engine.db, ExportConfig("geo", "geosubmit", url=target.url, batch=2))
    submit(options, [report(n) for n in range(3)])
    drain(engine, options)
    assert [p["status"] for p in target.posts()] == [503] * 6  # 2 batches × 3 tries
    total, letters = api.list_dead_letters(engine.db, options, "geo")
    assert total == 3
    assert {(d.attempts, d.reason) for d in letters} == {
        (3, f'POST {target.url} answered 503: {{"error": "target failing on purpose"}}')
    }
    status = status_of(engine, options)["geo"]
    assert (status["delivered"], status["dead_lettered"], status["dead_letters"]) == (0, 3, 3)
    assert status["depth"] == 0

    target.mode(fail=0)
    assert api.redrive(engine.db, options, "geo") == 3
    drain(engine, options)
    assert target.delivered() == [report(n).report for n in range(3)]
    status = status_of(engine, options)["geo"]
    assert (status["delivered"], status["dead_letters"], status["redriven"]) == (3, 0, 3)


def test_a_4xx_answer_dead_letters_at_once(
    engine: Engine, options: IchnaeaOptions, target: Target
) -> None:
    target.mode(fail=-1, status=400)
    api.add_export(engine.db, ExportConfig("geo", "geosubmit", url=target.url))
    submit(options, [report(1)])
    drain(engine, options)
    assert len(target.posts()) == 1
    total, letters = api.list_dead_letters(engine.db, options, "geo")
    assert total == 1 and letters[0].attempts == 1 and "answered 400" in letters[0].reason


def test_batches_wait_for_size_or_age(engine: Engine, options: IchnaeaOptions) -> None:
    api.add_export(engine.db, ExportConfig("count", "dummy", batch=3, max_age_seconds=0.6))
    worker = FanoutWorker(api.worker_options(options), api.list_exports(engine.db).copy)
    stop = threading.Event()
    submit(options, [report(n) for n in range(4)])
    stopper = threading.Timer(0.3, stop.set)
    stopper.start()
    worker.run(stop)
    assert status_of(engine, options)["count"]["delivered"] == 3  # the full batch only
    worker = FanoutWorker(api.worker_options(options), api.list_exports(engine.db).copy)
    started = time.monotonic()
    worker.run(threading.Event(), until_idle=0.8)
    assert status_of(engine, options)["count"]["delivered"] == 4  # the old one, later
    assert time.monotonic() - started >= 0.3


def test_a_batch_of_a_dead_consumer_is_taken_over_whole(
    engine: Engine, options: IchnaeaOptions, target: Target
) -> None:
    """A consumer read a batch and died before acknowledging it: another takes the same batch
    over after the idle time, sends it with the same idempotency key, and counts it once."""
    api.add_export(engine.db, ExportConfig("geo", "geosubmit", url=target.url, batch=5))
    submit(options, [report(n) for n in range(8)])
    names = Names(options.redis_prefix)
    dead = FanoutWorker(api.worker_options(options), api.list_exports(engine.db).copy)
    dead.refresh(now=True)
    dead.fan_out(dead.refresh())
    with redis.Redis.from_url(options.redis_url) as client:
        taken = dead._deliveries["geo"]._take(True)  # what the dead consumer read, then died
        assert taken is not None and len(taken[0].items) == 5
        assert client.xpending(names.export("geo"), "export")["pending"] == 5
    time.sleep(1.1)
    drain(engine, options)
    keys = [p["idempotency_key"] for p in target.posts()]
    assert keys[0] == f"geo:{taken[0].batch_id}"
    assert [len(p["items"]) for p in target.posts()] == [5, 3]
    assert target.delivered() == [report(n).report for n in range(8)]
    assert status_of(engine, options)["geo"]["delivered"] == 8


def test_without_export_configs_the_intake_keeps_its_data(
    engine: Engine, options: IchnaeaOptions
) -> None:
    submit(options, [report(1), report(2)])
    result = drain(engine, options)
    assert result.fanned_out == 0
    with redis.Redis.from_url(options.redis_url) as client:
        assert client.xlen(Names(options.redis_prefix).intake) == 2


def test_bucket_on_s3(
    engine: Engine,
    options: IchnaeaOptions,
    s3_endpoint: str,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sluice-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sluice-test")
    url = f"s3://{s3_bucket}/exports/{{source}}/{{api_key}}/{{year}}/{{month}}/{{day}}"
    api.add_export(engine.db, ExportConfig("s3", "bucket", url=url, batch=100))
    submit(options, [report(n) for n in range(3)], key="key-b")
    drain(engine, options, S3Options(endpoint_url=s3_endpoint, region="us-east-1"))
    client = s3_client(s3_endpoint)
    listed = client.list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert len(listed) == 1
    day = time.gmtime()
    assert listed[0]["Key"].startswith(
        f"exports/gnss/key-b/{day.tm_year}/{day.tm_mon}/{day.tm_mday}/"
    )
    body = client.get_object(Bucket=s3_bucket, Key=listed[0]["Key"])["Body"].read()
    lines = gzip.decompress(body).decode().splitlines()
    assert [json.loads(line) for line in lines] == [report(n).report for n in range(3)]


def test_export_configs_are_checked(engine: Engine, options: IchnaeaOptions) -> None:
    with pytest.raises(
        ConfigError, match="unknown kind 'nope' \\(known: bucket, dummy, geosubmit, internal\\)"
    ):
        api.add_export(engine.db, ExportConfig("x", "nope"))
    with pytest.raises(ConfigError, match="needs an http"):
        api.add_export(engine.db, ExportConfig("x", "geosubmit", url="ftp://x"))
    with pytest.raises(ConfigError, match="batch must be 1-5000, got 0"):
        api.add_export(engine.db, ExportConfig("x", "dummy", batch=0))
    api.add_export(engine.db, ExportConfig("x", "dummy"))
    with pytest.raises(ConfigError, match="exists already"):
        api.add_export(engine.db, ExportConfig("x", "dummy"))
    changed = api.update_export(engine.db, "x", batch=9, skip_sources=frozenset({"query"}))
    assert api.list_exports(engine.db) == [changed]
    assert replace(changed, batch=100, skip_sources=frozenset()) == ExportConfig("x", "dummy")
    submit(options, [report(1)])
    drain(engine, options)
    with redis.Redis.from_url(options.redis_url) as client:
        client.xadd(Names(options.redis_prefix).export("x"), {"iid": "1-0", "report": "{}"})
    with pytest.raises(ConfigError, match="still holds 1 reports"):
        api.remove_export(engine.db, options, "x")
    assert api.remove_export(engine.db, options, "x", discard_data=True) == 1
    assert api.list_exports(engine.db) == []


def test_metrics_text(engine: Engine, options: IchnaeaOptions) -> None:
    api.add_export(engine.db, ExportConfig("count", "dummy"))
    submit(options, [report(1), report(2)])
    drain(engine, options)
    text = metrics_text(
        {"accepted": 2, "depth": 0, "dropped": {"no_networks": 1}},
        api.delivery_status(engine.db, options),
    ).decode()
    assert 'sluice_ichnaea_export_reports_total{export="count",outcome="delivered"} 2.0' in text
    assert 'sluice_ichnaea_intake_reports_total{outcome="dropped_no_networks"} 1.0' in text
    assert 'sluice_ichnaea_queue_depth{queue="export:count"} 0.0' in text


def test_a_batch_whose_tries_ran_out_before_a_crash_is_dead_lettered_with_its_reason(
    engine: Engine, options: IchnaeaOptions, target: Target
) -> None:
    api.add_export(engine.db, ExportConfig("geo", "geosubmit", url=target.url, batch=5))
    submit(options, [report(n) for n in range(2)])
    names = Names(options.redis_prefix)
    dead = FanoutWorker(api.worker_options(options), api.list_exports(engine.db).copy)
    dead.fan_out(dead.refresh(now=True))
    taken = dead._deliveries["geo"]._take(True)
    assert taken is not None
    first = taken[0].batch_id
    with redis.Redis.from_url(options.redis_url) as client:  # three tries failed, then it died
        client.hset(names.attempts("geo"), mapping={first: 3, f"{first}:reason": "answered 503"})
    time.sleep(1.1)
    drain(engine, options)
    assert target.posts() == []
    total, letters = api.list_dead_letters(engine.db, options, "geo")
    assert total == 2 and {(d.attempts, d.reason) for d in letters} == {(3, "answered 503")}
    with redis.Redis.from_url(options.redis_url) as client:
        assert client.hgetall(names.attempts("geo")) == {}
        assert client.hgetall(names.batches("geo")) == {}


class Recording:
    """An exporter that looks ahead and records what it is told and sent, in order; it fails
    the sends named in `FAIL` once each."""

    calls: ClassVar[list[tuple[str, int]]] = []
    fail: ClassVar[set[int]] = set()

    def __init__(self, config: ExportConfig, context: ExportContext) -> None:
        pass

    @staticmethod
    def first(batch: Batch) -> int:
        """The batch by the number of its first report (its `report(n)` position)."""
        return round((json.loads(batch.items[0].report)["position"]["latitude"] - 51.0) * 1000)

    def ahead(self, batch: Batch) -> None:
        self.calls.append(("ahead", self.first(batch)))

    def send(self, batch: Batch) -> None:
        self.calls.append(("send", self.first(batch)))
        if self.first(batch) in self.fail:
            self.fail.discard(self.first(batch))
            raise TransientError(f"batch {self.first(batch)} failed once")

    def close(self) -> None:
        pass


@pytest.fixture
def recording() -> Iterator[type[Recording]]:
    register("recording", Recording)
    Recording.calls, Recording.fail = [], set()
    yield Recording
    EXPORTERS.pop("recording")


def test_an_exporter_that_looks_ahead_is_told_the_next_batch_before_the_current_is_sent(
    engine: Engine,
    options: IchnaeaOptions,
    recording: type[Recording],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each batch but the last of a step is followed by the next one told ahead; a step
    delivers at most LOOKAHEAD batches; a failed try keeps the batch told ahead for after it."""
    monkeypatch.setattr(deliver, "LOOKAHEAD", 3)
    recording.fail = {5}
    api.add_export(engine.db, ExportConfig("rec", "recording", batch=5, max_attempts=3))
    submit(options, [report(n) for n in range(25)])
    drain(engine, options)
    assert recording.calls == [
        ("ahead", 5),
        ("send", 0),
        ("ahead", 10),
        ("send", 5),  # failed, tried again with the next batch still held
        ("send", 5),
        ("send", 10),  # the third of the step: nothing told ahead
        ("ahead", 20),
        ("send", 15),
        ("send", 20),
    ]
    status = status_of(engine, options)["rec"]
    assert (status["delivered"], status["retried"], status["dead_lettered"]) == (25, 5, 0)
