"""The GLAM benchmark: one generated desktop/nightly file of N rows, every method, one run.

Steps, each after a CHECKPOINT, in a scratch database on the server of SLUICE_DATABASE_URL:

(a) floor — raw server COPY of the file into an unlogged table without indexes;
(b) seed — GLAM's importer: a logged scratch table ``(LIKE target)`` minus ``id``, COPY, then
    ``INSERT ... SELECT ... ON CONFLICT ON CONSTRAINT ... DO UPDATE`` into a GLAM-shaped target;
    fresh (empty target), then a re-import of the changed generation;
(c) sluice, fresh — ``sluice glam import`` into an empty database;
(d) sluice, unchanged — the next generation re-exported with identical rows (a new version);
(e) sluice, changed — the generation after that, with a fraction of the rows changed.

Sluice runs as a child process of the real CLI, so its wall time and peak RSS are its own. Its
load time is the run's seconds minus the serving-view refresh it reports (``hooks``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import keyed, report
from bench.child import run_measured
from bench.scratch import BenchError, Connection, ScratchDatabase
from sluice.recipes.glam.generate import GenerateReport, generate, manifest_name
from sluice.recipes.glam.tables import DESKTOP_COLUMNS, DESKTOP_VALUES, Product, shard_name

ROOT = Path(__file__).resolve().parent.parent
DATA_ROOT = Path(__file__).resolve().parent / ".data"

PRODUCT: Product = "desktop"
CHANNEL = "nightly"
DEFAULT_ROWS = 1_000_000
DEFAULT_CHANGE = 0.1
DEFAULT_DATABASE = "sluice_bench"
COPY_BLOCK = 1 << 20  # bytes per COPY write, for the floor and the seed

#: Upper bounds of the ratios to the floor, and of the sluice process's peak RSS.
TARGETS = {"fresh": 1.3, "unchanged": 1.5, "changed": 2.0}
RSS_TARGET_MB = 256.0

FILE_COLUMNS = tuple(c.name for c in DESKTOP_COLUMNS)
FLOOR_TABLE = "bench_floor"
SEED_TABLE = "bench_seed_desktop_nightly_aggregation"
SEED_TMP = "tmp_import_desktop_nightly"
SEED_CONSTRAINT = "bench_seed_desktop_nightly_unique_dimensions"
#: GLAM's desktop unique constraint: seven dimensions, metric_type not among them.
SEED_KEY = ("version", "os", "build_id", "process", "metric", "metric_key", "client_agg_type")

LOAD_TIME = "sluice load time = the run's seconds minus its serving-view refresh"


# -- options --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    rows: int
    change: float
    keep: bool
    database: str


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench glam",
        description="Benchmark the GLAM desktop aggregate import: raw COPY floor, the seed's "
        "method and sluice (fresh, unchanged and changed re-imports), in one run.",
    )
    parser.add_argument(
        "--rows", type=int, default=DEFAULT_ROWS, help="rows in the file (default %(default)s)"
    )
    parser.add_argument(
        "--change",
        type=float,
        default=DEFAULT_CHANGE,
        help="fraction of rows changed by the last generation (default %(default)s)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the generated files and the scratch database",
    )
    parser.add_argument(
        "--database",
        default=DEFAULT_DATABASE,
        help="scratch database created on the server (default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    if not 0.0 < args.change <= 1.0:
        parser.error("--change must be a fraction in (0, 1]")
    return Options(rows=args.rows, change=args.change, keep=args.keep, database=args.database)


# -- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Files:
    """The generations: `bucket` holds the first; the others are moved into it in turn."""

    bucket: Path
    unchanged: Path
    changed: Path
    bytes: int
    changed_rows: int

    @property
    def shard(self) -> str:
        return shard_name(PRODUCT, CHANNEL, 0)


@dataclass(frozen=True)
class SeedResult:
    seconds: float
    copy_seconds: float
    upsert_seconds: float
    rows: int


@dataclass(frozen=True)
class SluiceResult:
    label: str
    wall_seconds: float
    run_seconds: float
    loads_seconds: float
    refreshes: list[float]
    peak_rss_mb: float
    discovered: int
    loaded: int
    counts: Mapping[str, int]
    paths: list[str]
    #: Seconds per phase of the bulk path (copy, index, ...), summed over the loads.
    phases: Mapping[str, float] = field(default_factory=dict)

    @property
    def refresh_seconds(self) -> float:
        return sum(self.refreshes, 0.0)

    @property
    def load_seconds(self) -> float:
        """What the ratios use: the run without its serving-view refresh."""
        return self.run_seconds - self.refresh_seconds


@dataclass
class Results:
    options: Options
    server_version: str
    database: str
    files: Files
    floor_seconds: float = 0.0
    keyed_one: keyed.KeyedResult | None = None
    keyed_split: keyed.KeyedResult | None = None
    seed_fresh: SeedResult | None = None
    seed_reimport: SeedResult | None = None
    fresh: SluiceResult | None = None
    unchanged: SluiceResult | None = None
    changed: SluiceResult | None = None
    checkpoint: bool = True
    warnings: list[str] = field(default_factory=list)


# -- entry point ----------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    url = os.environ.get("SLUICE_DATABASE_URL", "").strip()
    if not url:
        print(
            "bench: SLUICE_DATABASE_URL is not set. Point it at a PostgreSQL (15 or later) "
            "server on which the role may create databases, e.g.\n"
            "  SLUICE_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres "
            "python3 tasks.py bench glam --rows 20000",
            file=sys.stderr,
        )
        return 2
    try:
        results = run(options, url)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    print_results(results)
    return 0 if not results.warnings else 1


def run(options: Options, url: str) -> Results:
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="glam-", dir=DATA_ROOT))
    db = ScratchDatabase(url, options.database)
    created = False
    try:
        note(f"scratch database {db.name}; files in {_shown(work)}")
        db.create()
        created = True
        files = make_files(work, options)
        results = Results(
            options=options,
            server_version=db.server_version,
            database=db.display,
            files=files,
        )
        run_steps(db, work, results)
        results.checkpoint = db.checkpoints
        return results
    finally:
        db.close()
        if options.keep:
            note(f"kept {_shown(work)} and database {db.name} (--keep)")
        else:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                DATA_ROOT.rmdir()  # only when no other run's files are left in it
            if created:
                try:
                    db.drop()
                except psycopg.Error as exc:
                    note(f"could not drop the scratch database {db.name}: {exc}")


def run_steps(db: ScratchDatabase, work: Path, results: Results) -> None:
    files, rows = results.files, results.options.rows
    conn = db.connection
    pct = f"{results.options.change:.0%}"

    note("(a) floor: COPY into an unlogged, index-free table")
    results.floor_seconds, copied = floor_copy(db, files.bucket / files.shard)
    expect(results, copied == rows, f"(a) copied {copied:,} rows, expected {rows:,}")
    note("(a1) keyed floor: COPY into sluice's logged table, then its two keys, one transaction")
    results.keyed_one = keyed.one_transaction(db, files.bucket / files.shard)
    expect(results, results.keyed_one.rows == rows, "(a1) did not copy every row")
    note("(a2) keyed floor, split: the same work over two sessions at once")
    results.keyed_split = keyed.split(db, files.bucket / files.shard)
    expect(results, results.keyed_split.rows == rows, "(a2) did not copy every row")
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(keyed.TABLE)))

    note("(b) seed, fresh: scratch table + COPY + INSERT ... ON CONFLICT into an empty target")
    create_seed_target(conn)
    results.seed_fresh = seed_import(db, files.bucket / files.shard)
    expect(results, results.seed_fresh.rows == rows, "(b) fresh did not insert every row")
    note(f"(b) seed, re-import of the next generation ({pct} changed)")
    results.seed_reimport = seed_import(db, files.changed / files.shard)
    expect(results, results.seed_reimport.rows == rows, "(b) re-import did not upsert every row")
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(SEED_TABLE)))

    env = {**os.environ, "SLUICE_DATABASE_URL": db.url}
    note("preparing the sluice ledger in the scratch database (sluice status)")
    prepared = run_measured(
        [sys.executable, "-m", "sluice.cli", "status", "--json"],
        env=env,
        cwd=ROOT,
        log=work / "status.log",
    )
    if prepared.returncode != 0:
        raise BenchError(f"sluice status failed:\n{prepared.log_tail()}")

    note("(c) sluice, fresh import")
    results.fresh = sluice_import(db, env, work, files.bucket, "fresh")
    check_fresh(results, results.fresh)

    note("(d) sluice, next generation with identical rows")
    publish(files.unchanged, files.bucket, files.shard)
    results.unchanged = sluice_import(db, env, work, files.bucket, "unchanged")
    check_unchanged(results, results.unchanged)

    note(f"(e) sluice, next generation with {pct} of rows changed")
    publish(files.changed, files.bucket, files.shard)
    results.changed = sluice_import(db, env, work, files.bucket, "changed")
    check_changed(results, results.changed)


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


# -- the file and its generations -----------------------------------------------------------


def make_files(work: Path, options: Options) -> Files:
    """Generation 0 in `bucket`; generation 1 (identical rows, new order) and generation 2
    (`change` of the rows with new values) beside it, ready to be moved in."""
    bucket, unchanged, changed = work / "bucket", work / "unchanged", work / "changed"
    started = time.perf_counter()
    note(f"generating {options.rows:,} rows (3 generations, one file each)")
    first = _generate(bucket, rows=options.rows)
    _generate(unchanged, rows=options.rows, base=bucket, change=0.0)
    last = _generate(changed, rows=options.rows, base=unchanged, change=options.change)
    note(f"generated {first.bytes / 1e6:,.1f} MB per file in {time.perf_counter() - started:.1f} s")
    return Files(bucket, unchanged, changed, first.bytes, last.changed_rows)


def _generate(
    out: Path, *, rows: int, base: Path | None = None, change: float = 0.0
) -> GenerateReport:
    return generate(
        PRODUCT,
        CHANNEL,
        rows=rows,
        shards=1,
        out=str(out),
        base=str(base) if base is not None else None,
        change=change,
    )


def publish(source: Path, bucket: Path, shard: str) -> None:
    """Replace the bucket's file with the next generation: same key, a new object version."""
    for name in (shard, manifest_name(PRODUCT, CHANNEL)):
        (source / name).replace(bucket / name)


