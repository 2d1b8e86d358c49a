"""The runtime benchmark: does a second worker make a bucket load faster, and what does the
scheduler cost when there is nothing new?

(1) A bucket of 16 GLAM desktop shards (1M rows in all by default), loaded into an empty
    database by the server alone (its own COPY in 1 and 2 sessions: the floor of the ratio),
    by ``sluice run --once --workers N`` (worker threads in one process) and by N ``sluice
    worker`` processes fed by ``sluice scheduler --once`` (Celery on Redis), for N = 1 and 2:
    wall time of each (medians of rounds), and the ratio of 2 workers to 1.
(2) A scheduler tick over a feed of K objects already loaded (one scan that finds nothing
    new), for K = 1,000 and 10,000: seconds, and the SQL statements it sent (counted on the
    driver's connections): the count must not grow with K.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg

from bench.scratch import BenchError, ScratchDatabase, server_url
from sluice.api import open_engine
from sluice.config import Settings
from sluice.ledger.records import Discovered
from sluice.ledger.states import Status
from sluice.load import statements as st
from sluice.recipes.glam.generate import generate
from sluice.recipes.glam.tables import feed as glam_feed
from sluice.runtime.scheduler import LocalDispatch, Scheduler, Tally
from sluice.runtime.session import LedgerSession
from sluice.store import locate

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROWS = 1_000_000
DEFAULT_SHARDS = 16
DEFAULT_DATABASE = "sluice_bench_runtime"
#: Target: two workers take at most this fraction of one worker's wall time.
TARGET_RATIO = 0.7
#: Target: one scan of 10,000 known objects takes at most this many seconds.
TARGET_SCAN_SECONDS = 1.0


@dataclass(frozen=True)
class Options:
    rows: int
    shards: int
    database: str
    known: tuple[int, ...]
    celery: bool
    keep: bool
    repeat: int


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench runtime",
        description="Bucket loads with 1 and 2 workers (threads and Celery processes), and the "
        "scheduler's cost on objects already loaded.",
    )
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows in all shards")
    parser.add_argument("--shards", type=int, default=DEFAULT_SHARDS, help="shard files")
    parser.add_argument(
        "--known", type=int, nargs="+", default=[1_000, 10_000], help="known objects per scan"
    )
    parser.add_argument("--no-celery", action="store_true", help="skip the Celery runs")
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="scratch database name")
    parser.add_argument("--keep", action="store_true", help="keep the generated bucket")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds; the medians are reported (default 3)"
    )
    args = parser.parse_args(argv)
    return Options(
        args.rows,
        args.shards,
        args.database,
        tuple(args.known),
        not args.no_celery,
        args.keep,
        args.repeat,
    )


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    server = server_url("runtime")
    if server is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="sluice-bench-runtime-"))
    try:
        bucket = work / "bucket"
        report = generate(
            "desktop", "nightly", rows=options.rows, shards=options.shards, out=str(bucket)
        )
        print(
            f"bucket: {len(report.files)} shards, {report.rows:,} rows, "
            f"{report.bytes / 1e6:.0f} MB",
            flush=True,
        )
        loads = measure_floor(server, options, bucket)
        loads.update(measure_loads(server, options, bucket, work))
        scans = [measure_scan(server, options, known) for known in options.known]
        print_results(loads, scans)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


# -- (1) loads with 1 and 2 workers -------------------------------------------------------------


def measure_loads(server: str, options: Options, bucket: Path, work: Path) -> dict[str, float]:
    """The median wall time of each mode and worker count over `options.repeat` rounds; the
    runs of one round follow each other (1 worker, then 2), so that a noisy moment of the
    machine falls on both alike."""
    seen: dict[str, list[float]] = {}
    modes = ["threads"] + (["celery"] if options.celery else [])
    for round_no in range(1, options.repeat + 1):
        for mode in modes:
            for workers in (1, 2):
                seconds, span = load_once(server, options, bucket, work, mode, workers)
                seen.setdefault(f"{mode}-{workers}", []).append(seconds)
                seen.setdefault(f"{mode}-span-{workers}", []).append(span)
                print(
                    f"  round {round_no}: {mode}, {workers} worker(s): {seconds:.2f} s "
                    f"(loads {span:.2f} s)",
                    flush=True,
                )
    return {name: statistics.median(values) for name, values in seen.items()}


def measure_floor(server: str, options: Options, bucket: Path) -> dict[str, float]:
    """The floor of the ratio: the server's own work, no sluice code. The shards are COPYed
    into the keyed table sluice creates, one transaction each, by 1 session (all of them in
    turn) and by 2 sessions at once (half each), `options.repeat` rounds; medians."""
    seen: dict[str, list[float]] = {}
    files = sorted(bucket.glob("*.csv"))
    for _ in range(options.repeat):
        for sessions in (1, 2):
            with ScratchDatabase(server, options.database) as db:
                db.create()
                register(db.url, bucket)
                db.checkpoint()
                seconds = _copy_in_sessions(db.url, files, sessions)
                db.drop()
            seen.setdefault(f"floor-{sessions}", []).append(seconds)
            print(f"  floor, {sessions} session(s): {seconds:.2f} s", flush=True)
    return {name: statistics.median(values) for name, values in seen.items()}


def _copy_in_sessions(url: str, files: list[Path], sessions: int) -> float:
    spec = glam_feed("desktop", "nightly", "unused").table
    statement = st.copy_from_stdin(st.table(spec), spec, spec.format)
    shares = [files[i::sessions] for i in range(sessions)]
    errors: list[BaseException] = []

    def copy(share: list[Path]) -> None:
        try:
            with psycopg.connect(url) as conn:
                for path in share:
                    with (
                        conn.transaction(),
                        conn.cursor() as cur,
                        cur.copy(statement) as out,
                        path.open("rb") as fh,
                    ):
                        while block := fh.read(1 << 20):
                            out.write(block)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=copy, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError(f"the floor's COPY failed: {errors[0]}")
    return time.perf_counter() - started


def load_once(
    server: str, options: Options, bucket: Path, work: Path, mode: str, workers: int
) -> tuple[float, float]:
    """The wall time of one case, and its loads' span on the ledger (from the first claim to
    the last commit: without the process's start and its scan)."""
    with ScratchDatabase(server, options.database) as db:
        db.create()
        register(db.url, bucket)
        db.checkpoint()
        seconds = (
            load_threads(db.url, workers, work)
            if mode == "threads"
            else load_celery(db.url, workers, work, options.shards)
        )
        rows = db.connection.execute(
            "SELECT count(*) FROM glam_desktop_nightly_aggregation"
        ).fetchone()
        assert rows is not None and rows[0] == options.rows, rows
        span = db.connection.execute(
            "SELECT EXTRACT(EPOCH FROM max(finished_at) - min(started_at))::float8 "
            "FROM sluice.loads"
        ).fetchone()
        db.drop()
    return seconds, float(span[0]) if span and span[0] is not None else 0.0


