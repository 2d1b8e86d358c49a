"""The Ichnaea benchmark: how fast do the submit API and the fan-out go, against their floors?

In one run, on one Redis (SLUICE_REDIS_URL or 127.0.0.1:6379, under a key prefix of its own):

(a) the floor of the intake: one Redis ``XADD`` per request of the same payload bytes (a
    geosubmit body of 10 reports), from `--connections` concurrent clients in another process;
(b) sluice's intake: ``sluice ichnaea serve`` (uvicorn, one server process) answering
    ``POST /v2/geosubmit`` of that body from a load generator process (raw HTTP/1.1 over
    kept-alive connections, bare asyncio protocols on uvloop: a few hundredths of a millisecond
    of CPU per request, so that it leaves the server its core): requests/s and p50/p99 latency
    at saturation and at a fixed rate of 500 requests/s (latency counted from each request's
    scheduled time); the CPU time per request of the server and of the load generator, and the
    machine's load average (on a shared machine, the server's CPU time per request is the
    figure that carries);
(c) the fan-out: `--reports` reports queued on the intake, fanned out and delivered to a dummy
    and to a bucket (local folder) export by one in-process `FanoutWorker`, against its floor —
    the same entries moved by hand with pipelined ``XREADGROUP`` + ``XADD`` + ``XACK``/``XDEL``.

Targets (issue 13): intake ≥ 2,000 requests/s on one core, p99 ≤ 25 ms at 500 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

from bench.report import table
from bench.scratch import BenchError, ScratchDatabase, server_url
from bench.service import free_port
from sluice.fanout.configs import ExportConfig
from sluice.fanout.deliver import RetryOptions
from sluice.fanout.names import Names
from sluice.fanout.worker import FanoutWorker, WorkerOptions, WorkerReport

DEFAULT_DATABASE = "sluice_bench_ichnaea"
DEFAULT_SECONDS = 8.0
DEFAULT_CONNECTIONS = 32
DEFAULT_REPORTS = 50_000
FIXED_RATE = 500.0
TARGET_RPS = 2000.0
TARGET_P99_MS = 25.0
START_TIMEOUT = 60.0


def body(reports: int = 10) -> bytes:
    """A realistic v2 geosubmit body: position, a few wifis and a cell per report."""
    items = []
    for n in range(reports):
        items.append(
            {
                "timestamp": 1_700_000_000_000 + n,
                "position": {
                    "latitude": 51.5 + n / 1e4,
                    "longitude": -0.12 + n / 1e4,
                    "accuracy": 12.5,
                    "altitude": 31.0,
                    "age": 1500,
                    "heading": 90.0,
                    "speed": 1.2,
                    "source": "gnss",
                },
                "cellTowers": [
                    {
                        "radioType": "lte",
                        "mobileCountryCode": 234,
                        "mobileNetworkCode": 15,
                        "locationAreaCode": 1234,
                        "cellId": 123456 + n,
                        "primaryScramblingCode": 101,
                        "signalStrength": -90,
                        "age": 800,
                    }
                ],
                "wifiAccessPoints": [
                    {
                        "macAddress": f"01:23:45:67:{n:02x}:{w:02x}",
                        "signalStrength": -60 - w,
                        "frequency": 2437,
                        "channel": 6,
                        "ssid": f"net-{w}",
                        "age": 500,
                    }
                    for w in range(4)
                ],
            }
        )
    return json.dumps({"items": items}).encode()


# -- (a) the floor: XADD per request ----------------------------------------------------------


def _xadd_load(
    url: str, stream: str, payload: bytes, connections: int, seconds: float, out: Any
) -> None:
    import redis.asyncio as aioredis

    async def run() -> None:
        client = aioredis.Redis.from_url(url, max_connections=connections)
        done = 0
        until = time.perf_counter() + seconds

        async def one() -> None:
            nonlocal done
            while time.perf_counter() < until:
                await client.xadd(stream, {"report": payload})
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(connections)))
        out.put((done, time.perf_counter() - started))
        await client.aclose()

    asyncio.run(run())


def xadd_floor(url: str, prefix: str, payload: bytes, connections: int, seconds: float) -> float:
    queue: Any = multiprocessing.get_context("fork").Queue()
    proc = multiprocessing.get_context("fork").Process(
        target=_xadd_load, args=(url, f"{prefix}:floor", payload, connections, seconds, queue)
    )
    proc.start()
    done, took = queue.get(timeout=seconds + 60)
    proc.join(30)
    return float(done) / float(took)


# -- (b) the intake over HTTP ------------------------------------------------------------------


def _request(port: int, payload: bytes) -> bytes:
    head = (
        f"POST /v2/geosubmit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


class _Client(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection of the load generator, as a bare protocol: the
    client shares the machine with the server, so it must cost as little as it can."""

    def __init__(self) -> None:
        # uvloop's transports are not subclasses of asyncio's: typed by what is used.
        self.transport: Any = None
        self.buffer = b""
        self.waiting: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end]
        length = 0
        at = head.lower().find(b"content-length:")
        if at >= 0:
            length = int(head[at + 15 :].split(b"\r\n", 1)[0])
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(int(head.split(b" ", 2)[1]))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(exc or ConnectionError("the server closed the connection"))

    async def exchange(self, raw: bytes) -> int:
        self.waiting = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiting


