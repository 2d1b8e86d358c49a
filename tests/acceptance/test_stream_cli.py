"""``sluice stream produce`` and ``sluice stream consume`` as a user runs them, and a stream
declared in sluice.toml batched by ``sluice run --once``, against the real Redis."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.acceptance.conftest import Sluice, json_report


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    chosen = f"sluice-test:stream-cli:{uuid.uuid4().hex[:10]}:"
    yield chosen
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{chosen}*"):
        client.delete(key)
    client.close()


def lines(path: Path) -> list[dict[str, int]]:
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh]


def test_produce_then_consume_until_idle_writes_one_object_and_dead_letters_the_bad_line(
    sluice: Sluice, tmp_path: Path, redis_url: str, prefix: str
) -> None:
    source = tmp_path / "taps.jsonl"
    source.write_text('{"n": 0}\n{"n": 1}\nnot json\n\n{"n": 2}\n')
    env = {
        "SLUICE_REDIS_URL": redis_url,
        "SLUICE_STREAM_PREFIX": prefix,
        "SLUICE_CUBIC_INCOMING": str(tmp_path / "incoming"),
    }

    produced = sluice.ok("stream", "produce", "taps", "--from", str(source), env=env)
    assert produced.stdout.strip() == "published 4 message(s) to taps"
    consumed = json_report(
        sluice.ok("stream", "consume", "taps", "--until-idle", "0.5", "--json", env=env)
    )

    assert (consumed["messages"], consumed["dead_lettered"], len(consumed["objects"])) == (3, 1, 1)
    written = tmp_path / "incoming" / consumed["objects"][0]["key"]
    assert written.parent == tmp_path / "incoming" / "cubic" / "kafka" / "taps"
    assert lines(written) == [{"n": 0}, {"n": 1}, {"n": 2}]
    bad = sluice.run("stream", "consume", "taps", "--max-age", "soon", env=env)
    assert bad.returncode == 2 and "--max-age must be a duration like 30s" in bad.stderr


def test_a_stream_declared_in_the_project_file_is_batched_by_sluice_run_once(
    sluice: Sluice, tmp_path: Path, redis_url: str, prefix: str
) -> None:
    (tmp_path / "sluice.toml").write_text(
        f'[cubic]\nincoming = "incoming"\n\n[streams.taps]\nredis_url = "{redis_url}"\n'
        f'prefix = "{prefix}"\nmax_records = 2\n'
    )
    source = tmp_path / "taps.jsonl"
    source.write_text("".join(f'{{"n": {n}}}\n' for n in range(5)))
    env = {"SLUICE_REDIS_URL": redis_url, "SLUICE_STREAM_PREFIX": prefix}
    sluice.ok("stream", "produce", "taps", "--from", str(source), env=env)

    sluice.ok("run", "--once", env=env)

    found = sorted((tmp_path / "incoming" / "cubic" / "kafka" / "taps").glob("*.jsonl.gz"))
    assert [[m["n"] for m in lines(p)] for p in found] == [[0, 1], [2, 3], [4]]
