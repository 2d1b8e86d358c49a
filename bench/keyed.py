"""The keyed floor: what the server itself must do to hold the file in a table sluice can serve.

The floor (a) is a COPY into an unlogged table with no index. A fresh import cannot stop there:
its table is logged (it must survive a crash) and carries the primary key and the unique key
that later imports merge on. These two steps time exactly that work, with sluice's own DDL for
the GLAM desktop table and no sluice code around it:

* **one transaction** — COPY the file into the empty table, then build its primary key and its
  unique key, then commit. This is the work of sluice's bulk path, which must commit the rows
  and the ledger row together.
* **split** — the same work over two sessions at once: each COPYs half of the file, then one
  builds the primary key while the other builds the unique key. Nothing is atomic any more; it
  is the least the server needs on this machine, whatever the client does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import psycopg
from psycopg import sql

from bench.scratch import Connection, ScratchDatabase
from sluice.load import statements as st
from sluice.load.repository import BUILD_MAINTENANCE_MEM
from sluice.load.spec import TableSpec
from sluice.recipes.glam.tables import table_spec

TABLE = "bench_keyed"
BLOCK = 1 << 20


@dataclass(frozen=True)
class KeyedResult:
    seconds: float
    copy_seconds: float
    index_seconds: float
    rows: int


def spec() -> TableSpec:
    """The GLAM desktop table as sluice declares it, under the bench's own name."""
    base = table_spec("desktop", "nightly")
    return replace(base, name=TABLE, serving=None, key_name=f"{TABLE}_key")


def _prepare(db: ScratchDatabase, table: TableSpec) -> str:
    """Create the table with sluice's DDL, then drop its two indexes, as the bulk path does.
    Return the primary key's name."""
    conn = db.connection
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(st.table(table)))
    conn.execute(st.create_table(table))
    row = conn.execute(st.primary_key_name(), [f"{table.schema}.{table.name}"]).fetchone()
    assert row is not None
    primary_key = str(row[0])
    conn.execute(st.drop_constraint(table, primary_key))
    conn.execute(st.drop_constraint(table, table.constraint))
    db.checkpoint()
    return primary_key


def _copy_range(conn: Connection, table: TableSpec, path: Path, start: int, end: int) -> int:
    statement = st.copy_from_stdin(st.table(table), table, table.format)
    with conn.cursor() as cur:
        with cur.copy(statement) as copy, path.open("rb") as source:
            source.seek(start)
            left = end - start
            while left > 0 and (block := source.read(min(BLOCK, left))):
                copy.write(block)
                left -= len(block)
        return cur.rowcount


def _maintenance_memory(conn: Connection) -> None:
    conn.execute(
        sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(BUILD_MAINTENANCE_MEM))
    )


def one_transaction(db: ScratchDatabase, path: Path) -> KeyedResult:
    table = spec()
    primary_key = _prepare(db, table)
    with psycopg.connect(db.url) as conn:
        _maintenance_memory(conn)
        conn.commit()
        started = time.perf_counter()
        rows = _copy_range(conn, table, path, 0, path.stat().st_size)
        copied = time.perf_counter()
        conn.execute(st.add_primary_key(table, primary_key))
        conn.execute(st.add_key_constraint(table))
        conn.commit()
        done = time.perf_counter()
    return KeyedResult(done - started, copied - started, done - copied, rows)


def split(db: ScratchDatabase, path: Path) -> KeyedResult:
    table = spec()
    _prepare(db, table)
    size = path.stat().st_size
    middle = record_boundary(path, size // 2)
    ranges = [(0, middle), (middle, size)]
    assert table.surrogate is not None
    builds = [
        sql.SQL("CREATE UNIQUE INDEX {} ON {} ({})").format(
            sql.Identifier(f"{TABLE}_pkey"), st.table(table), sql.Identifier(table.surrogate)
        ),
        sql.SQL("CREATE UNIQUE INDEX {} ON {} ({}) NULLS NOT DISTINCT").format(
            sql.Identifier(table.constraint),
            st.table(table),
            sql.SQL(", ").join(sql.Identifier(k) for k in table.key),
        ),
    ]
    conns = [psycopg.connect(db.url, autocommit=True) for _ in ranges]
    try:
        for conn in conns:
            _maintenance_memory(conn)
        started = time.perf_counter()
        counts = _side_by_side(
            [
                partial(_copy_range, conn, table, path, start, end)
                for conn, (start, end) in zip(conns, ranges, strict=True)
            ]
        )
        copied = time.perf_counter()
        _side_by_side([partial(_execute, conn, b) for conn, b in zip(conns, builds, strict=True)])
        done = time.perf_counter()
    finally:
        for conn in conns:
            conn.close()
    return KeyedResult(done - started, copied - started, done - copied, sum(counts))


def _execute(conn: Connection, statement: sql.Composed) -> int:
    return conn.execute(statement).rowcount


def _side_by_side(work: list[Callable[[], int]]) -> list[int]:
    """Run each callable in its own thread; return their results; re-raise the first error."""
    results: list[int] = [0] * len(work)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = work[i]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def record_boundary(path: Path, near: int) -> int:
    """The offset just past the first newline at or after `near` that ends a CSV record (an
    even number of quotes before it), so both halves hold whole records."""
    with path.open("rb") as source:
        quotes = 0
        while source.tell() < near:
            block = source.read(min(BLOCK, near - source.tell()))
            if not block:
                return near
            quotes += block.count(b'"')
        offset = source.tell()
        while block := source.read(BLOCK):
            start = 0
            while (newline := block.find(b"\n", start)) >= 0:
                quotes += block.count(b'"', start, newline)
                if quotes % 2 == 0:
                    return offset + newline + 1
                start = newline + 1
            quotes += block.count(b'"', start)
            offset += len(block)
    return offset
