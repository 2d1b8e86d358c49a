"""``python -m bench fetchers``: the sources that fill Incoming, against their floors.

(a) DMAP: ``sluice cubic dmap fetch`` (a child process) of N datasets of M MB each from the
    fake DMAP API (tests/integration/dmap_fake.py, a server process on a loopback port) into a local
    Incoming folder, against a plain streaming copy of the same links into files (httpx, 1 MiB
    pieces, in this process): MB/s of each, their ratio, and the fetch's peak RSS.
(b) Stream: ``Batcher`` (in this process) from a Redis stream of N messages into gzip
    JSON-lines objects, against ``XRANGE`` reading the same messages in pages of 10,000:
    messages per second of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.child import run_measured
from bench.report import ratio, table
from bench.scratch import BenchError, ScratchDatabase, server_url

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data" / "fetchers"
FEED = "/datasetcontrolleduserapi/datasets/bench"
KEY = "bench-controlled-key"
RSS_TARGET_MB = 128


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench fetchers", description=__doc__)
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--mb", type=int, default=50, help="MB per dataset")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument(
        "--redis-url", default=os.environ.get("SLUICE_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--database", default="sluice_bench_fetchers")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    server = server_url("fetchers")
    if server is None:
        return 2
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    try:
        dmap = _dmap(server, args)
        stream = _stream(args)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    finally:
        if not args.keep:
            shutil.rmtree(DATA, ignore_errors=True)
    _print(args, dmap, stream)
    print(json.dumps({"bench": "fetchers", "dmap": dmap, "stream": stream}))
    return 0 if dmap["rss_mb"] <= RSS_TARGET_MB and dmap["ok"] else 1


# -- (a) DMAP -------------------------------------------------------------------------------------


def _dmap(server: str, args: argparse.Namespace) -> dict[str, Any]:
    state, log = DATA / "state.json", DATA / "requests.jsonl"
    size = args.mb * 1_000_000
    datasets = [
        {
            "id": "bench",
            "dataset_id": f"bench_{n:03d}",
            "start_date": "2022-05-17",
            "end_date": "2022-05-17",
            "last_updated": f"2022-05-22T20:49:{n:02d}.000001",
            "size": size,
        }
        for n in range(args.datasets)
    ]
    state.write_text(json.dumps({"keys": {"/datasetcontrolleduserapi": KEY}, "datasets": datasets}))
    api = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.dmap_fake", str(state), str(log)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    database = ScratchDatabase(server, args.database)
    try:
        assert api.stdout is not None
        base = f"http://127.0.0.1:{int(api.stdout.readline().split()[1])}"
        floor = _copy_floor(base, DATA / "floor")
        database.create()
        env = {
            **os.environ,
            "SLUICE_DATABASE_URL": database.url,
            "SLUICE_CUBIC_DMAP_BASE_URL": base,
            "SLUICE_CUBIC_DMAP_CONTROLLED_KEY": KEY,
            "SLUICE_CUBIC_DMAP_PUBLIC_KEY": KEY,
            "SLUICE_CUBIC_INCOMING": str(DATA / "incoming"),
        }
        sluice = [sys.executable, "-m", "sluice.cli"]
        added = subprocess.run(
            [*sluice, "cubic", "dmap", "feeds", "add", FEED],
            env=env,
            cwd=DATA,
            capture_output=True,
            text=True,
        )
        if added.returncode:
            raise BenchError(f"feeds add failed: {added.stderr.strip()[-300:]}")
        print(
            f"[{time.strftime('%H:%M:%S')}] dmap: fetching {args.datasets} × {args.mb} MB",
            file=sys.stderr,
        )
        fetched = run_measured(
            [*sluice, "cubic", "dmap", "fetch", "--json"], env=env, cwd=DATA, log=DATA / "fetch.log"
        )
        # The same process doing no fetch: the floor of its resident set.
        idle = run_measured(
            [*sluice, "cubic", "dmap", "feeds", "list", "--json"],
            env=env,
            cwd=DATA,
            log=DATA / "list.log",
        )
    finally:
        api.kill()
        api.wait(10)
        if api.stdout is not None:
            api.stdout.close()
        database.finish(args.keep)
    report = json.loads(fetched.stdout) if fetched.returncode in (0, 1) and fetched.stdout else {}
    uploaded = sum(len(f["uploaded"]) for f in report.get("feeds", []))
    total = sum(f["bytes"] for f in report.get("feeds", []))
    files = sorted((DATA / "incoming" / "cubic" / "dmap" / "bench").glob("*.csv.gz"))
    ok = (
        fetched.returncode == 0
        and uploaded == args.datasets
        and total == size * args.datasets
        and all(p.stat().st_size == size for p in files)
        and len(files) == args.datasets
    )
    if not ok:
        print(f"bench: the fetch did not upload every byte:\n{fetched.log_tail()}", file=sys.stderr)
    mb = size * args.datasets / 1e6
    return {
        "ok": ok,
        "datasets": args.datasets,
        "mb": mb,
        "floor_seconds": floor,
        "fetch_seconds": fetched.wall_seconds,
        "floor_mb_s": mb / floor,
        "fetch_mb_s": mb / fetched.wall_seconds,
        "rss_mb": fetched.peak_rss_mb,
        "idle_rss_mb": idle.peak_rss_mb,
    }


def _copy_floor(base: str, folder: Path) -> float:
    """A plain streaming copy of every link of one listing into files."""
    folder.mkdir()
    started = time.perf_counter()
    with httpx.Client(timeout=60, trust_env=False) as http:
        listing = http.get(base + FEED, headers={"apikey": KEY}).json()
        for result in listing["results"]:
            with (
                http.stream("GET", result["url"]) as response,
                (folder / result["dataset_id"]).open("wb") as out,
            ):
                for piece in response.iter_bytes(1 << 20):
                    out.write(piece)
    return time.perf_counter() - started


# -- (b) stream -----------------------------------------------------------------------------------


def _stream(args: argparse.Namespace) -> dict[str, Any]:
    from sluice.store import locate
    from sluice.stream import Batcher, BatchOptions, RedisBroker

    prefix = f"sluice-bench:{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(args.redis_url)
    broker = RedisBroker(args.redis_url, prefix)
    try:
        payloads = (
            json.dumps({"n": n, "kind": "tap", "station": n % 97, "fare": 2.4}).encode()
            for n in range(args.messages)
        )
        broker.publish("bench", payloads)
        started = time.perf_counter()
        read, last = 0, "-"
        while True:
            page = client.xrange(f"{prefix}bench", min=f"({last}" if read else "-", count=10_000)
            if not page:
                break
            read += len(page)
            last = page[-1][0].decode()
        floor = time.perf_counter() - started
        store, key_prefix = locate(str(DATA / "stream"), create=True)
        idle = 0.3
        batcher = Batcher(
            broker, store, key_prefix, "bench", BatchOptions(until_idle=idle, block_seconds=0.1)
        )
        started = time.perf_counter()
        report = batcher.run()
        batched = time.perf_counter() - started - idle  # the idle wait is not work
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()
        broker.close()
    return {
        "messages": args.messages,
        "xrange_seconds": floor,
        "batch_seconds": batched,
        "xrange_per_s": read / floor,
        "batch_per_s": report.messages / batched,
        "objects": len(report.objects),
        "ok": read == args.messages == report.messages,
    }


def _print(args: argparse.Namespace, dmap: dict[str, Any], stream: dict[str, Any]) -> None:
    rows = [
        [
            "(a) floor: streaming copy",
            f"{dmap['floor_seconds']:.2f}",
            f"{dmap['floor_mb_s']:.0f} MB/s",
            "1.00×",
            "-",
        ],
        [
            "(a) sluice cubic dmap fetch",
            f"{dmap['fetch_seconds']:.2f}",
            f"{dmap['fetch_mb_s']:.0f} MB/s",
            ratio(dmap["fetch_seconds"] / dmap["floor_seconds"]),
            f"{dmap['rss_mb']:.0f} MB",
        ],
        ["(a) sluice cubic dmap feeds list", "-", "-", "-", f"{dmap['idle_rss_mb']:.0f} MB"],
        [
            "(b) floor: XRANGE",
            f"{stream['xrange_seconds']:.2f}",
            f"{stream['xrange_per_s']:,.0f} msg/s",
            "1.00×",
            "-",
        ],
        [
            "(b) stream batcher",
            f"{stream['batch_seconds']:.2f}",
            f"{stream['batch_per_s']:,.0f} msg/s",
            ratio(stream["batch_seconds"] / stream["xrange_seconds"]),
            "-",
        ],
    ]
    print(
        f"fetchers: {args.datasets} datasets × {args.mb} MB; {args.messages:,} messages "
        f"({stream['objects']} objects)"
    )
    print(
        table(
            ["step", "seconds", "throughput", "time / floor", "peak RSS"], rows, right=[1, 2, 3, 4]
        )
    )
    if dmap["rss_mb"] > RSS_TARGET_MB:
        print(f"warning: peak RSS {dmap['rss_mb']:.0f} MB is over the {RSS_TARGET_MB} MB target")
