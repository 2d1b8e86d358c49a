"""``python -m bench current``: a current view's apply of one 1M-row change file, against the
floor of a plain COPY of the same file into an unlogged table.

Steps, in a scratch database on the server of SLUICE_DATABASE_URL (or, through `run_current`,
in the database the caller names), each after a CHECKPOINT:

(a) floor, LOAD — COPY of the generated LOAD file (8 columns) into an unlogged table of the
    view's types;
(b) sluice, LOAD — `apply_file` of that file into an empty view (creates ``ods.bench_orders``);
(c) floor, change — COPY of the generated change file (3 header columns + the 8) into an
    unlogged table of its types;
(d) sluice, change — `apply_file` of the change file to the view holding the LOAD's rows: a mix
    of inserts of new keys, updates and deletes of existing keys (some keys changed several
    times in the file) and before-images. Target: (d) ≤ 3 × (c).

Each sluice step is one transaction, committed; its counts are checked against what the
generator wrote (a mismatch is printed and makes the exit code 1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.report import ratio, seconds, table
from bench.scratch import BenchError, ScratchDatabase, server_url
from sluice.current import ApplyResult, ViewTarget, apply_file
from sluice.db.migrate import migrate
from sluice.formats.dfm import Dfm, parse_dfm, postgres_type

TARGET = ViewTarget("ods", "bench_orders")
SNAPSHOT = datetime(2026, 1, 5, 3, 0, 0, tzinfo=UTC)
COLUMNS = [
    ("ORDER_ID", "INT8", 0, 0, 1),
    ("ACCOUNT_ID", "INT4", 10, 0, 0),
    ("FARE_PRODUCT", "STRING", 40, 0, 0),
    ("STATUS", "STRING", 12, 0, 0),
    ("AMOUNT", "NUMERIC", 12, 2, 0),
    ("QUANTITY", "INT2", 0, 0, 0),
    ("CREATED_DTM", "DATETIME", 0, 0, 0),
    ("UPDATED_DTM", "DATETIME", 0, 0, 0),
]
HEADER = [
    ("header__change_seq", "STRING", 35, 0, 0),
    ("header__change_oper", "STRING", 1, 0, 0),
    ("header__timestamp", "DATETIME", 0, 0, 0),
]
PRODUCTS = ["LinkPass", "7-Day Pass", "Stored Value", "CharlieTicket 🎫", "Senior Café Pass"]
STATUSES = ["ACTIVE", "CLOSED", "PENDING", "REFUNDED"]


def dfm(columns: list[tuple[str, str, int, int, int]]) -> Dfm:
    doc = {
        "dfmVersion": "1.1",
        "fileInfo": {"startWriteTimestamp": ""},
        "formatInfo": {"options": {"fieldDelimiter": ",", "nullValue": ""}},
        "dataInfo": {
            "sourceSchema": "BENCH",
            "sourceTable": "ORDERS",
            "columns": [
                {
                    "ordinal": i,
                    "name": name,
                    "type": kind,
                    "length": length if kind != "NUMERIC" else 0,
                    "precision": length if kind == "NUMERIC" else 0,
                    "scale": scale,
                    "primaryKeyPos": key,
                }
                for i, (name, kind, length, scale, key) in enumerate(columns, start=1)
            ],
        },
    }
    return parse_dfm(json.dumps(doc).encode(), obj="bench.dfm")


@dataclass
class Expected:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    ignored: int = 0


def _stamp(rng: random.Random) -> str:
    return (
        f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}."
        f"{rng.randint(0, 9_999_999):07d}"
    )


def _values(rng: random.Random, key: int) -> str:
    product = PRODUCTS[rng.randrange(len(PRODUCTS))]
    name = f'"{product}"' if "," in product else product
    nullable = "" if rng.random() < 0.05 else _stamp(rng)
    return (
        f"{key},{rng.randint(1, 2_000_000)},{name},{STATUSES[rng.randrange(4)]},"
        f"{rng.randint(0, 99_999_999) / 100:.2f},{rng.randint(1, 20)},{_stamp(rng)},{nullable}"
    )


def write_load(path: Path, rows: int) -> None:
    rng = random.Random(1)
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(c[0] for c in COLUMNS) + "\n")
        for key in range(1, rows + 1):
            out.write(_values(rng, key) + "\n")


def write_changes(path: Path, rows: int, existing: int) -> Expected:
    """`rows` change records over a view of keys 1..`existing`: 15 % inserts of new keys, 10 %
    deletes and 75 % updates of random existing keys (a quarter of them after a before-image);
    returns what applying them must do."""
    rng = random.Random(2)
    final: dict[int, str] = {}
    written = 0
    new_key = existing
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(c[0] for c in HEADER + COLUMNS) + "\n")
        while written < rows:
            draw = rng.random()
            if draw < 0.15:
                new_key += 1
                key, op = new_key, "I"
            else:
                key, op = rng.randint(1, existing), "D" if draw < 0.25 else "U"
            stamp = f"2026-01-05 0{3 + written * 5 // rows}:00:00.{written % 10_000_000:07d}"
            if op == "U" and rng.random() < 0.25 and written + 1 < rows:
                out.write(f"{20260105030000000000 + written:035d},B,{stamp},{_values(rng, key)}\n")
                written += 1
            body = f"{key},,,,,,," if op == "D" else _values(rng, key)
            out.write(f"{20260105030000000000 + written:035d},{op},{stamp},{body}\n")
            written += 1
            final[key] = op
    expected = Expected()
    for key, op in final.items():
        if op == "D":
            expected.deleted += key <= existing
        elif key <= existing:
            expected.updated += 1
        else:
            expected.inserted += 1
    expected.ignored = rows - expected.inserted - expected.updated - expected.deleted
    return expected


def _checkpoint(conn: psycopg.Connection[Any]) -> None:
    """The same start for every step (skipped when the role may not)."""
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("CHECKPOINT")


def _floor(conn: psycopg.Connection[Any], path: Path, columns: list[Any], name: str) -> float:
    """COPY the file into an unlogged table of its columns' types: the floor."""
    spec = dfm(columns)
    defs = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.lower), sql.SQL(postgres_type(c)))
        for c in spec.columns
    )
    table_name = sql.Identifier("public", name)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table_name))
    conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} ({})").format(table_name, defs))
    _checkpoint(conn)
    started = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur:
        statement = sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true)").format(table_name)
        with cur.copy(statement) as copy, path.open("rb") as data:
            while piece := data.read(1 << 20):
                copy.write(piece)
    took = time.perf_counter() - started
    conn.execute(sql.SQL("DROP TABLE {}").format(table_name))
    return took


