"""The stream batcher against the real Redis: batches of exactly the messages in order, a
SIGKILL between the write and the acknowledgement, the age rule, dead letters. Every test uses
Redis keys of its own prefix."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from sluice.store import locate
from sluice.stream import Batcher, BatchOptions, RedisBroker
from tests.fixtures.faults import kill_at_fault

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    chosen = f"sluice-test:stream:{uuid.uuid4().hex[:10]}:"
    yield chosen
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{chosen}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def broker(redis_url: str, prefix: str) -> Iterator[RedisBroker]:
    made = RedisBroker(redis_url, prefix)
    yield made
    made.close()


def messages(count: int, start: int = 0) -> list[bytes]:
    return [
        json.dumps({"n": n, "kind": "tap", "pad": "x" * 20}).encode()
        for n in range(start, start + count)
    ]


def objects(incoming: Path, name: str) -> list[Path]:
    return sorted((incoming / "cubic" / "kafka" / name).glob("*.jsonl.gz"))


def numbers(path: Path) -> list[int]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(line)["n"] for line in fh]


def batcher(broker: RedisBroker, incoming: Path, name: str, **options: Any) -> Batcher:
    store, key_prefix = locate(str(incoming), create=True)
    return Batcher(broker, store, key_prefix, name, BatchOptions(block_seconds=0.2, **options))


def test_25000_messages_make_three_objects_of_exactly_the_messages_in_order(
    broker: RedisBroker, tmp_path: Path
) -> None:
    assert broker.publish("taps", messages(25_000)) == 25_000

    report = batcher(broker, tmp_path, "taps", until_idle=0.5).run()

    found = objects(tmp_path, "taps")
    assert [len(numbers(p)) for p in found] == [10_000, 10_000, 5_000]
    assert [n for p in found for n in numbers(p)] == list(range(25_000))
    assert (report.messages, report.dead_lettered, len(report.objects)) == (25_000, 0, 3)
    # Named from the id range it holds: first and last id of each object.
    first = report.objects[0]
    millis, seq = first["first"].split("-")
    assert found[0].name.startswith(f"{int(millis):013d}-{int(seq):06d}_")
    assert broker.pending("taps", "sluice", "batcher", 10) == []


def test_a_consumer_killed_between_write_and_ack_leaves_every_message_in_exactly_one_object(
    redis_url: str, prefix: str, broker: RedisBroker, tmp_path: Path
) -> None:
    broker.publish("kill", messages(2_500))
    env = {
        **os.environ,
        "SLUICE_CUBIC_INCOMING": str(tmp_path),
        "SLUICE_REDIS_URL": redis_url,
        "SLUICE_STREAM_PREFIX": prefix,
        "SLUICE_STATE_DIR": str(tmp_path / "state"),
    }
    args = [
        sys.executable,
        "-m",
        "sluice.cli",
        "stream",
        "consume",
        "kill",
        "--max-records",
        "1000",
        "--until-idle",
        "1",
    ]
    proc = subprocess.Popen(
        args,
        cwd=tmp_path,
        env={**env, "SLUICE_FAULT_PAUSE": "stream-flushed"},
        stderr=subprocess.PIPE,
        text=True,
    )
    flushed: list[bytes] = []

    def written_not_acknowledged() -> None:
        written = objects(tmp_path, "kill")
        assert [len(numbers(p)) for p in written] == [1_000]
        flushed.append(written[0].read_bytes())

    kill_at_fault(proc, "stream-flushed", while_paused=written_not_acknowledged, timeout=30)
    before = flushed[0]
    # Written, not acknowledged: the 1,000 messages are still pending for the consumer.
    assert len(broker.pending("kill", "sluice", "batcher", 5_000)) == 1_000

    again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    assert again.returncode == 0, again.stderr
    found = objects(tmp_path, "kill")
    assert [len(numbers(p)) for p in found] == [1_000, 1_000, 500]
    assert [n for p in found for n in numbers(p)] == list(range(2_500))
    assert found[0].read_bytes() == before  # the replay wrote the same object, byte for byte
    assert broker.pending("kill", "sluice", "batcher", 10) == []


def test_a_batch_is_written_once_its_first_message_is_max_age_old(
    broker: RedisBroker, tmp_path: Path
) -> None:
    def trickle() -> None:
        for n in range(10):
            broker.publish("slow", messages(1, n))
            time.sleep(0.15)

    producer = threading.Thread(target=trickle)
    producer.start()
    report = batcher(broker, tmp_path, "slow", max_age_seconds=0.4, until_idle=1.0).run()
    producer.join()

    found = objects(tmp_path, "slow")
    sizes = [len(numbers(p)) for p in found]
    # 10 messages 0.15 s apart, an object at most 0.4 s after its first message.
    assert len(found) >= 3 and max(sizes) <= 4, sizes
    assert [n for p in found for n in numbers(p)] == list(range(10))
    assert report.messages == 10


def test_a_message_that_is_not_json_goes_to_the_dead_letter_stream_with_its_reason(
    broker: RedisBroker, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    broker.publish("mixed", [messages(1, 0)[0], b'{"n": 1,', messages(1, 2)[0], b"\xff\xfe"])

    report = batcher(broker, tmp_path, "mixed", until_idle=0.5).run()

    found = objects(tmp_path, "mixed")
    assert [numbers(p) for p in found] == [[0, 2]]
    assert (report.messages, report.dead_lettered) == (2, 2)
    client = redis.Redis.from_url(redis_url)
    dead = client.xrange(f"{prefix}mixed:dead")
    client.close()
    assert [entry[b"data"] for _, entry in dead] == [b'{"n": 1,', b"\xff\xfe"]
    reasons = [entry[b"reason"].decode() for _, entry in dead]
    assert reasons[0].startswith("not JSON: Expecting property name")
    assert reasons[1] == "not UTF-8 (byte 0)"
    assert broker.pending("mixed", "sluice", "batcher", 10) == []
