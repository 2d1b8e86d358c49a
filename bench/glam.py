"""The GLAM benchmark: one generated desktop/nightly file of N rows, every method, one run.

Steps, each after a CHECKPOINT, in a scratch database on the server of SLUICE_DATABASE_URL:

(a) floor — raw server COPY of the file into an unlogged table without indexes, sampled three
    times (first, and again right before (d) and before (e)); the ratios use the median;
(a1), (a2) keyed floors — the server's own work for sluice's logged, keyed table (``keyed``);
(b) seed — GLAM's importer: a logged scratch table ``(LIKE target)`` minus ``id``, COPY, then
    ``INSERT ... SELECT ... ON CONFLICT ON CONSTRAINT ... DO UPDATE`` into a GLAM-shaped target;
    fresh (empty target), then a re-import of the changed generation;
(c) sluice, fresh — ``sluice glam import`` into an empty database (serving copy built in bulk);
(d) sluice, unchanged — the next generation re-exported with identical rows (a new version);
(e) sluice, changed — the generation after that, with a fraction of the rows changed (the
    rows the loads held for the incremental serving copy released);
(c'), (d'), (e') — the same three imports with the serving copy a materialized view refreshed
    concurrently (``serving="matview"``), in a second scratch database: the comparison row.

Sluice runs as a child process (the real CLI; the matview rows through the same API), so its
wall time and peak RSS are its own. Its import time is the run's seconds minus the serving work
it reports (``hooks``); the end-to-end cycle is the run's seconds, import plus serving.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import keyed
from bench.child import run_measured
from bench.glam_results import (
    CHANNEL,
    PRODUCT,
    Files,
    Options,
    Results,
    SeedResult,
    SluiceResult,
    print_results,
)
from bench.scratch import BenchError, Connection, ScratchDatabase, server_url
from sluice.recipes.glam.generate import GenerateReport, generate, manifest_name
from sluice.recipes.glam.tables import DESKTOP_COLUMNS, DESKTOP_VALUES

ROOT = Path(__file__).resolve().parent.parent
DATA_ROOT = Path(__file__).resolve().parent / ".data"

DEFAULT_ROWS = 1_000_000
DEFAULT_CHANGE = 0.1
DEFAULT_DATABASE = "sluice_bench"
COPY_BLOCK = 1 << 20  # bytes per COPY write, for the floor and the seed


FILE_COLUMNS = tuple(c.name for c in DESKTOP_COLUMNS)
FLOOR_TABLE = "bench_floor"
SEED_TABLE = "bench_seed_desktop_nightly_aggregation"
SEED_TMP = "tmp_import_desktop_nightly"
SEED_CONSTRAINT = "bench_seed_desktop_nightly_unique_dimensions"
#: GLAM's desktop unique constraint: seven dimensions, metric_type not among them.
SEED_KEY = ("version", "os", "build_id", "process", "metric", "metric_key", "client_agg_type")


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


# -- entry point ----------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    url = server_url("glam --rows 20000")
    if url is None:
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
    matview = ScratchDatabase(url, f"{options.database}_matview")
    created = False
    try:
        note(f"scratch databases {db.name}, {matview.name}; files in {_shown(work)}")
        db.create()
        created = True
        matview.create()
        files = make_files(work, options)
        results = Results(
            options=options,
            server_version=db.server_version,
            database=db.display,
            files=files,
        )
        run_steps(db, matview, work, results)
        results.checkpoint = db.checkpoints
        return results
    finally:
        db.close()
        matview.close()
        if options.keep:
            note(f"kept {_shown(work)} and database {db.name} (--keep)")
        else:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                DATA_ROOT.rmdir()  # only when no other run's files are left in it
            if created:
                for scratch in (db, matview):
                    try:
                        scratch.drop()
                    except psycopg.Error as exc:
                        note(f"could not drop the scratch database {scratch.name}: {exc}")


def run_steps(db: ScratchDatabase, matview: ScratchDatabase, work: Path, results: Results) -> None:
    files, rows = results.files, results.options.rows
    conn = db.connection
    pct = f"{results.options.change:.0%}"

    note("(a) floor: COPY into an unlogged, index-free table")
    sample_floor(db, results, "(a)")
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

    env = prepare_ledger(db, work, "status.log")
    matview_env = prepare_ledger(matview, work, "status-matview.log")

    note("(c) sluice, fresh import (incremental serving copy: built in bulk)")
    results.fresh = sluice_import(db, env, work, files.bucket, "fresh")
    check_fresh(results, results.fresh)
    note("(c') sluice, fresh import, serving copy a materialized view")
    results.matview["fresh"] = sluice_import(
        matview, matview_env, work, files.bucket, "fresh-matview", serving="matview"
    )

    sample_floor(db, results, "(a) again, before (d)")
    note("(d) sluice, next generation with identical rows")
    publish(files.unchanged, files.bucket, files.shard)
    results.unchanged = sluice_import(db, env, work, files.bucket, "unchanged")
    check_unchanged(results, results.unchanged)
    note("(d') the same, materialized view")
    results.matview["unchanged"] = sluice_import(
        matview, matview_env, work, files.bucket, "unchanged-matview", serving="matview"
    )

    sample_floor(db, results, "(a) again, before (e)")
    note(f"(e) sluice, next generation with {pct} of rows changed")
    publish(files.changed, files.bucket, files.shard)
    results.changed = sluice_import(db, env, work, files.bucket, "changed")
    check_changed(results, results.changed)
    note("(e') the same, materialized view")
    results.matview["changed"] = sluice_import(
        matview, matview_env, work, files.bucket, "changed-matview", serving="matview"
    )
    check_served(results, db)


def sample_floor(db: ScratchDatabase, results: Results, label: str) -> None:
    """One more sample of the floor (a); the ratios use the median of the samples, so that
    load on a shared machine, which drifts over a run of minutes, moves both sides alike."""
    if results.floor_samples:
        note(f"{label}: the floor once more")
    seconds, copied = floor_copy(db, results.files.bucket / results.files.shard)
    rows = results.options.rows
    expect(results, copied == rows, f"{label} floor copied {copied:,} rows, expected {rows:,}")
    results.floor_samples.append(seconds)
    results.floor_seconds = statistics.median(results.floor_samples)


def prepare_ledger(db: ScratchDatabase, work: Path, log: str) -> dict[str, str]:
    """Create sluice's ledger in `db` (untimed); return the environment of its commands."""
    env = {**os.environ, "SLUICE_DATABASE_URL": db.url}
    note(f"preparing the sluice ledger in {db.name} (sluice status)")
    prepared = run_measured(
        [sys.executable, "-m", "sluice.cli", "status", "--json"],
        env=env,
        cwd=ROOT,
        log=work / log,
    )
    if prepared.returncode != 0:
        raise BenchError(f"sluice status failed:\n{prepared.log_tail()}")
    return env


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