def _apply(url: str, path: Path, spec: Dfm, *, change: bool) -> tuple[float, ApplyResult]:
    with psycopg.connect(url) as conn:
        _checkpoint_autocommit(url)
        started = time.perf_counter()
        with conn.transaction(), path.open("rb") as data:
            result = apply_file(
                conn, TARGET, spec, data, obj=path.name, snapshot=SNAPSHOT, change=change
            )
        return time.perf_counter() - started, result


def _checkpoint_autocommit(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        _checkpoint(conn)


def run_current(
    database_url: str, rows: int = 1_000_000, *, say: Callable[[str], None] | None = None
) -> list[tuple[str, float, str]]:
    """Measure the four steps in `database_url` (migrated here if needed; the view and the
    floor tables are dropped afterwards); return (label, seconds, note) per step, then the
    ratio of the change apply to its floor. Raises BenchError if a count is wrong."""
    note = say or (lambda _text: None)
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
    with tempfile.TemporaryDirectory(prefix="sluice-bench-current-") as work:
        load_path, change_path = Path(work, "LOAD00000001.csv"), Path(work, "changes.csv")
        note(f"generating {rows:,} LOAD rows and {rows:,} change rows")
        write_load(load_path, rows)
        expected = write_changes(change_path, rows, rows)
        sizes = (
            f"{load_path.stat().st_size / 1e6:.0f} MB / {change_path.stat().st_size / 1e6:.0f} MB"
        )
        note(f"files: {sizes}")
        results: list[tuple[str, float, str]] = []
        with psycopg.connect(database_url, autocommit=True) as conn:
            try:
                note("(a) floor: COPY of the LOAD file into an unlogged table")
                load_floor = _floor(conn, load_path, COLUMNS, "bench_current_floor")
                results.append(
                    ("(a) floor: COPY LOAD file, unlogged", load_floor, f"{rows:,} rows")
                )
                note("(b) sluice: LOAD file into an empty current view")
                took, loaded = _apply(database_url, load_path, dfm(COLUMNS), change=False)
                _check("(b)", loaded, Expected(inserted=rows))
                results.append(("(b) sluice: LOAD apply", took, f"{loaded.inserted:,} inserted"))
                note("(c) floor: COPY of the change file into an unlogged table")
                change_floor = _floor(conn, change_path, HEADER + COLUMNS, "bench_current_floor")
                results.append(("(c) floor: COPY change file, unlogged", change_floor,
                                f"{rows:,} rows"))  # fmt: skip
                note("(d) sluice: change file applied to the view")
                took_change, applied = _apply(
                    database_url, change_path, dfm(HEADER + COLUMNS), change=True
                )
                _check("(d)", applied, expected)
                results.append((
                    "(d) sluice: change apply", took_change,
                    f"{applied.inserted:,} ins, {applied.updated:,} upd, {applied.deleted:,} del, "
                    f"{applied.ignored:,} ignored",
                ))  # fmt: skip
                results.append(("b/a", took / load_floor, "LOAD apply vs its floor"))
                results.append((
                    "d/c", took_change / change_floor,
                    "change apply vs its floor (target ≤ 3×)",
                ))  # fmt: skip
            finally:
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(
                        sql.Identifier(TARGET.schema, TARGET.table)
                    )
                )
                conn.execute(
                    "DELETE FROM sluice.current_views WHERE view_schema = %s AND view_table = %s",
                    [TARGET.schema, TARGET.table],
                )
        return results


def _check(step: str, result: ApplyResult, want: Expected) -> None:
    got = (result.inserted, result.updated, result.deleted, result.ignored)
    wanted = (want.inserted, want.updated, want.deleted, want.ignored)
    if got != wanted:
        raise BenchError(f"{step}: applied (ins, upd, del, ignored) {got}, expected {wanted}")


def print_table(results: list[tuple[str, float, str]]) -> None:
    rendered = [
        (label, ratio(value) if "/" in label else seconds(value), text)
        for label, value, text in results
    ]
    print(table(("step", "seconds", "note"), rendered, right=[1]))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench current", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--database", default="sluice_bench_current", help="scratch database")
    args = parser.parse_args(argv)
    url = server_url("current")
    if url is None:
        return 2
    db = ScratchDatabase(url, args.database)
    try:
        db.create()
        print(f"scratch database {db.display}, PostgreSQL {db.server_version}", file=sys.stderr)
        results = run_current(
            db.url, args.rows, say=lambda text: print(f"bench: {text}", file=sys.stderr)
        )
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        db.finish(args.keep)
    print_table(results)
    print(json.dumps({"current": [list(r) for r in results]}))
    return 0
