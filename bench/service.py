"""The service benchmark: how fast does ``sluice serve`` answer over a large ledger?

A scratch database gets the ledger's schema and, inserted set-wise in SQL, 100,000 loads (mostly
loaded, some errored with messages, some waiting, superseded or in hand) over 10 feeds and 1,000
runs with their serving-view refreshes. Then ``sluice serve`` runs as a child process and the
harness asks it, one request at a time over one kept-alive connection, for the dashboard page
``/``, ``/api/status``, ``/api/loads?limit=100`` and ``/metrics``: p50 and p99 latency of each
(after a warm-up), against the targets. To tell where the time goes, each ledger query behind
those pages is then timed alone on the same database (median of repeated runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString

import httpx

from bench.report import table
from bench.scratch import BenchError, Connection, ScratchDatabase, server_url
from sluice.db.migrate import migrate
from sluice.ledger.base import Q
from sluice.status import WORKER_SEEN_SECONDS

DEFAULT_DATABASE = "sluice_bench_service"
DEFAULT_LOADS = 100_000
DEFAULT_RUNS = 1_000
DEFAULT_REQUESTS = 200
FEEDS = 10
#: Views whose refreshes the runs record (the first feeds' targets have one).
VIEWS = 5
WARM_UP = 20
START_TIMEOUT = 60.0

#: What is asked, and its p99 target in milliseconds.
ROUTES: dict[str, float] = {
    "/": 200.0,
    "/api/status": 200.0,
    "/api/loads?limit=100": 200.0,
    "/metrics": 100.0,
}

#: The ledger queries behind those pages, with the parameters the service gives them.
QUERIES: dict[str, dict[str, Any]] = {
    "abandon_dead_runs": {},
    "load_counts": {},
    "leased_units": {},
    "recent_errors": {"limit": 10},
    "recent_runs": {"limit": 5},
    "targets_overview": {},
    "list_units": {"kind": "load", "unit_id": None, "feed": None, "status": None, "limit": 100},
    "feeds_overview": {"names": None},
    "throughput": {"minutes": 180},
    "metrics_units": {},
    "metrics_oldest_waiting": {},
    "metrics_durations": {},
    "metrics_workers": {"seconds": WORKER_SEEN_SECONDS},
    "metrics_refreshes": {},
}


@dataclass(frozen=True)
class Options:
    loads: int
    runs: int
    requests: int
    database: str
    keep: bool


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench service",
        description="Latency of 'sluice serve' (dashboard, JSON API, /metrics) over a large "
        "ledger.",
    )
    parser.add_argument("--loads", type=int, default=DEFAULT_LOADS, help="loads in the ledger")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs in the ledger")
    parser.add_argument(
        "--requests", type=int, default=DEFAULT_REQUESTS, help="measured requests per route"
    )
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="scratch database name")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)
    if args.loads < 1 or args.runs < 1 or args.requests < 2:
        parser.error("--loads and --runs must be at least 1, --requests at least 2")
    return Options(args.loads, args.runs, args.requests, args.database, args.keep)


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    server = server_url("service")
    if server is None:
        return 2
    db = ScratchDatabase(server, options.database)
    try:
        db.create()
        started = time.perf_counter()
        fill(db.connection, options)
        print(
            f"ledger: {options.loads:,} loads, {options.runs:,} runs, {FEEDS} feeds "
            f"({time.perf_counter() - started:.1f} s to insert)",
            file=sys.stderr,
            flush=True,
        )
        latencies = measure_routes(db.url, options.requests)
        queries = time_queries(db.connection)
        print_results(options, latencies, queries, db.server_version)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if options.keep:
            db.close()
            print(f"bench: kept the scratch database {db.display}", file=sys.stderr)
        else:
            db.drop()
    return 0 if all(met(route, values) for route, values in latencies.items()) else 1


# -- the ledger -------------------------------------------------------------------------------


_TARGETS: LiteralString = """
INSERT INTO sluice.targets (name, serving_view, changes_seq, refreshed_seq, last_change_at,
                            refreshed_at)
SELECT 'public.bench_' || i, CASE WHEN i <= %(views)s THEN 'public.view_bench_' || i END,
       100, 100, now() - interval '1 hour', now() - interval '50 minutes'