def _loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _http_load(
    port: int, payload: bytes, connections: int, seconds: float, rate: float | None, out: Any
) -> None:
    """Saturation (rate None: each connection sends as soon as it has its answer) or a fixed
    rate spread over the connections; latencies from each request's scheduled time."""
    raw = _request(port, payload)

    async def run() -> None:
        latencies: list[float] = []
        bad = 0
        loop = asyncio.get_running_loop()
        clients = [
            (await loop.create_connection(_Client, "127.0.0.1", port))[1]
            for _ in range(connections)
        ]
        started = time.perf_counter()
        until = started + seconds
        interval = connections / rate if rate else 0.0

        async def one(index: int, client: _Client) -> None:
            nonlocal bad
            due = started + (index * interval / connections if rate else 0.0)
            while True:
                now = time.perf_counter()
                if rate:
                    if due > until:
                        break
                    if due > now:
                        await asyncio.sleep(due - now)
                    sent = due
                    due += interval
                else:
                    if now > until:
                        break
                    sent = now
                if await client.exchange(raw) != 200:
                    bad += 1
                latencies.append(time.perf_counter() - sent)

        cpu = time.process_time()
        await asyncio.gather(*(one(i, c) for i, c in enumerate(clients)))
        cpu = time.process_time() - cpu
        for client in clients:
            client.transport.close()
        out.put((latencies, bad, time.perf_counter() - started, cpu))

    with asyncio.Runner(loop_factory=_loop) as runner:
        runner.run(run())


