"""``python -m bench mozagg``: one submission_date day of mozaggregator, exported every way.

In a scratch database on the server of SLUICE_DATABASE_URL, ``sluice mozagg generate`` writes
one day at the real size (100 tables, 3,123,817 rows; ``--rows`` scales it down), then, each
step after a CHECKPOINT:

(a) floor — ``COPY ... TO STDOUT`` of every table of the day to /dev/null (psql, one session);
(b) the seed's path — ``pg_dump --format directory`` of the day, then a plain parse of its data
    into Parquet as the seed's Spark job did (split on tabs, JSON dimensions, the aggregate as
    a bracketed string; no COPY unescaping), single process;
(c) sluice direct — ``sluice mozagg export`` (its export phase: binary COPY through ADBC → Arrow →
    Parquet, two tables at once);
(d) sluice from the dump — ``sluice mozagg export --from-dump`` (its export phase);
(e) the Iceberg commit and the DuckDB refresh of (c) (its lake and warehouse phases).

Prints c/a, d/a, b/c and the peak RSS of the sluice processes (targets: c/a ≤ 1.5, peak RSS
≤ 512 MB).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.child import ChildResult, run_measured
from bench.report import ratio, seconds, table
from bench.scratch import BenchError, ScratchDatabase, server_url
from sluice.export.dump import read_toc, write_dump

ROOT = Path(__file__).resolve().parent.parent
DATA_ROOT = Path(__file__).resolve().parent / ".data"
DAY = "2019-12-01"
DS = "20191201"
KIND = "submission_date"
SCHEMA = "mozaggregator"
REAL_ROWS = 3_123_817
TABLES = 100
KEYS = ("os", "child", "label", "metric", "osVersion", "application", "architecture")


@dataclass
class Options:
    rows: int
    tables: int
    database: str
    keep: bool


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench mozagg", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--rows", type=int, default=REAL_ROWS, help="rows of the day (default %(default)s)"
    )
    parser.add_argument(
        "--tables", type=int, default=TABLES, help="tables of the day (default %(default)s)"
    )
    parser.add_argument("--database", default="sluice_bench_mozagg", help="scratch database")
    parser.add_argument("--keep", action="store_true", help="keep the files and the database")
    args = parser.parse_args(argv)
    return Options(args.rows, args.tables, args.database, args.keep)


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    url = server_url("mozagg --rows 100000")
    if url is None:
        return 2
    try:
        results = run(options, url)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    print_results(options, results)
    return 0


def sluice(env: dict[str, str], work: Path, label: str, *args: str) -> ChildResult:
    child = run_measured(
        [sys.executable, "-m", "sluice.cli", "mozagg", *args],
        env=env,
        cwd=ROOT,
        log=work / f"{label}.log",
    )
    if child.returncode != 0:
        raise BenchError(f"sluice mozagg {args[0]} ({label}) failed:\n{child.log_tail()}")
    return child


def run(options: Options, url: str) -> dict[str, Any]:
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mozagg-", dir=DATA_ROOT))
    db = ScratchDatabase(url, options.database)
    created = False
    try:
        db.create()
        created = True
        env = {**os.environ, "SLUICE_DATABASE_URL": db.url, "SLUICE_STATE_DIR": str(work / "state")}
        per_table = max(options.rows // options.tables, 1)
        note(f"generating {options.tables} tables x {per_table:,} rows in {db.name}")
        sluice(
            env,
            work,
            "generate",
            "generate",
            "--start",
            DAY,
            "--tables-per-day",
            str(options.tables),
            "--rows-per-table",
            str(per_table),
        )
        rows = per_table * options.tables
        tables = [
            r[0]
            for r in db.connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", [SCHEMA]
            )
        ]
        db.connection.execute("VACUUM ANALYZE")
        results: dict[str, Any] = {"rows": rows, "tables": len(tables), "server": db.server_version}

        note("(a) floor: COPY ... TO STDOUT of every table to /dev/null")
        db.checkpoint()
        results["a"] = floor(db.url, tables)

        note("(b) the seed's path: pg_dump --format directory, then a plain parse to Parquet")
        archive = work / "dump" / KIND / DS
        db.checkpoint()
        started = time.perf_counter()
        write_dump(db.url, SCHEMA, tables, archive)
        results["b_dump"] = time.perf_counter() - started
        started = time.perf_counter()
        parsed = seed_parse(archive, work / "seed.parquet")
        results["b_parse"] = time.perf_counter() - started
        results["b"] = results["b_dump"] + results["b_parse"]
        results["b_rows"] = parsed

        note("(c) sluice direct export (and (e) its Iceberg commit and DuckDB refresh)")
        db.checkpoint()
        child = sluice(env, work, "direct", "export", "--type", KIND, "--day", DAY, "--json")
        unit = json.loads(child.stdout)["units"][0]
        results["c"] = unit["phases"]["export"]
        results["e_lake"] = unit["phases"].get("lake")
        results["e_warehouse"] = unit["phases"].get("warehouse")
        results["c_wall"] = child.wall_seconds
        results["c_rss"] = child.peak_rss_mb
        results["c_rows"] = unit["output_rows"]

        note("(d) sluice export from the dump")
        db.checkpoint()
        child = sluice(
            env,
            work,
            "dump",
            "export",
            "--type",
            KIND,
            "--day",
            DAY,
            "--from-dump",
            str(archive),
            "--json",
        )
        unit = json.loads(child.stdout)["units"][0]
        results["d"] = unit["phases"]["export"]
        results["d_wall"] = child.wall_seconds
        results["d_rss"] = child.peak_rss_mb
        results["d_rows"] = unit["output_rows"]
        results["parquet_mb"] = (
            sum(p.stat().st_size for p in (work / "state" / "export").rglob("*.parquet")) / 2 / 1e6
        )
        results["dump_mb"] = sum(p.stat().st_size for p in archive.iterdir()) / 1e6
        return results
    finally:
        db.close()
        if options.keep:
            note(f"kept {work} and database {db.name}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                DATA_ROOT.rmdir()
            if created:
                db.drop()


def floor(url: str, tables: list[str]) -> float:
    """COPY of every table to /dev/null through psql (one session, the C client)."""
    script = "".join(f'COPY "{SCHEMA}"."{t}" TO STDOUT;\n' for t in tables)
    psql = shutil.which("psql")
    if psql is None:
        raise BenchError("psql is needed for the floor (Debian's postgresql-client)")
    started = time.perf_counter()
    with Path(os.devnull).open("wb") as sink:
        subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
            input=script.encode(),
            stdout=sink,
            check=True,
        )
    return time.perf_counter() - started


def seed_parse(archive: Path, target: Path) -> int:
    """The seed's transformation without Spark: tab split, JSON dimensions, the aggregate as a
    bracketed string, table name split on '_', snappy Parquet."""
    schema = pa.schema(
        [
            ("ingest_date", pa.date32()),
            ("aggregate_type", pa.string()),
            ("ds_nodash", pa.string()),
            ("channel", pa.string()),
            ("version", pa.string()),
        ]
        + [(k, pa.string()) for k in KEYS]
        + [("aggregate", pa.string())]
    )
    today = pa.scalar(datetime.now(UTC).date(), pa.date32())
    total = 0
    with pq.ParquetWriter(target, schema, compression="snappy") as writer:
        for entry in read_toc(archive):
            parts = entry.table.split("_")
            channel, version = parts[2], parts[3]
            columns: dict[str, list[Any]] = {name: [] for name in schema.names[5:]}
            with gzip.open(archive / f"{entry.dump_id}.dat.gz", "rt", encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("\\."):
                        break
                    dims_text, _, agg = line.rstrip("\n").partition("\t")
                    try:
                        dims = json.loads(dims_text)
                    except ValueError:
                        dims = {}
                    dims = dims if isinstance(dims, dict) else {}
                    for k in KEYS:
                        value = dims.get(k)
                        columns[k].append(None if value is None else str(value))
                    columns["aggregate"].append(agg.replace("{", "[").replace("}", "]"))
            n = len(columns["aggregate"])
            total += n
            arrays = [
                pa.repeat(today, n),
                pa.repeat(pa.scalar(KIND), n),
                pa.repeat(pa.scalar(DS), n),
                pa.repeat(pa.scalar(channel), n),
                pa.repeat(pa.scalar(version), n),
                *(pa.array(columns[name], pa.string()) for name in schema.names[5:]),
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
    return total


def print_results(options: Options, r: dict[str, Any]) -> None:
    print(
        f"\nmozagg bench: one {KIND} day, {r['tables']} tables, {r['rows']:,} rows "
        f"(dump {r['dump_mb']:.0f} MB, Parquet {r['parquet_mb']:.0f} MB), "
        f"PostgreSQL {r['server']}\n"
    )
    rows = [
        ["(a) floor: COPY TO STDOUT → /dev/null (psql)", seconds(r["a"]), "-", "-"],
        ["(b) seed: pg_dump + plain parse → Parquet", seconds(r["b"]), "-", f"{r['b_rows']:,}"],
        ["    pg_dump --format directory", seconds(r["b_dump"]), "-", "-"],
        ["    parse → Parquet", seconds(r["b_parse"]), "-", "-"],
        ["(c) sluice direct → Parquet", seconds(r["c"]), f"{r['c_rss']:.0f}", f"{r['c_rows']:,}"],
        [
            "(d) sluice from the dump → Parquet",
            seconds(r["d"]),
            f"{r['d_rss']:.0f}",
            f"{r['d_rows']:,}",
        ],
        ["(e) Iceberg commit", seconds(r["e_lake"]), "-", "-"],
        ["    DuckDB refresh", seconds(r["e_warehouse"]), "-", "-"],
        ["    sluice export, whole command (c + e)", seconds(r["c_wall"]), "-", "-"],
    ]
    print(table(["step", "seconds", "peak RSS MB", "rows"], rows, right=[1, 2, 3]))
    print()
    print(f"c/a = {ratio(r['c'] / r['a'])}   (target ≤ 1.5×)")
    print(f"d/a = {ratio(r['d'] / r['a'])}")
    print(f"b/c = {ratio(r['b'] / r['c'])}")
    peak = max(r["c_rss"], r["d_rss"])
    print(f"peak RSS = {peak:.0f} MB   (target ≤ 512 MB)")
