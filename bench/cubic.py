"""``python -m bench cubic``: the Cubic routing.

(a) 10,000 small objects over 20 tables in a local Incoming: one ``run --once`` pass (scan,
    then route every object to Archive), seconds and store requests; then a re-scan that finds
    nothing new.
(b) The lake write of one 1M-row change file (typed and raw, Iceberg commit included) against
    pyarrow writing the same rows straight to Parquet (the floor), each in a child process for
    its peak RSS. The ratio compares the work measured inside each process (the process time,
    shown beside it, adds interpreter start-up and imports: pyiceberg, SQLAlchemy and psycopg
    cost about a second the floor does not pay). Targets: ratio ≤ 1.5×, peak RSS ≤ 256 MB.
(c) The current view's apply of a 1M-row change file, measured by ``bench/current.py``
    (`run_current`), when it is there.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.child import run_measured
from bench.report import count, ratio, seconds, table
from bench.scratch import BenchError, ScratchDatabase, server_url

CT_COLUMNS = [
    ("header__change_seq", "STRING", 35, 0),
    ("header__change_oper", "STRING", 1, 0),
    ("header__timestamp", "DATETIME", 0, 0),
    ("SAMPLE_ID", "INT4", 0, 0),
    ("SAMPLE_NAME", "STRING", 100, 0),
    ("AMOUNT", "NUMERIC", 12, 2),
    ("EDW_INSERTED_DTM", "DATETIME", 0, 0),
    ("EDW_UPDATED_DTM", "DATETIME", 0, 0),
]


# -- (a) routing ------------------------------------------------------------------------------


def _seed_incoming(incoming: Path, tables: int, objects: int) -> None:
    body = gzip.compress(b"sample_id,sample_name,sample_count\n1,Sample 1,5\n2,Sample 2,5\n")
    for i in range(objects):
        folder = incoming / f"cubic/dmap/bench_{i % tables:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"bench_{i:06d}.csv.gz").write_bytes(body)


def _requests(engine: Any) -> dict[str, int]:
    places = engine.cubic_flow.places
    total: dict[str, int] = {}
    seen = set()
    for place in (places.incoming, places.archive, places.error):
        if id(place.store) in seen:
            continue
        seen.add(id(place.store))
        for name, n in place.store.requests.as_dict().items():
            total[name] = total.get(name, 0) + n
        place.store.requests.__init__()  # type: ignore[misc]
    return total


def bench_routing(url: str, work: Path, tables: int, objects: int) -> list[list[str]]:
    from sluice.api import open_engine
    from sluice.config import LoadOptions, Settings
    from sluice.recipes.cubic.options import CubicOptions, TableDeclaration

    incoming = work / "incoming"
    _seed_incoming(incoming, tables, objects)
    declared = {
        f"cubic_dmap__bench_{t:02d}": TableDeclaration(
            f"cubic_dmap__bench_{t:02d}", f"cubic/dmap/bench_{t:02d}/", kind="dmap", lake=False
        )
        for t in range(tables)
    }
    options = CubicOptions(
        incoming=str(incoming),
        archive=str(work / "archive"),
        error=str(work / "error"),
        lake=str(work / "lake"),
        listing_cap=max(500, objects // tables + 1),
        tables=declared,
    )
    settings = Settings(state_dir=work / ".sluice", database_url=url, load=LoadOptions(workers=2))
    settings = replace(settings, cubic=options)
    rows = []
    with open_engine(settings=settings) as engine:
        for label in ("route to Archive", "re-scan (nothing new)"):
            started = time.perf_counter()
            report = engine.serve(threading.Event(), once=True)
            took = time.perf_counter() - started
            req = _requests(engine)
            rows.append(
                [
                    f"(a) {label}",
                    count(report.counts.discovered),
                    seconds(took),
                    count(req["pages"]),
                    count(req["heads"]),
                    count(req["gets"]),
                    count(req["puts"]),
                    count(req["deletes"]),
                ]
            )
    archived = sum(1 for p in (work / "archive").rglob("*.csv.gz"))
    if archived != objects:
        raise BenchError(f"{archived} objects archived, {objects} expected")
    return rows


# -- (b) lake write -----------------------------------------------------------------------------


def write_change_file(path: Path, rows: int) -> Path:
    rng = random.Random(11)
    names = [c[0] for c in CT_COLUMNS]
    with gzip.open(path, "wt", encoding="utf-8", newline="", compresslevel=1) as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(names)
        for i in range(rows):
            out.writerow(
                [
                    f"{20260105030000 + i:035d}",
                    rng.choice("IUUDB"),
                    f"2026-01-05 03:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}000",
                    i % 700_000,
                    f"Sample {i} 🔥",
                    f"{rng.randint(0, 99999)}.{rng.randint(0, 99):02d}",
                    "2021-12-01 11:20:30.4444444",
                    "" if i % 10 == 0 else "2021-12-01 11:20:31.4444444",
                ]
            )
    dfm = {
        "fileInfo": {"startWriteTimestamp": "2026-01-05T03:00:00.000000"},
        "dataInfo": {
            "sourceSchema": "EDW",
            "sourceTable": "BENCH",
            "columns": [
                {"ordinal": n, "name": c, "type": t, "precision": p, "scale": s, "primaryKeyPos": 0}
                for n, (c, t, p, s) in enumerate(CT_COLUMNS, start=1)
            ],
        },
    }
    dfm_path = path.with_name(path.name.replace(".csv.gz", ".dfm"))
    dfm_path.write_text(json.dumps(dfm))
    return dfm_path


def child_floor(data: str, out: str) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    names = [c[0].lower() for c in CT_COLUMNS]
    started = time.perf_counter()
    with pa.input_stream(data, compression="gzip") as raw:
        reader = pacsv.open_csv(
            raw,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=True
            ),
        )
        with pq.ParquetWriter(out, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
    sys.stdout.write(json.dumps({"seconds": time.perf_counter() - started}) + "\n")


def child_sluice(data: str, warehouse: str, catalog: str, typed: str) -> None:
    from sluice.formats.dfm import parse_dfm
    from sluice.lake import Lake, LakeOptions
    from sluice.route.lakefile import FileSpec, write_file
    from sluice.store import locate

    path = Path(data)
    dfm = parse_dfm(path.with_name(path.name.replace(".csv.gz", ".dfm")).read_bytes(), obj=data)
    store, _ = locate(str(path.parent))
    lake = Lake(LakeOptions(warehouse=Path(warehouse), catalog_uri=catalog, namespace="bench"))
    try:
        name = "bench__ct" if typed == "typed" else "raw_bench__ct"
        started = time.perf_counter()
        done = write_file(
            lake,
            FileSpec(
                table=name,
                obj=data,
                partition={"snapshot": "20260105T030000Z", "identifier": path.name},
                dfm=dfm,
                typed=typed == "typed",
                tag=f"bench-{time.time_ns()}",
            ),
            store.open(path.name),
        )
        took = time.perf_counter() - started
        sys.stdout.write(
            json.dumps({"rows": done.rows, "rejects": done.rejects, "seconds": took}) + "\n"
        )
    finally:
        lake.close()


def bench_lake(url: str, work: Path, rows: int) -> list[list[str]]:
    """(b): the work seconds each child measures itself (the ratio), its process seconds
    (start-up and imports included) and its peak RSS."""
    from sluice.lake import postgres_catalog

    data = work / "20260105-030000000.csv.gz"
    write_change_file(data, rows)
    env = dict(os.environ)
    me = [sys.executable, "-m", "bench.cubic"]
    cwd = Path(__file__).resolve().parents[1]
    floor = run_measured(
        [*me, "--child-floor", str(data), str(work / "floor.parquet")],
        env=env,
        cwd=cwd,
        log=work / "floor.log",
    )
    if floor.returncode:
        raise BenchError(f"the floor failed:\n{floor.log_tail()}")
    floor_work = float(json.loads(floor.stdout)["seconds"])
    out = [
        [
            "(b) floor: pyarrow CSV → Parquet",
            count(rows),
            seconds(floor_work),
            seconds(floor.wall_seconds),
            "1.00×",
            f"{floor.peak_rss_mb:.0f}",
            "-",
        ]
    ]
    catalog = postgres_catalog(url)
    for mode in ("raw", "typed"):
        run = run_measured(
            [*me, "--child-sluice", str(data), str(work / "lake"), catalog, mode],
            env=env,
            cwd=cwd,
            log=work / f"{mode}.log",
        )
        if run.returncode:
            raise BenchError(f"sluice {mode} failed:\n{run.log_tail()}")
        got = json.loads(run.stdout)
        if got["rows"] != rows:
            raise BenchError(f"sluice {mode} wrote {got['rows']} rows, {rows} expected")
        out.append(
            [
                f"(b) sluice lake write + commit, {mode}",
                count(got["rows"]),
                seconds(got["seconds"]),
                seconds(run.wall_seconds),
                ratio(got["seconds"] / floor_work),
                f"{run.peak_rss_mb:.0f}",
                count(got["rejects"]),
            ]
        )
    return out


# -- (c) the current view -------------------------------------------------------------------------


def bench_current(url: str, rows: int) -> str | None:
    """(c) is the current view's benchmark (bench/current.py); run here when it is there."""
    try:
        from bench import current
    except ImportError:
        return None
    run = getattr(current, "run_current", None)
    if run is None:
        return None
    results = run(url, rows)
    buffer = io.StringIO()
    printer = getattr(current, "print_table", None)
    if printer is not None:
        stdout, sys.stdout = sys.stdout, buffer
        try:
            printer(results)
        finally:
            sys.stdout = stdout
    return buffer.getvalue() or str(results)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child-floor"]:
        child_floor(*argv[1:3])
        return 0
    if argv[:1] == ["--child-sluice"]:
        child_sluice(*argv[1:5])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench cubic", description=__doc__)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--tables", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-routing", action="store_true", help="skip (a)")
    parser.add_argument("--no-current", action="store_true", help="skip (c)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--database", default="sluice_bench_cubic", help="scratch database")
    args = parser.parse_args(argv)
    base = server_url("SLUICE_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres")
    if base is None:
        return 2
    db = ScratchDatabase(base, args.database)
    try:
        db.create()
        print(f"scratch database {db.display}, PostgreSQL {db.server_version}", file=sys.stderr)
        from sluice.db.migrate import migrate

        assert db.conn is not None
        migrate(db.conn)
        with tempfile.TemporaryDirectory(prefix="sluice-bench-cubic-") as tmp:
            work = Path(tmp)
            if not args.no_routing:
                routing = bench_routing(db.url, work / "a", args.tables, args.objects)
                print(
                    table(
                        [
                            "step",
                            "objects",
                            "seconds",
                            "list pages",
                            "heads",
                            "gets",
                            "puts",
                            "deletes",
                        ],
                        routing,
                        right=[1, 2, 3, 4, 5, 6, 7],
                    )
                )
                print()
            (work / "b").mkdir()
            lake = bench_lake(db.url, work / "b", args.rows)
            header = ["step", "rows", "work s", "process s", "vs floor", "peak RSS MB", "rejects"]
            print(table(header, lake, right=[1, 2, 3, 4, 5, 6]))
        if not args.no_current:
            print()
            found = bench_current(db.url, args.rows)
            print(found if found is not None else "(c) bench/current.py is not there yet")
    except BenchError as exc:
        print(f"bench cubic: {exc}", file=sys.stderr)
        return 1
    finally:
        db.finish(args.keep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
