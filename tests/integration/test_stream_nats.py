"""The stream batcher against the real NATS JetStream on 127.0.0.1:4222 (``--broker nats``):
exactly the messages in order, a SIGKILL between the write and the acknowledgement, dead
letters. Every test uses streams of its own prefix, deleted after."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from sluice.store import locate
from sluice.stream import Batcher, BatchOptions
from sluice.stream.nats import NatsBroker
from tests.fixtures.faults import kill_at_fault

URL = "nats://127.0.0.1:4222"


def _answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=1) as sock:
            return sock.recv(4) == b"INFO"
    except OSError:
        return False


async def _drop(prefix: str) -> None:
    nc = await nats.connect(URL)
    js = nc.jetstream()
    for name in await js.streams_info():
        if name.config.name and name.config.name.startswith(prefix):
            await js.delete_stream(name.config.name)
    await nc.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    if not _answers():
        pytest.fail("the NATS tests need NATS with JetStream on 127.0.0.1:4222")
    chosen = f"sluicetest_{uuid.uuid4().hex[:10]}_"
    yield chosen
    asyncio.run(_drop(chosen))


def broker(prefix: str, max_records: int = 10_000) -> NatsBroker:
    return NatsBroker(URL, prefix, max_records=max_records, ack_wait=600)


def messages(count: int) -> list[bytes]:
    return [json.dumps({"n": n, "kind": "tap"}).encode() for n in range(count)]


def numbers(path: Path) -> list[int]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(line)["n"] for line in fh]


def objects(incoming: Path, name: str) -> list[Path]:
    return sorted((incoming / "cubic" / "kafka" / name).glob("*.jsonl.gz"))


def test_25000_messages_make_three_objects_of_exactly_the_messages_in_order(
    prefix: str, tmp_path: Path
) -> None:
    made = broker(prefix)
    try:
        assert made.publish("taps", messages(25_000)) == 25_000
        store, key_prefix = locate(str(tmp_path), create=True)
        options = BatchOptions(until_idle=0.5, block_seconds=0.2)
        report = Batcher(made, store, key_prefix, "taps", options).run()
    finally:
        made.close()

    found = objects(tmp_path, "taps")
    assert [len(numbers(p)) for p in found] == [10_000, 10_000, 5_000]
    assert [n for p in found for n in numbers(p)] == list(range(25_000))
    assert found[0].name == f"{1:020d}_{10_000:020d}.jsonl.gz"
    assert (report.messages, report.dead_lettered) == (25_000, 0)


def test_a_consumer_killed_between_write_and_ack_leaves_every_message_in_exactly_one_object(
    prefix: str, tmp_path: Path
) -> None:
    made = broker(prefix)
    try:
        made.publish("kill", messages(2_500))
    finally:
        made.close()
    env = {
        **os.environ,
        "SLUICE_CUBIC_INCOMING": str(tmp_path),
        "SLUICE_NATS_URL": URL,
        "SLUICE_STREAM_PREFIX": prefix,
        "SLUICE_STATE_DIR": str(tmp_path / "state"),
    }
    args = [
        *(sys.executable, "-m", "sluice.cli", "stream", "consume", "kill", "--broker", "nats"),
        *("--max-records", "1000", "--until-idle", "1"),
    ]
    proc = subprocess.Popen(
        args,
        cwd=tmp_path,
        env={**env, "SLUICE_FAULT_PAUSE": "stream-flushed"},
        stderr=subprocess.PIPE,
        text=True,
    )
    flushed: list[bytes] = []
    kill_at_fault(
        proc,
        "stream-flushed",
        while_paused=lambda: flushed.append(objects(tmp_path, "kill")[0].read_bytes()),
        timeout=30,
    )
    before = flushed[0]

    again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    assert again.returncode == 0, again.stderr
    found = objects(tmp_path, "kill")
    assert [len(numbers(p)) for p in found] == [1_000, 1_000, 500]
    assert [n for p in found for n in numbers(p)] == list(range(2_500))
    assert found[0].read_bytes() == before


def test_a_message_that_is_not_json_goes_to_the_dead_letter_stream_with_its_reason(
    prefix: str, tmp_path: Path
) -> None:
    made = broker(prefix)
    try:
        made.publish("mixed", [b'{"n": 0}', b"{oops", b'{"n": 2}'])
        store, key_prefix = locate(str(tmp_path), create=True)
        options = BatchOptions(until_idle=0.5, block_seconds=0.2)
        report = Batcher(made, store, key_prefix, "mixed", options).run()
        # Nothing is left unacknowledged: a second run finds nothing to do.
        second = Batcher(made, store, key_prefix, "mixed", options).run()
    finally:
        made.close()

    assert [numbers(p) for p in objects(tmp_path, "mixed")] == [[0, 2]]
    assert (report.messages, report.dead_lettered) == (2, 1)
    assert (second.messages, second.recovered, second.dead_lettered) == (0, 0, 0)

    async def dead() -> list[tuple[bytes, str]]:
        nc = await nats.connect(URL)
        js = nc.jetstream()
        raw = await js.get_msg(f"{prefix}mixed-dead", 1)
        await nc.close()
        return [(raw.data or b"", (raw.headers or {}).get("Sluice-Reason", ""))]

    [(data, reason)] = asyncio.run(dead())
    assert data == b"{oops"
    assert reason.startswith("not JSON: Expecting property name")