def register(url: str, bucket: Path) -> None:
    """Register the GLAM feed, as ``sluice glam import`` would, without loading anything, and
    without its serving view: its refresh is one statement after the loads, the same with any
    number of workers (bench glam measures it), and would only dilute what this measures."""
    settings = Settings(database_url=url, state_dir=ROOT / ".sluice")
    feed = glam_feed("desktop", "nightly", str(bucket))
    feed = replace(feed, table=replace(feed.table, serving=None))
    with open_engine(settings=settings) as engine, LedgerSession(engine.db, "bench") as session:
        engine.flow.register(session.ledger(), feed)
        session.finish("succeeded")


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    return {**env, "SLUICE_DATABASE_URL": url, **extra}


def _sluice() -> list[str]:
    return [str(Path(sys.executable).with_name("sluice"))]


def load_threads(url: str, workers: int, work: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [*_sluice(), "-q", "run", "--once", "--workers", str(workers)],
        env=_env(url),
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchError(f"sluice run --once failed:\n{result.stderr[-2000:]}")
    return seconds


def load_celery(url: str, workers: int, work: Path, shards: int) -> float:
    env = _env(
        url,
        SLUICE_BROKER_URL=os.environ.get("SLUICE_BROKER_URL", "redis://127.0.0.1:6379/0"),
        SLUICE_QUEUE=f"bench-{os.getpid()}",
    )
    with _workers(env, workers, work):
        started = time.perf_counter()
        subprocess.run(
            [*_sluice(), "-q", "scheduler", "--once"],
            env=env,
            cwd=work,
            check=True,
            capture_output=True,
        )
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE status = 'loaded'), "
                    "count(*) FILTER (WHERE status = 'errored') FROM sluice.loads"
                ).fetchone()
                assert row is not None
                if row[1]:
                    raise BenchError("a Celery load errored")
                if row[0] == shards:
                    break
                time.sleep(0.05)
        return time.perf_counter() - started