# -- (a) and (b): SQL run by the harness ----------------------------------------------------


def _names(columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c) for c in columns)


def _column_defs() -> sql.Composed:
    # Types come from the recipe's declarations (checked against a whitelist there).
    return sql.SQL(", ").join(
        sql.SQL("{} {}{}").format(
            sql.Identifier(c.name), sql.SQL(c.type), sql.SQL("" if c.nullable else " NOT NULL")
        )
        for c in DESKTOP_COLUMNS
    )


def copy_file(conn: Connection, table: str, path: Path) -> int:
    """Stream `path` into `table` with COPY ... FROM STDIN (FORMAT csv), 1 MiB per write."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), _names(FILE_COLUMNS)
    )
    with conn.cursor() as cur:
        with cur.copy(statement) as copy, path.open("rb") as source:
            while block := source.read(COPY_BLOCK):
                copy.write(block)
        return cur.rowcount


def floor_copy(db: ScratchDatabase, path: Path) -> tuple[float, int]:
    conn = db.connection
    table = sql.Identifier(FLOOR_TABLE)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} ({})").format(table, _column_defs()))
    db.checkpoint()
    started = time.perf_counter()
    rows = copy_file(conn, FLOOR_TABLE, path)
    seconds = time.perf_counter() - started
    conn.execute(sql.SQL("DROP TABLE {}").format(table))
    return seconds, rows


def create_seed_target(conn: Connection) -> None:
    """A table shaped like GLAM's desktop aggregation table (Django model)."""
    table = sql.Identifier(SEED_TABLE)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    conn.execute(
        sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, {}, CONSTRAINT {} UNIQUE ({}))").format(
            table, _column_defs(), sql.Identifier(SEED_CONSTRAINT), _names(SEED_KEY)
        )
    )


