"""``python -m bench stations``: observations per second through the station updater
(`sluice.stations.ahead.apply_batches`), against a COPY of the same observations into an
unlogged table (the floor).

In a scratch database on the server of SLUICE_DATABASE_URL, migrated:

(setup) `--stations` × (1 − `--new`) wifi stations are created (one observation each, not
        measured);
(a) floor — COPY of every observation (mac, lat, lon, accuracy, signal, source) into an
    unlogged table, after a CHECKPOINT;
(b) sluice — the same observations as v2 reports of `--per-report` wifi networks each, applied
    in batches of `--batch` reports (one transaction each), after a CHECKPOINT, by one
    updater (one `Database`, so its row cache is warm after the set-up, as a worker's is),
    each batch prepared while the one before is written (`apply_batches`, as the
    ``internal`` exporter does with the batches the fan-out tells it ahead).
    About `--new` of the stations are new, the others change or are confirmed. The default
    batch, 5,000 reports, is the largest an export hands over at once (`MAX_BATCH`): what an
    ``internal`` export configured with ``--batch 5000`` takes from a backlog. `--batch 500`
    shows smaller batches. The seconds of two parts of the updater are printed apart:
    reports → observations, and the algorithm.

(c) lag — for `--lag-seconds`, one request of `--per-report` new wifi networks every 2 ms
    (500 requests/s) into the intake stream (what the submit route does once a request is
    parsed), drained by the fan-out into an ``internal`` export (batches of 5,000 reports or
    1 s, so at this rate each second's reports are one batch):
    the lag of a report is its station row's ``created`` minus its enqueue time; p50, p99, max.
    Needs Redis (SLUICE_REDIS_URL, default redis://127.0.0.1:6379/0); skipped with
    ``--lag-seconds 0``.

Targets: (b) ≤ 5 × (a); lag ≤ 5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from psycopg import sql

from bench.report import ratio, seconds, table
from bench.scratch import BenchError, ScratchDatabase, server_url
from sluice.db import Database, DatabaseOptions
from sluice.db.migrate import migrate
from sluice.stations import apply_batch
from sluice.stations.ahead import apply_batches

TODAY = date(2026, 6, 1)


def station_macs(n: int) -> list[str]:
    return [f"{(i * 2654435761) % (1 << 48):012x}" for i in range(1, n + 1)]


def place(i: int) -> tuple[float, float]:
    """Station `i`'s place: on land (reports at sea are dropped), a strip from Serbia through
    Hungary and Slovakia to Poland, across four borders."""
    return 44.0 + (i % 1000) * 0.01, 20.0 + (i // 1000) * 0.01


def reports(
    macs: list[str], observations: int, per_report: int, rng: random.Random
) -> list[dict[str, Any]]:
    out = []
    for _ in range(observations // per_report):
        i = rng.randrange(len(macs))
        lat, lon = place(i)
        lat += rng.uniform(-0.0002, 0.0002)
        nets = [macs[(i + k) % len(macs)] for k in range(per_report)]
        out.append(
            {
                "position": {
                    "latitude": lat,
                    "longitude": lon,
                    "accuracy": rng.choice([5.0, 15.0]),
                    "source": "query" if rng.random() < 0.1 else "gnss",
                },
                "wifiAccessPoints": [
                    {"macAddress": m, "signalStrength": rng.randint(-95, -40)} for m in nets
                ],
            }
        )
    return out


def floor_copy(db: ScratchDatabase, batch: list[dict[str, Any]]) -> float:
    conn = db.connection
    conn.execute(
        "CREATE UNLOGGED TABLE floor_obs (mac bytea, lat float8, lon float8, accuracy float8,"
        " signal int, source smallint)"
    )
    db.checkpoint()
    start = time.perf_counter()
    with conn.cursor() as cur, cur.copy("COPY floor_obs FROM STDIN") as copy:
        for r in batch:
            p = r["position"]
            source = 9 if p["source"] == "query" else 3
            for w in r["wifiAccessPoints"]:
                copy.write_row(
                    (
                        bytes.fromhex(w["macAddress"]),
                        p["latitude"],
                        p["longitude"],
                        p["accuracy"],
                        w["signalStrength"],
                        source,
                    )
                )
    return time.perf_counter() - start


def run(url: str, args: argparse.Namespace, db: ScratchDatabase) -> list[tuple[str, ...]]:
    rng = random.Random(14)
    macs = station_macs(args.stations)
    existing = macs[: int(len(macs) * (1 - args.new))]
    with psycopg_connect(url) as conn:
        migrate(conn)
    work = reports(macs, args.observations, args.per_report, rng)
    observations = sum(len(r["wifiAccessPoints"]) for r in work)
    with Database.open(DatabaseOptions(url=url, pool_size=2), upgrade=False) as database:
        seed = [
            {
                "position": {"latitude": place(i)[0], "longitude": place(i)[1]},
                "wifiAccessPoints": [{"macAddress": m}],
            }
            for i, m in enumerate(existing)
        ]
        for n in range(0, len(seed), 5000):
            apply_batch(database, f"seed-{n}", seed[n : n + 5000], today=TODAY)
        print(f"bench: {len(existing)} stations set up", file=sys.stderr)
        floor = floor_copy(db, work)
        db.checkpoint()
        effects: dict[str, int] = {}
        with parts_timed() as parts:
            start = time.perf_counter()
            batches = (
                (f"b-{n}", work[n : n + args.batch]) for n in range(0, len(work), args.batch)
            )
            for result in apply_batches(database, batches, today=TODAY):
                for k, v in result.effects.items():
                    effects[k] = effects.get(k, 0) + v
            took = time.perf_counter() - start
    print(f"bench: effects {json.dumps(effects)}", file=sys.stderr)
    print(
        f"bench: of (b)'s {took:.2f} s: reports → observations {parts['transform']:.2f} s "
        "(each batch's but the first while the server wrote the batch before), algorithm "
        f"{parts['algorithm']:.2f} s",
        file=sys.stderr,
    )
    return [
        (
            "(a) floor: COPY into an unlogged table",
            f"{observations:,}",
            seconds(floor),
            f"{observations / floor:,.0f}",
            "",
        ),
        (
            "(b) sluice: apply_batches",
            f"{observations:,}",
            seconds(took),
            f"{observations / took:,.0f}",
            ratio(took / floor),
        ),
    ]


def lag(url: str, args: argparse.Namespace) -> list[tuple[str, ...]]:
    """Submit at 500 requests/s for `args.lag_seconds`, fan out to an internal export, and
    read each report's lag off its stations' ``created``."""
    import asyncio
    import os
    import threading
    import uuid

    import redis

    from sluice.fanout.configs import ExportConfig
    from sluice.intake.queue import IntakeQueue, QueueOptions, connect
    from sluice.intake.submission import Report
    from sluice.recipes.ichnaea import fanout as api
    from sluice.recipes.ichnaea.options import IchnaeaOptions

    redis_url = os.environ.get("SLUICE_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"sluice-bench-stations:{uuid.uuid4().hex[:8]}"
    options = IchnaeaOptions(redis_url=redis_url, redis_prefix=prefix, config_seconds=0.5)
    sent: dict[str, float] = {}
    with Database.open(DatabaseOptions(url=url, pool_size=4), upgrade=False) as database:
        api.add_export(database, ExportConfig("lag", "internal", batch=5000, max_age_seconds=1.0))
        stop = threading.Event()
        worker = threading.Thread(
            target=api.run_fanout, args=(database, options, stop), daemon=True
        )
        worker.start()

        async def submit() -> None:
            queue_options = QueueOptions(redis_url=redis_url, prefix=prefix)
            client = connect(queue_options)
            queue = IntakeQueue(client, queue_options)
            start = time.time()
            n = 0
            try:
                while time.time() - start < args.lag_seconds:
                    due = start + n * 0.002
                    if due > time.time():
                        await asyncio.sleep(due - time.time())
                    macs = [f"f0{n:07x}{k:03x}" for k in range(args.per_report)]
                    report = {
                        "position": {"latitude": 50.0 + (n % 1000) * 0.001, "longitude": 8.0},
                        "wifiAccessPoints": [{"macAddress": m} for m in macs],
                    }
                    sent[macs[0]] = time.time()
                    await queue.put([Report(report, "gnss")], None, {})
                    n += 1
            finally:
                await client.aclose()

        asyncio.run(submit())
        deadline = time.time() + 60
        with psycopg_connect(url) as conn:
            while time.time() < deadline:
                row = conn.execute(
                    "SELECT coalesce(sum(reports), 0) FROM ichnaea.station_batches"
                    " WHERE batch_id LIKE 'lag:%%'"
                ).fetchone()
                if row is not None and int(row[0]) >= len(sent):
                    break
                time.sleep(0.2)
            stop.set()
            shard_rows: dict[str, float] = {}
            for digit in range(16):
                query = sql.SQL(
                    "SELECT encode(mac, 'hex'), extract(epoch FROM created) FROM ichnaea.{}"
                ).format(sql.Identifier(f"wifi_shard_{digit:x}"))
                for mac, created in conn.execute(query):
                    shard_rows[mac] = float(created)
        worker.join(timeout=30)
    with redis.Redis.from_url(redis_url) as client:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
    lags = sorted(shard_rows[m] - t for m, t in sent.items() if m in shard_rows)
    if not lags:
        raise BenchError("no submitted report reached the station tables")
    requests = len(sent)
    missing = requests - len(lags)

    def at(q: float) -> str:
        return seconds(lags[min(len(lags) - 1, int(q * len(lags)))])

    return [
        (
            f"(c) lag, {requests:,} requests at 500/s",
            f"{len(lags):,} arrived, {missing} missing",
            at(0.5),
            at(0.99),
            seconds(lags[-1]),
        ),
    ]


@contextlib.contextmanager
def parts_timed() -> Iterator[dict[str, float]]:
    """Seconds spent in the updater's transform and algorithm while the block runs (the
    functions wrapped in place, unwrapped after)."""
    from sluice.stations import updater

    functions = {"transform": "gather", "algorithm": "update_stations"}
    spent = dict.fromkeys(functions, 0.0)
    originals = {part: getattr(updater, name) for part, name in functions.items()}

    def timed(part: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[part] += time.perf_counter() - start

        return run

    for part, name in functions.items():
        setattr(updater, name, timed(part, originals[part]))
    try:
        yield spent
    finally:
        for part, name in functions.items():
            setattr(updater, name, originals[part])


def psycopg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench stations",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--stations", type=int, default=100_000)
    parser.add_argument("--new", type=float, default=0.2, help="fraction of new stations")
    parser.add_argument("--per-report", type=int, default=5, help="wifi networks per report")
    parser.add_argument("--batch", type=int, default=5000, help="reports per batch")
    parser.add_argument("--lag-seconds", type=float, default=20.0, help="0: no lag step")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--database", default="sluice_bench_stations", help="scratch database")
    args = parser.parse_args(argv)
    url = server_url("stations")
    if url is None:
        return 2
    db = ScratchDatabase(url, args.database)
    try:
        db.create()
        print(f"scratch database {db.display}, PostgreSQL {db.server_version}", file=sys.stderr)
        rows = run(db.url, args, db)
        lag_rows = lag(db.url, args) if args.lag_seconds > 0 else []
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        db.finish(args.keep)
    print(table(["step", "observations", "seconds", "obs/s", "× floor"], rows, right=[1, 2, 3, 4]))
    if lag_rows:
        print(table(["step", "reports", "p50", "p99", "max"], lag_rows, right=[2, 3, 4]))
    print(json.dumps({"stations": [list(r) for r in rows], "lag": [list(r) for r in lag_rows]}))
    return 0