@contextlib.contextmanager
def _workers(env: dict[str, str], count: int, work: Path) -> Iterator[None]:
    procs = [
        subprocess.Popen(
            [*_sluice(), "worker", "--concurrency", "1"],
            env=env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    ready = [threading.Event() for _ in procs]

    def watch(proc: subprocess.Popen[str], event: threading.Event) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "ready." in line:
                event.set()

    for proc, event in zip(procs, ready, strict=True):
        threading.Thread(target=watch, args=(proc, event), daemon=True).start()
    try:
        for event in ready:
            if not event.wait(60):
                raise BenchError("a Celery worker did not start within 60 s")
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)


# -- (2) the scheduler on objects already loaded ------------------------------------------------


@dataclass(frozen=True)
class ScanResult:
    known: int
    seconds: float
    statements: int


def measure_scan(server: str, options: Options, known: int) -> ScanResult:
    with ScratchDatabase(server, options.database) as db, tempfile.TemporaryDirectory() as tmp:
        db.create()
        bucket = Path(tmp)
        for i in range(known):
            (bucket / f"aggs-desktop-nightly-{i:012d}.csv").write_bytes(b"")
        settings = Settings(database_url=db.url, state_dir=ROOT / ".sluice")
        with (
            open_engine(settings=settings) as engine,
            LedgerSession(engine.db, "bench scan", kind="service") as session,
        ):
            source = engine.flow.register(
                session.ledger(), glam_feed("desktop", "nightly", str(bucket))
            )
            _mark_loaded(session, source.feed_id, bucket)
            scheduler = Scheduler(
                session, [engine.flow], LocalDispatch(session, Tally(), threading.Event())
            )
            scheduler.adopt(force=True)
            counter = StatementCounter()
            with counter:
                started = time.perf_counter()
                scanned = scheduler.tick(force=True)
                seconds = time.perf_counter() - started
            assert scanned == 1
            session.finish("succeeded")
        db.drop()
    return ScanResult(known, seconds, counter.count)


def _mark_loaded(session: LedgerSession, feed_id: int, bucket: Path) -> None:
    """Every object of the bucket, already loaded (one scan, then statuses set directly)."""
    store, _ = locate(str(bucket))
    objects = [Discovered(o.key, o.version, o.etag, o.size, o.modified) for o in store.list()]
    session.ledger().discover("load", feed_id, store.url, objects)
    session.conn.execute(
        "UPDATE sluice.units SET status = 'ingesting' WHERE feed_id = %s", [feed_id]
    )
    session.conn.execute(
        "UPDATE sluice.units SET status = %s, finished_at = now() WHERE feed_id = %s",
        [Status.LOADED.value, feed_id],
    )


class StatementCounter:
    """Counts the statements every psycopg connection of this process sends while active."""

    def __init__(self) -> None:
        self.count = 0
        self._saved: Any = None

    def __enter__(self) -> StatementCounter:
        original = psycopg.Cursor.execute
        self._saved = original

        def counted(cur: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(cur, *args, **kwargs)

        psycopg.Cursor.execute = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        psycopg.Cursor.execute = self._saved  # type: ignore[method-assign]


# -- results ------------------------------------------------------------------------------------


def print_results(loads: dict[str, float], scans: list[ScanResult]) -> None:
    print()
    print("(1) 16 shards into an empty database (medians) 1 worker  2 workers   2/1   target")
    results: dict[str, Any] = {}
    labels = {
        "floor": "floor: server COPY, 1 / 2 sessions",
        "threads": "sluice run --once (threads)",
        "threads-span": "  its loads (first claim to last commit)",
        "celery": "Celery worker processes",
        "celery-span": "  their loads (first claim to last commit)",
    }
    for mode, label in labels.items():
        if f"{mode}-1" not in loads:
            continue
        one, two = loads[f"{mode}-1"], loads[f"{mode}-2"]
        ratio = two / one
        if mode == "floor" or mode.endswith("-span"):
            verdict = "(the floor)" if mode == "floor" else "(no process start)"
        else:
            verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
        print(
            f"    {label:<40} {one:7.2f} s {two:8.2f} s  {ratio:5.2f}×  ≤ {TARGET_RATIO}× {verdict}"
        )
        key = mode.replace("-", "_")
        results[f"{key}_ratio"] = round(ratio, 3)
        results[f"{key}_seconds"] = [round(one, 2), round(two, 2)]
    print()
    print("(2) one scheduler tick, nothing new           seconds   statements   target")
    for scan in scans:
        verdict = "met" if scan.seconds <= TARGET_SCAN_SECONDS or scan.known < 10_000 else "MISSED"
        print(
            f"    {scan.known:>6,} known objects                   {scan.seconds:7.3f}   "
            f"{scan.statements:10d}   ≤ {TARGET_SCAN_SECONDS} s {verdict}"
        )
    constant = len({s.statements for s in scans}) == 1
    print(f"    statements constant in the number of objects: {'yes' if constant else 'NO'}")
    results["scan"] = [s.__dict__ for s in scans]
    results["statements_constant"] = constant
    print(json.dumps(results))