def http_load(
    port: int, payload: bytes, connections: int, seconds: float, rate: float | None
) -> dict[str, float]:
    context = multiprocessing.get_context("fork")
    queue: Any = context.Queue()
    proc = context.Process(
        target=_http_load, args=(port, payload, connections, seconds, rate, queue)
    )
    proc.start()
    latencies, bad, took, cpu = queue.get(timeout=seconds + 120)
    proc.join(30)
    if bad:
        raise BenchError(f"{bad} requests were not answered 200")
    ordered = sorted(latencies)
    return {
        "client_cpu_ms": cpu * 1000 / max(1, len(ordered)),
        "rps": len(ordered) / took,
        "p50": ordered[len(ordered) // 2] * 1000,
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "requests": float(len(ordered)),
    }


@contextmanager
def serving(
    database_url: str, redis_url: str, prefix: str, workdir: Path
) -> Iterator[tuple[int, int]]:
    port = free_port()
    env = {
        **os.environ,
        "SLUICE_DATABASE_URL": database_url,
        "SLUICE_REDIS_URL": redis_url,
        "SLUICE_ICHNAEA_REDIS_PREFIX": prefix,
        "SLUICE_ICHNAEA_MAX_BACKLOG": str(10**9),
    }
    log = (workdir / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sluice.cli", "ichnaea", "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise BenchError(
                    f"sluice ichnaea serve exited: {(workdir / 'serve.log').read_text()}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise BenchError("sluice ichnaea serve did not answer")
            time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _cpu(pid: int) -> float:
    """CPU seconds the server process used so far (the machine is shared: wall time alone
    would count the other processes' load against it)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


# -- (c) the fan-out ---------------------------------------------------------------------------


def fill_intake(client: redis.Redis, names: Names, reports: int) -> None:
    one = json.dumps(json.loads(body(1))["items"][0]).encode()
    with client.pipeline(transaction=False) as pipe:
        for n in range(reports):
            pipe.xadd(names.intake, {"api_key": "bench-key", "source": "gnss", "report": one})
            if n % 1000 == 999:
                pipe.execute()
        pipe.execute()


def move_floor(client: redis.Redis, names: Names, reports: int, batch: int) -> float:
    """The same move by hand: read a batch with the group, copy it to one stream, ack + delete."""
    client.xgroup_create(names.intake, "floor", id="0", mkstream=True)
    target = f"{names.prefix}:floor-copy"
    started = time.perf_counter()
    moved = 0
    while moved < reports:
        got: Any = client.xreadgroup("floor", "c", {names.intake: ">"}, count=batch)
        if not got:
            break
        entries = got[0][1]
        with client.pipeline(transaction=True) as pipe:
            for _, fields in entries:
                pipe.xadd(target, fields)
            ids = [e[0] for e in entries]
            pipe.xack(names.intake, "floor", *ids)
            pipe.xdel(names.intake, *ids)
            pipe.execute()
        moved += len(entries)
    took = time.perf_counter() - started
    client.delete(target)
    client.xgroup_destroy(names.intake, "floor")
    return moved / took


def fan_out(
    redis_url: str, prefix: str, configs: list[ExportConfig], reports: int
) -> tuple[float, WorkerReport]:
    options = WorkerOptions(
        redis_url=redis_url, prefix=prefix, fanout_batch=1000, retry=RetryOptions(0.05, 60.0)
    )
    worker = FanoutWorker(options, lambda: configs)
    started = time.perf_counter()
    report = worker.run(threading.Event(), once=True)
    took = time.perf_counter() - started
    return reports / took, report


# -- the run -----------------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench ichnaea", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--seconds", type=float, default=DEFAULT_SECONDS, help="Seconds per load phase."
    )
    parser.add_argument("--connections", type=int, default=DEFAULT_CONNECTIONS)
    parser.add_argument(
        "--reports", type=int, default=DEFAULT_REPORTS, help="Reports fanned out in (c)."
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("SLUICE_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    options = parse(argv)
    server = server_url("ichnaea")
    if server is None:
        return 2
    prefix = f"sluice-bench:{uuid.uuid4().hex[:8]}"
    names = Names(prefix)
    client = redis.Redis.from_url(options.redis_url)
    db = ScratchDatabase(server, options.database)
    workdir = Path(tempfile.mkdtemp(prefix="sluice-bench-ichnaea-"))
    payload = body(10)
    try:
        db.create()
        db.close()
        print(
            f"payload: 10 reports, {len(payload):,} bytes; {options.connections} connections, "
            f"{options.seconds:g} s per phase; {os.cpu_count()} cores"
        )
        floor = xadd_floor(options.redis_url, prefix, payload, options.connections, options.seconds)
        with serving(db.url, options.redis_url, prefix, workdir) as (port, pid):
            http_load(port, payload, options.connections, 2.0, None)  # warm-up
            cpu_before = _cpu(pid)
            saturated = http_load(port, payload, options.connections, options.seconds, None)
            cpu_ms = (_cpu(pid) - cpu_before) * 1000 / saturated["requests"]
            fixed = http_load(port, payload, options.connections, options.seconds, FIXED_RATE)
            load = os.getloadavg()
        rows = [
            ["(a) floor: XADD per request", f"{floor:,.0f}", "-", "-", "-"],
            [
                "(b) intake, saturation",
                f"{saturated['rps']:,.0f}",
                f"{saturated['p50']:.1f}",
                f"{saturated['p99']:.1f}",
                f"{saturated['rps'] / floor:.2f}",
            ],
            [
                f"(b) intake at {FIXED_RATE:.0f} req/s",
                f"{fixed['rps']:,.0f}",
                f"{fixed['p50']:.1f}",
                f"{fixed['p99']:.1f}",
                "-",
            ],
        ]
        print()
        print(table(["intake", "requests/s", "p50 ms", "p99 ms", "b/a"], rows, right=[1, 2, 3, 4]))
        per_core = 1000 / cpu_ms
        print(
            f"server CPU per request at saturation: {cpu_ms:.2f} ms, i.e. {per_core:,.0f} "
            "requests/s per core of the server process; the load generator's: "
            f"{saturated['client_cpu_ms']:.2f} ms"
        )
        print(f"machine load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load)}")
        rps_met = "met" if per_core >= TARGET_RPS else "NOT met"
        p99_met = "met" if fixed["p99"] <= TARGET_P99_MS else "NOT met"
        print(
            f"targets: ≥ {TARGET_RPS:,.0f} requests/s on one core ({rps_met}), "
            f"p99 ≤ {TARGET_P99_MS:.0f} ms at {FIXED_RATE:.0f}/s ({p99_met})"
        )
        client.delete(names.intake, f"{prefix}:floor", f"{prefix}:counters")

        fill_intake(client, names, options.reports)
        move = move_floor(client, names, options.reports, 1000)
        fill_intake(client, names, options.reports)
        dummy_rate, _ = fan_out(
            options.redis_url,
            prefix,
            [ExportConfig("dummy", "dummy", batch=1000, max_age_seconds=0)],
            options.reports,
        )
        fill_intake(client, names, options.reports)
        bucket = ExportConfig(
            "bucket",
            "bucket",
            url=f"{workdir}/bucket/{{source}}/{{api_key}}",
            batch=1000,
            max_age_seconds=0,
        )
        bucket_rate, _ = fan_out(options.redis_url, prefix, [bucket], options.reports)
        counts: dict[bytes, bytes] = client.hgetall(names.delivery)  # type: ignore[assignment]
        delivered = {k.decode(): int(v) for k, v in counts.items()}
        if (
            delivered.get("dummy:delivered") != options.reports
            or delivered.get("bucket:delivered") != options.reports
        ):
            raise BenchError(f"not every report was delivered: {delivered}")
        print()
        print(
            table(
                ["fan-out (batch 1000)", "reports/s", "vs floor"],
                [
                    ["floor: XREADGROUP + XADD + XACK/XDEL", f"{move:,.0f}", "1.00"],
                    [
                        "intake → dummy export, delivered",
                        f"{dummy_rate:,.0f}",
                        f"{dummy_rate / move:.2f}",
                    ],
                    [
                        "intake → bucket export (folder), delivered",
                        f"{bucket_rate:,.0f}",
                        f"{bucket_rate / move:.2f}",
                    ],
                ],
                right=[1, 2],
            )
        )
        return 0
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
        client.close()
        shutil.rmtree(workdir, ignore_errors=True)
        with contextlib.suppress(Exception):  # it may never have been created
            db.drop()