def seed_import(db: ScratchDatabase, path: Path) -> SeedResult:
    """GLAM's per-file import, statement for statement, each one committed on its own."""
    conn = db.connection
    target, tmp = sql.Identifier(SEED_TABLE), sql.Identifier(SEED_TMP)
    cols = _names(FILE_COLUMNS)
    sets = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(v), sql.Identifier(v))
        for v in DESKTOP_VALUES
    )
    upsert = sql.SQL(
        "INSERT INTO {target} ({cols}) SELECT {cols} FROM {tmp} "
        "ON CONFLICT ON CONSTRAINT {key} DO UPDATE SET {sets}"
    ).format(target=target, cols=cols, tmp=tmp, key=sql.Identifier(SEED_CONSTRAINT), sets=sets)
    db.checkpoint()
    started = time.perf_counter()
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(tmp))
    conn.execute(sql.SQL("CREATE TABLE {} (LIKE {})").format(tmp, target))
    conn.execute(sql.SQL("ALTER TABLE {} DROP COLUMN id").format(tmp))
    copy_file(conn, SEED_TMP, path)
    copied = time.perf_counter()
    rows = conn.execute(upsert).rowcount
    conn.execute(sql.SQL("DROP TABLE {}").format(tmp))
    done = time.perf_counter()
    return SeedResult(
        seconds=done - started,
        copy_seconds=copied - started,
        upsert_seconds=done - copied,
        rows=rows,
    )