FROM generate_series(1, %(feeds)s) AS i
"""

_FEEDS: LiteralString = """
INSERT INTO sluice.feeds (name, target_id, source_url, pattern, last_scan_at)
SELECT 'feed_' || lpad(i::text, 2, '0'), t.id, 's3://bench/feed_' || i, '.*\\.csv',
       now() - interval '1 minute'
FROM generate_series(1, %(feeds)s) AS i
JOIN sluice.targets t ON t.name = 'public.bench_' || i
"""

# One run every 30 minutes up to now, each with the refresh of one serving view.
_RUNS: LiteralString = """
INSERT INTO sluice.runs (command, owner, owner_pid, status, started_at, finished_at,
                         discovered, claimed, loaded, errored, rows_in, inserted, updated,
                         unchanged, hooks, kind, counts, heartbeat_at)
SELECT 'import', 'bench:' || i, NULL, 'succeeded',
       now() - (%(runs)s - i + 1) * interval '30 minutes',
       now() - (%(runs)s - i + 1) * interval '30 minutes' + interval '90 seconds',
       100, 100, 97, 3, 970000, 900000, 50000, 20000,
       jsonb_build_array(jsonb_build_object(
           'kind', 'refresh', 'view', 'public.view_bench_' || (1 + i %% %(views)s),
           'target', 'public.bench_' || (1 + i %% %(views)s), 'status', 'ok',
           'seconds', round((0.2 + random() * 3)::numeric, 3), 'concurrently', true)),
       'import', jsonb_build_object('units', 100, 'attempts', 103),
       now() - (%(runs)s - i + 1) * interval '30 minutes' + interval '90 seconds'
FROM generate_series(1, %(runs)s) AS i
"""

# Statuses by i % 100: 2 % errored (with the message a bad row leaves), 1 % waiting, 1 %
# superseded, 1 % skipped, the rest loaded; one in 5,000 is in hand (ingesting, leased).
_UNITS: LiteralString = """
INSERT INTO sluice.units (kind, feed_id, store, key, version, etag, size, modified, status,
                          attempts, next_attempt_at, lease_owner, lease_until, run_id, rows_in,
                          rows_inserted, rows_updated, rows_unchanged, rows_rejected,
                          rows_deleted, bytes_read, error, error_detail, discovered_at,
                          started_at, finished_at)
SELECT 'load', f.id, 's3://bench', u.key, 'v1', '"' || md5(u.key) || '"', 1048576,
       u.at - interval '5 minutes', u.status,
       CASE WHEN u.status = 'errored' THEN 3 ELSE 1 END,
       u.at, CASE WHEN u.status = 'ingesting' THEN 'bench:worker' END,
       CASE WHEN u.status = 'ingesting' THEN now() + interval '5 minutes' END,
       r.id,
       CASE WHEN u.done THEN 10000 END, CASE WHEN u.done THEN 9000 END,
       CASE WHEN u.done THEN 500 END, CASE WHEN u.done THEN 500 END,
       CASE WHEN u.done THEN 0 END, CASE WHEN u.done THEN 0 END,
       CASE WHEN u.done THEN 1048576 ELSE 0 END,
       CASE WHEN u.status = 'errored' THEN
           's3://bench/' || u.key || ', line ' || (1 + u.i %% 9000)
           || ', column total_users: invalid input syntax for type bigint: "n/a"' END,
       CASE WHEN u.status = 'errored' THEN jsonb_build_object(
           'object', 's3://bench/' || u.key, 'line', 1 + u.i %% 9000,
           'column', 'total_users', 'reason', 'invalid input syntax for type bigint: "n/a"') END,
       u.at - interval '1 second',
       CASE WHEN u.status NOT IN ('ready', 'superseded', 'skipped') THEN u.at END,
       CASE WHEN u.status NOT IN ('ready', 'ingesting')
            THEN u.at + (0.05 + (u.i %% 600) / 20.0) * interval '1 second' END
