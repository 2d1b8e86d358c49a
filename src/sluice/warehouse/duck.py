"""A DuckDB warehouse: tables loaded from the export's Parquet, a day replaced at a time.

`refresh_day` deletes a day and inserts it from that day's Parquet file sorted by the table's
clustering fields, in one DuckDB transaction, so a re-export replaces the day and never
doubles it. The file is opened for each refresh and each query, so that several processes
can take turns (DuckDB lets one process write a file at a time; a process that finds it
locked waits for it a while, then gets a transient error, and its unit is retried).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from sluice.errors import ConfigError, StoreUnavailable

#: DuckDB's memory for a refresh: its sort spills to disk beyond this. Measured on one
#: 600,000-row day: 256 MB and 128 MB sort in the same time; 128 MB keeps the process's peak
#: 130 MB lower (64 MB runs out of memory pinning blocks).
MEMORY_LIMIT = "128MB"
#: How long opening the file waits while another process writes it.
LOCK_WAIT_SECONDS = 30.0


def quoted(name: str) -> str:
    """A DuckDB identifier, quoted (names come from declarations, never from data)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class WarehouseOptions:
    path: Path


class Warehouse:
    """The warehouse file, opened per operation."""

    def __init__(self, options: WarehouseOptions) -> None:
        self.options = options
        self._lock = threading.Lock()

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = self.options.path
        if read_only and not path.exists():
            raise ConfigError(f"no warehouse at {path} yet: export a day first")
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._open(path, read_only)
        try:
            conn.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            yield conn
        finally:
            conn.close()

    @staticmethod
    def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting up to `LOCK_WAIT_SECONDS` while another process holds it
        (DuckDB lets one process write a file at a time: workers publishing days at once take
        turns)."""
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        pause = 0.05
        while True:
            try:
                return duckdb.connect(str(path), read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                    raise StoreUnavailable(
                        f"the warehouse {path} is busy or unreadable: {exc}"
                    ) from exc
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def refresh_day(
        self,
        table: str,
        column: str,
        value: str,
        parquet: str | None,
        order_by: Sequence[str],
    ) -> None:
        """Replace the rows of `table` whose `column` is `value` by those of `parquet`."""
        name = quoted(table)
        order = ", ".join(quoted(c) for c in order_by) or "1"
        with self._lock, self.connect() as conn:
            try:
                conn.execute("BEGIN")
                if parquet is not None:
                    conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {name} AS "  # noqa: S608
                        "SELECT * FROM read_parquet($path) LIMIT 0",
                        {"path": parquet},
                    )
                exists = conn.execute(
                    "SELECT count(*) FROM information_schema.tables WHERE table_name = $t",
                    {"t": table},
                ).fetchone()
                if exists and exists[0]:
                    conn.execute(
                        f"DELETE FROM {name} WHERE {quoted(column)} = $v",  # noqa: S608
                        {"v": value},
                    )
                if parquet is not None:
                    conn.execute(
                        f"INSERT INTO {name} BY NAME SELECT * FROM read_parquet($path) "  # noqa: S608
                        f"ORDER BY {order}",
                        {"path": parquet},
                    )
                conn.execute("COMMIT")
            except duckdb.Error as exc:
                conn.execute("ROLLBACK")
                raise StoreUnavailable(f"refreshing {table} {column}={value}: {exc}") from exc

    def query(self, text: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run DuckDB SQL on the warehouse (read-only); the column names and the rows."""
        with self.connect(read_only=True) as conn:
            try:
                cur = conn.execute(text)
            except duckdb.Error as exc:
                raise ConfigError(f"warehouse query failed: {exc}") from exc
            columns = [d[0] for d in cur.description or []]
            return columns, cur.fetchall()