# -- (c), (d), (e): the sluice CLI as a child process ---------------------------------------


def sluice_import(
    db: ScratchDatabase, env: Mapping[str, str], work: Path, bucket: Path, label: str
) -> SluiceResult:
    args = [
        sys.executable,
        "-m",
        "sluice.cli",
        "glam",
        "import",
        "--product",
        PRODUCT,
        "--channel",
        CHANNEL,
        "--bucket",
        str(bucket),
        "--json",
    ]
    db.checkpoint()
    child = run_measured(args, env=env, cwd=ROOT, log=work / f"sluice-{label}.log")
    if child.returncode != 0:
        raise BenchError(
            f"sluice import ({label}) exited with {child.returncode}:\n"
            f"{child.stdout.decode(errors='replace')[-2000:]}\n{child.log_tail()}"
        )
    try:
        data: dict[str, Any] = json.loads(child.stdout)
    except ValueError as exc:
        raise BenchError(f"sluice import ({label}) did not print a JSON report: {exc}") from None
    loads: list[dict[str, Any]] = data.get("loads", [])
    hooks: list[dict[str, Any]] = data.get("hooks", [])
    return SluiceResult(
        label=label,
        wall_seconds=child.wall_seconds,
        run_seconds=float(data["seconds"]),
        loads_seconds=sum(float(load.get("seconds", 0.0)) for load in loads),
        refreshes=[float(h.get("seconds", 0.0)) for h in hooks if h.get("kind") == "refresh"],
        peak_rss_mb=child.peak_rss_mb,
        discovered=int(data.get("discovered", 0)),
        loaded=int(data.get("loaded", 0)),
        counts={k: int(v) for k, v in data.get("rows", {}).items()},
        paths=[str(load.get("path", "")) for load in loads],
        phases=_phases(loads),
    )


