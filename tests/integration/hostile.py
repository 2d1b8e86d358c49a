"""Helpers of the hostile-input tests: a small feed of CSV shards, its ledger and its rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from sluice.load.spec import Column, Feed, Index, ServingView, TableSpec

Conn = psycopg.Connection[tuple[object, ...]]
PATTERN = r"e-\d+\.csv"


def events_feed(source: str, *, pattern: str = PATTERN, serving: bool = False) -> Feed:
    view = ServingView("view_events", (Index(("id",), unique=True),)) if serving else None
    table = TableSpec(
        name="events",
        columns=(Column("event_id", "bigint", nullable=False), Column("value", "text")),
        key=("event_id",),
        serving=view,
    )
    return Feed(name="events", table=table, source=source, pattern=pattern)


def shard(shard_no: int, rows: int = 100) -> bytes:
    return "".join(f"{shard_no * 10_000 + i},v{i}\n" for i in range(rows)).encode()


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def loads(db: Conn) -> dict[str, tuple[Any, ...]]:
    """Each load's key → (status, attempts, error)."""
    rows = db.execute(
        "SELECT key, status, attempts, error FROM sluice.loads ORDER BY id"
    ).fetchall()
    return {str(key): (status, attempts, error) for key, status, attempts, error in rows}


def count(db: Conn, table: str = "events") -> int:
    row = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])