FROM (
    SELECT i, s.status, s.status IN ('loaded') AS done,
           'feed_' || lpad((1 + i %% %(feeds)s)::text, 2, '0') AS feed,
           'aggs/' || lpad(i::text, 12, '0') || '.csv' AS key,
           now() - (%(loads)s - i + 1) * (interval '30 minutes' * %(runs)s / %(loads)s) AS at
    FROM generate_series(1, %(loads)s) AS i,
    LATERAL (SELECT CASE
        WHEN i %% 5000 = 17 THEN 'ingesting'
        WHEN i %% 100 < 2 THEN 'errored'
        WHEN i %% 100 = 2 THEN 'ready'
        WHEN i %% 100 = 3 THEN 'superseded'
        WHEN i %% 100 = 4 THEN 'skipped'
        ELSE 'loaded' END AS status) AS s
) AS u
JOIN sluice.feeds f ON f.name = u.feed
JOIN sluice.runs r ON r.id = 1 + (u.i - 1) * %(runs)s / %(loads)s
"""


def fill(conn: Connection, options: Options) -> None:
    """The ledger's schema, then its rows, set-wise (the transition trigger guards updates
    only: rows inserted with their final status are what a long history leaves)."""
    migrate(conn)
    params = {"feeds": FEEDS, "views": VIEWS, "runs": options.runs, "loads": options.loads}
    with conn.transaction():
        for statement in (_TARGETS, _FEEDS, _RUNS, _UNITS):
            conn.execute(statement, params)
    conn.execute("VACUUM ANALYZE sluice.units")
    conn.execute("ANALYZE sluice.runs")
    conn.execute("ANALYZE sluice.feeds")


# -- the service --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(url: str) -> Iterator[httpx.Client]:
    """``sluice serve`` on a free port, in a folder of its own, until the block ends."""
    work = Path(tempfile.mkdtemp(prefix="sluice-bench-service-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_DATABASE_URL"] = url
    log = work / "serve.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("sluice")), "serve", "--port", str(port)],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0)
    try:
        _wait_until_up(proc, client, log)
        yield client
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def _wait_until_up(proc: subprocess.Popen[bytes], client: httpx.Client, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"sluice serve exited {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise BenchError(f"sluice serve did not answer within {START_TIMEOUT:.0f} s")


def measure_routes(url: str, requests: int) -> dict[str, list[float]]:
    """Milliseconds of each request to each route, one at a time, after a warm-up; the routes
    take turns, so that a noisy moment of the machine falls on all of them alike."""
    seen: dict[str, list[float]] = {route: [] for route in ROUTES}
    with serving(url) as client:
        for round_no in range(WARM_UP + requests):
            for route in ROUTES:
                started = time.perf_counter()
                response = client.get(route)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise BenchError(f"{route} answered {response.status_code}: {response.text}")
                if round_no >= WARM_UP:
                    seen[route].append(elapsed)
    return seen


def time_queries(conn: Connection, repeat: int = 20) -> dict[str, float]:
    """Median milliseconds of each ledger query alone, as the client sees it."""
    medians = {}
    for name, params in QUERIES.items():
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            conn.execute(Q[name], params).fetchall()
            times.append((time.perf_counter() - started) * 1000)
        medians[name] = statistics.median(times)
    return medians


# -- results ----------------------------------------------------------------------------------


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def met(route: str, values: list[float]) -> bool:
    return percentile(values, 99) <= ROUTES[route]


def print_results(
    options: Options, latencies: dict[str, list[float]], queries: dict[str, float], server: str
) -> None:
    rows = [
        [
            route,
            f"{percentile(values, 50):.1f}",
            f"{percentile(values, 99):.1f}",
            f"{max(values):.1f}",
            f"≤ {ROUTES[route]:.0f}",
            "met" if met(route, values) else "MISSED",
        ]
        for route, values in latencies.items()
    ]
    print()
    print(
        f"sluice serve over {options.loads:,} loads and {options.runs:,} runs: "
        f"{options.requests} requests per route, one at a time (PostgreSQL {server})"
    )
    header = ["route", "p50 ms", "p99 ms", "max ms", "p99 target", ""]
    print(table(header, rows, right=[1, 2, 3]))
    print()
    print("the ledger queries behind them, alone (median ms)")
    print(
        table(
            ["query", "ms"],
            [[name, f"{ms:.1f}"] for name, ms in queries.items()],
            right=[1],
        )
    )
    result = {
        "loads": options.loads,
        "runs": options.runs,
        "requests": options.requests,
        "routes": {
            route: {
                "p50_ms": round(percentile(values, 50), 2),
                "p99_ms": round(percentile(values, 99), 2),
                "max_ms": round(max(values), 2),
                "target_p99_ms": ROUTES[route],
                "met": met(route, values),
            }
            for route, values in latencies.items()
        },
        "queries_ms": {name: round(ms, 2) for name, ms in queries.items()},
        "server": server,
    }
    print(json.dumps(result))