#: The matview rows: the GLAM import verb with ``serving="matview"``, its report as JSON (the
#: CLI's ``--json`` report), in a child process measured like the CLI's.
MATVIEW_CHILD = """
import json, sys
from sluice import open_engine
from sluice.recipes.glam.api import import_aggregates
with open_engine() as engine:
    report = import_aggregates(engine, sys.argv[1], sys.argv[2], sys.argv[3], serving="matview")
print(json.dumps(report.as_dict(), default=str))
"""


def sluice_import(
    db: ScratchDatabase,
    env: Mapping[str, str],
    work: Path,
    bucket: Path,
    label: str,
    *,
    serving: str = "incremental",
) -> SluiceResult:
    if serving == "matview":
        args = [sys.executable, "-c", MATVIEW_CHILD, PRODUCT, CHANNEL, str(bucket)]
    else:
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
        serving=[str(h.get("method", "")) for h in hooks if h.get("kind") == "refresh"],
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


def check_served(results: Results, db: ScratchDatabase) -> None:
    """The incremental serving copy equals the table, row for row, after the three imports."""
    table = f"{PRODUCT}_{CHANNEL}"
    base = sql.Identifier(f"glam_{table}_aggregation")
    copy = sql.Identifier(f"view_glam_{table}_aggregation")
    row = db.connection.execute(
        sql.SQL(
            "SELECT count(*) FROM ((TABLE {b} EXCEPT ALL TABLE {s}) "
            "UNION ALL (TABLE {s} EXCEPT ALL TABLE {b})) d"
        ).format(b=base, s=copy)
    ).fetchone()
    differ = int(row[0]) if row else -1
    expect(results, differ == 0, f"the serving copy differs from the table in {differ} rows")


def check_fresh(results: Results, run: SluiceResult) -> None:
    _one_load(results, run)
    rows = results.options.rows
    expect(
        results,
        run.counts.get("inserted") == rows,
        f"(c) inserted {run.counts.get('inserted')} rows, expected {rows:,}",
    )
    expect(results, run.serving == ["build"], f"(c) serving work {run.serving}, not one build")


def check_unchanged(results: Results, run: SluiceResult) -> None:
    _one_load(results, run)
    expect(
        results,
        run.counts.get("inserted") == 0 and run.counts.get("updated") == 0,
        f"(d) changed rows: {dict(run.counts)}",
    )
    expect(results, not run.refreshes, f"(d) serving work {run.serving}, expected none")


def check_changed(results: Results, run: SluiceResult) -> None:
    _one_load(results, run)
    want = results.files.changed_rows
    expect(
        results,
        run.counts.get("updated") == want and run.counts.get("inserted") == 0,
        f"(e) updated {run.counts.get('updated')} and inserted {run.counts.get('inserted')} "
        f"rows, expected {want:,} updated",
    )
    expect(results, run.serving == ["apply"], f"(e) serving work {run.serving}, not one apply")