def _phases(loads: list[dict[str, Any]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for load in loads:
        for name, seconds in (load.get("phases") or {}).items():
            total[name] = total.get(name, 0.0) + float(seconds)
    return total


# -- sanity checks: a benchmark of a wrong result is worthless --------------------------------


def expect(results: Results, condition: bool, problem: str) -> None:
    if not condition:
        results.warnings.append(problem)
        note(f"WARNING: {problem}")


def _one_load(results: Results, run: SluiceResult) -> None:
    expect(
        results,
        run.discovered == 1 and run.loaded == 1,
        f"({run.label}) discovered {run.discovered} and loaded {run.loaded} objects, expected 1",
    )


def check_fresh(results: Results, run: SluiceResult) -> None:
    _one_load(results, run)
    rows = results.options.rows
    expect(
        results,
        run.counts.get("inserted") == rows,
        f"(c) inserted {run.counts.get('inserted')} rows, expected {rows:,}",
    )
    expect(results, len(run.refreshes) == 1, f"(c) refreshed {len(run.refreshes)} views, not 1")


def check_unchanged(results: Results, run: SluiceResult) -> None:
    _one_load(results, run)
    expect(
        results,
        run.counts.get("inserted") == 0 and run.counts.get("updated") == 0,
        f"(d) changed rows: {dict(run.counts)}",
    )
    expect(results, not run.refreshes, f"(d) refreshed the view {len(run.refreshes)} times")


def check_changed(results: Results, run: SluiceResult) -> None:
    _one_load(results, run)
    want = results.files.changed_rows
    expect(
        results,
        run.counts.get("updated") == want and run.counts.get("inserted") == 0,
        f"(e) updated {run.counts.get('updated')} and inserted {run.counts.get('inserted')} "
        f"rows, expected {want:,} updated",
    )
    expect(results, len(run.refreshes) == 1, f"(e) refreshed {len(run.refreshes)} views, not 1")


# -- output ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Complete:
    """Results of a finished run, every step present."""

    floor: float
    keyed_one: keyed.KeyedResult
    keyed_split: keyed.KeyedResult
    seed_fresh: SeedResult
    seed_reimport: SeedResult
    runs: dict[str, SluiceResult]  # fresh, unchanged, changed


def _complete(results: Results) -> _Complete:
    r = results
    done = (r.keyed_one, r.keyed_split, r.seed_fresh, r.seed_reimport)
    if not (all(done) and r.fresh and r.unchanged and r.changed):
        raise BenchError("the run ended before every step was measured")
    assert r.keyed_one and r.keyed_split and r.seed_fresh and r.seed_reimport
    assert r.fresh and r.unchanged and r.changed
    runs = {"fresh": r.fresh, "unchanged": r.unchanged, "changed": r.changed}
    return _Complete(
        r.floor_seconds, r.keyed_one, r.keyed_split, r.seed_fresh, r.seed_reimport, runs
    )


def figures(results: Results) -> dict[str, Any]:
    """The JSON line: the five headline figures first, details after."""
    done = _complete(results)
    floor, runs = done.floor, done.runs

    def r3(value: float) -> float:
        return round(value, 3)

    ratios = {name: r3(run.load_seconds / floor) for name, run in runs.items()}
    peak = max(run.peak_rss_mb for run in runs.values())
    return {
        **ratios,
        "seed_vs_sluice": r3(done.seed_fresh.seconds / runs["fresh"].load_seconds),
        "peak_rss_mb": round(peak, 1),
        "seed_reimport_vs_sluice": r3(done.seed_reimport.seconds / runs["changed"].load_seconds),
        "seed_fresh_vs_floor": r3(done.seed_fresh.seconds / floor),
        "seed_reimport_vs_floor": r3(done.seed_reimport.seconds / floor),
        "keyed_one_vs_floor": r3(done.keyed_one.seconds / floor),
        "keyed_split_vs_floor": r3(done.keyed_split.seconds / floor),
        "fresh_vs_keyed_one": r3(runs["fresh"].load_seconds / done.keyed_one.seconds),
        "rows": results.options.rows,
        "bytes": results.files.bytes,
        "change": results.options.change,
        "changed_rows": results.files.changed_rows,
        "seconds": {
            "floor": r3(floor),
            "keyed_one": r3(done.keyed_one.seconds),
            "keyed_split": r3(done.keyed_split.seconds),
            "seed_fresh": r3(done.seed_fresh.seconds),
            "seed_reimport": r3(done.seed_reimport.seconds),
            **{f"sluice_{name}": r3(run.load_seconds) for name, run in runs.items()},
        },
        "wall_seconds": {name: r3(run.wall_seconds) for name, run in runs.items()},
        "refresh_seconds": {name: r3(run.refresh_seconds) for name, run in runs.items()},
        "refreshes": {name: len(run.refreshes) for name, run in runs.items()},
        "peak_rss_mb_by_step": {name: round(run.peak_rss_mb, 1) for name, run in runs.items()},
        "load_time": "run seconds minus serving-view refresh",
        "targets": {**TARGETS, "peak_rss_mb": RSS_TARGET_MB},
        "met": {
            **{name: ratios[name] <= limit for name, limit in TARGETS.items()},
            "unchanged_no_refresh": not runs["unchanged"].refreshes,
            "peak_rss_mb": peak <= RSS_TARGET_MB,
        },
        "checkpoint": results.checkpoint,
        "server": results.server_version.split()[0] if results.server_version else "",
        "warnings": results.warnings,
    }


def _verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "MISSED"


def print_results(results: Results) -> None:
    """The readable tables, then the JSON line last."""
    data = figures(results)
    done = _complete(results)
    options = results.options
    pct = f"{options.change:.0%}"
    print()
    print(
        f"GLAM desktop import benchmark: {options.rows:,} rows in one "
        f"{results.files.bytes / 1e6:,.1f} MB file; the changed generation gives new values "
        f"to {results.files.changed_rows:,} rows ({pct})"
    )
    print(f"server: PostgreSQL {results.server_version}; scratch database {results.database}")
    if not results.checkpoint:
        print("note: CHECKPOINT was not allowed; steps did not start from a flushed state")
    print()
    _print_steps(done, pct)
    print()
    _print_seed(done, pct)
    print()
    _print_sluice(done)
    print()
    _print_summary(data, pct)
    if results.warnings:
        print()
        for problem in results.warnings:
            print(f"WARNING: {problem}")
    print()
    print(json.dumps(data))


def _print_steps(done: _Complete, pct: str) -> None:
    floor = done.floor

    def step(name: str, value: float, key: str | None = None) -> list[str]:
        ratio = round(value / floor, 3)  # as in the JSON line, so both print the same
        target = f"≤ {TARGETS[key]}×" if key else ""
        verdict = _verdict(ratio, TARGETS[key]) if key else ""
        return [name, report.seconds(value), report.ratio(ratio), target, verdict]

    runs = done.runs
    rows = [
        step("(a) floor: COPY into unlogged, index-free table", floor),
        step("(a1) keyed floor: logged COPY + 2 keys, 1 xact", done.keyed_one.seconds),
        step("(a2) keyed floor, split over 2 sessions", done.keyed_split.seconds),
        step("(b) seed, fresh: tmp table + COPY + upsert", done.seed_fresh.seconds),
        step(f"    seed, re-import ({pct} changed)", done.seed_reimport.seconds),
        step("(c) sluice, fresh", runs["fresh"].load_seconds, "fresh"),
        step("(d) sluice, re-import, unchanged rows", runs["unchanged"].load_seconds, "unchanged"),
        step(f"(e) sluice, re-import, {pct} changed", runs["changed"].load_seconds, "changed"),
    ]
    print(report.table(["step", "seconds", "× floor", "target", ""], rows, right=[1, 2]))
    print(f"({LOAD_TIME}; (a), (a1), (a2) and (b) are timed around their SQL only)")
    fresh = done.runs["fresh"].phases
    print(
        "COPY s + keys s: "
        + "; ".join(
            f"{label} {k.copy_seconds:.2f} + {k.index_seconds:.2f}"
            for label, k in (("(a1)", done.keyed_one), ("(a2)", done.keyed_split))
        )
        + f"; (c) {fresh.get('copy', 0.0):.2f} + {fresh.get('index', 0.0):.2f}"
    )


def _print_seed(done: _Complete, pct: str) -> None:
    print("seed steps: scratch table + COPY, then INSERT ... ON CONFLICT DO UPDATE")
    rows = [
        [
            label,
            report.seconds(s.copy_seconds),
            report.seconds(s.upsert_seconds),
            report.seconds(s.seconds),
            report.count(s.rows),
        ]
        for label, s in (
            ("(b) fresh", done.seed_fresh),
            (f"(b) re-import, {pct}", done.seed_reimport),
        )
    ]
    header = ["step", "copy s", "upsert s", "total s", "rows upserted"]
    print(report.table(header, rows, right=[1, 2, 3, 4]))


def _print_sluice(done: _Complete) -> None:
    print("sluice commands (child processes of the CLI)")
    rows: list[list[str]] = []
    for label, key in (
        ("(c) fresh", "fresh"),
        ("(d) unchanged", "unchanged"),
        ("(e) changed", "changed"),
    ):
        run = done.runs[key]
        refresh = f"{run.refresh_seconds:.2f}" if run.refreshes else "none"
        if len(run.refreshes) > 1:
            refresh += f" ({len(run.refreshes)} views)"
        rows.append(
            [
                label,
                report.seconds(run.wall_seconds),
                report.seconds(run.run_seconds),
                report.seconds(run.loads_seconds),
                report.seconds(run.load_seconds),
                refresh,
                "+".join(run.paths) or "-",
                report.count(run.counts.get("inserted")),
                report.count(run.counts.get("updated")),
                report.count(run.counts.get("unchanged")),
                f"{run.peak_rss_mb:.0f} MB",
            ]
        )
    header = ["step", "wall s", "run s", "loads s", "load s", "refresh s", "path"]
    header += ["inserted", "updated", "unchanged", "peak RSS"]
    print(report.table(header, rows, right=[1, 2, 3, 4, 5, 7, 8, 9, 10]))
    print(
        "wall: the whole command, interpreter start-up included; run: the run's own seconds;\n"
        "loads: the sum of its loads' seconds; load: run minus refresh, used for the ratios;\n"
        "refresh: of the serving view, a plain REFRESH when the view was empty (c),\n"
        "else REFRESH MATERIALIZED VIEW CONCURRENTLY (e)."
    )
    unchanged = done.runs["unchanged"].refreshes
    print(
        f"serving-view refresh: (c) {done.runs['fresh'].refresh_seconds:.2f} s, "
        f"(e) {done.runs['changed'].refresh_seconds:.2f} s; (d) "
        + ("none, as expected" if not unchanged else f"{len(unchanged)} (expected none)")
    )


def _print_summary(data: dict[str, Any], pct: str) -> None:
    rows = [
        [
            short,
            what,
            report.ratio(data[key]),
            f"≤ {TARGETS[key]}×",
            _verdict(data[key], TARGETS[key]),
        ]
        for short, what, key in (
            ("c/a", "sluice fresh / floor", "fresh"),
            ("d/a", "sluice unchanged re-import / floor", "unchanged"),
            ("e/a", f"sluice {pct} changed re-import / floor", "changed"),
        )
    ]
    rows.append(
        ["c/a1", "sluice fresh / keyed floor", report.ratio(data["fresh_vs_keyed_one"]), "", ""]
    )
    rows.append(
        [
            "a2/a",
            "split keyed floor / floor (least fresh ratio here)",
            report.ratio(data["keyed_split_vs_floor"]),
            "",
            "",
        ]
    )
    rows.append(["b/c", "seed fresh / sluice fresh", report.ratio(data["seed_vs_sluice"]), "", ""])
    rows.append(
        [
            "b'/e",
            "seed re-import / sluice changed re-import",
            report.ratio(data["seed_reimport_vs_sluice"]),
            "",
            "",
        ]
    )
    peak = data["peak_rss_mb"]
    rows.append(
        [
            "RSS",
            "peak RSS of the sluice process, max of (c)(d)(e)",
            f"{peak:.0f} MB",
            f"≤ {RSS_TARGET_MB:.0f} MB",
            _verdict(peak, RSS_TARGET_MB),
        ]
    )
    print(report.table(["", "figure", "value", "target", ""], rows, right=[2]))
