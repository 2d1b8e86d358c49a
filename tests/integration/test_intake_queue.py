"""The intake queue and the daily limits on a real Redis: entries as the fan-out will read them,
back-pressure at the bound, counters, status, an unreachable Redis, fail-open limits."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
import redis

from sluice.intake.errors import Backlogged, QueueDown
from sluice.intake.limits import DailyLimits
from sluice.intake.queue import IntakeQueue, QueueOptions, connect
from sluice.intake.submission import Report

T = TypeVar("T")
#: Nothing listens here: connections are refused at once.
DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    name = f"sluice-test:{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{name}:*"):
            client.delete(key)
    finally:
        client.close()


def with_queue(options: QueueOptions, work: Callable[[IntakeQueue], Awaitable[T]]) -> T:
    async def run() -> T:
        client = connect(options)
        try:
            return await work(IntakeQueue(client, options))
        finally:
            await client.aclose()

    return asyncio.run(run())


def entries(redis_url: str, stream: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return [fields for _, fields in client.xrange(stream)]
    finally:
        client.close()


REPORTS = [
    Report({"wifiAccessPoints": [{"macAddress": "ab"}]}, "gnss"),
    Report({"cellTowers": [{"cellId": 1}], "position": {"source": "query"}}, "query"),
]


def test_each_report_is_one_stream_entry_with_key_and_source(redis_url: str, prefix: str) -> None:
    options = QueueOptions(redis_url=redis_url, prefix=prefix)
    depth = with_queue(options, lambda q: q.put(REPORTS, "test-key", {"no_networks": 2}))
    assert depth == 2
    depth = with_queue(options, lambda q: q.put(REPORTS[:1], None, {}))
    assert depth == 3
    found = entries(redis_url, f"{prefix}:intake")
    assert found[0] == {
        "api_key": "test-key",
        "source": "gnss",
        "report": json.dumps(REPORTS[0].report, separators=(",", ":")),
    }
    assert json.loads(found[1]["report"]) == REPORTS[1].report
    assert found[1]["source"] == "query"
    assert "api_key" not in found[2]  # no key: no field (null)
    status = with_queue(options, lambda q: q.status())
    assert status.depth == 3
    assert status.oldest_age is not None and 0 <= status.oldest_age < 60
    assert status.as_dict() == {
        "depth": 3,
        "oldest_age_seconds": status.oldest_age,
        "requests": 2,
        "accepted": 3,
        "sampled_out": 0,
        "dropped": {"no_networks": 2},
    }


def test_backlog_over_the_bound_is_refused_and_counted(redis_url: str, prefix: str) -> None:
    options = QueueOptions(redis_url=redis_url, prefix=prefix, max_backlog=2, retry_after=7)
    with_queue(options, lambda q: q.put(REPORTS, None, {}))
    with pytest.raises(Backlogged) as caught:
        with_queue(options, lambda q: q.put(REPORTS, None, {}))
    assert caught.value.retry_after == 7
    status = with_queue(options, lambda q: q.status())
    assert status.depth == 2  # nothing of the refused request was added
    assert status.counters["dropped:backlog"] == 2


def test_counts_without_queueing(redis_url: str, prefix: str) -> None:
    options = QueueOptions(redis_url=redis_url, prefix=prefix)
    with_queue(options, lambda q: q.count(sampled_out=4, dropped_no_networks=1))
    status = with_queue(options, lambda q: q.status())
    assert status.depth == 0 and status.oldest_age is None
    assert status.as_dict()["sampled_out"] == 4
    assert status.as_dict()["dropped"] == {"no_networks": 1}


def test_unreachable_redis_is_queue_down_without_secrets() -> None:
    options = QueueOptions(redis_url="redis://:hunter2@127.0.0.1:1/0", timeout=1.0)
    with pytest.raises(QueueDown) as caught:
        with_queue(options, lambda q: q.put(REPORTS, None, {}))
    assert "hunter2" not in str(caught.value)
    assert caught.value.__cause__ is not None
    with pytest.raises(QueueDown):
        with_queue(options, lambda q: q.status())
    with_queue(options, lambda q: q.count(sampled_out=1))  # best effort: no error


def test_daily_limit_per_key_and_path(redis_url: str, prefix: str) -> None:
    day = datetime(2026, 12, 1, tzinfo=UTC)

    async def run() -> list[bool]:
        client = connect(QueueOptions(redis_url=redis_url))
        limits = DailyLimits(client, prefix, clock=lambda: day)
        try:
            results = [await limits.exceeded("key1", "v2.geosubmit", 2) for _ in range(3)]
            results.append(await limits.exceeded("key1", "v1.submit", 2))
            results.append(await limits.exceeded("key2", "v2.geosubmit", 2))
            results.append(await limits.exceeded("key1", "v2.geosubmit", None))
            return results
        finally:
            await client.aclose()

    assert asyncio.run(run()) == [False, False, True, False, False, False]
    client = redis.Redis.from_url(redis_url)
    try:
        name = f"{prefix}:apilimit:key1:v2.geosubmit:20261201"
        assert client.get(name) == b"3"
        assert 0 < client.ttl(name) <= 25 * 3600
    finally:
        client.close()


def test_daily_limit_fails_open_when_redis_errors() -> None:
    async def run() -> bool:
        client = connect(QueueOptions(redis_url=DEAD_REDIS, timeout=1.0))
        try:
            return await DailyLimits(client, "p").exceeded("key1", "v2.geosubmit", 1)
        finally:
            await client.aclose()

    assert asyncio.run(run()) is False
