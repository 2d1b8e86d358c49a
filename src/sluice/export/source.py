"""The source of an export: a PostgreSQL schema of day-partitioned tables.

With `sluice.export.fetch` (which reads the tables' rows as Arrow, in the snapshot exported
here), the only module of the export that talks to the source database: it finds a day's
tables in the catalog with the declaration's anchored pattern, reads what says whether they
changed, and holds the snapshot a day is read in. It also writes generated sources (tables,
rows, their index) for tests, demos and the benchmark.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from sluice.db import Connection, Database
from sluice.db.errors import classify
from sluice.db.queries import load as load_queries
from sluice.export import statements
from sluice.export.fetch import ArrowFetcher
from sluice.export.options import SourceOptions
from sluice.export.spec import DAY_FORMAT, ExportSpec

Q = load_queries("sluice.export", "source.sql")

__all__ = ["Fingerprint", "SourceDatabase", "SourceOptions", "SourceReader", "fingerprint"]


@dataclass(frozen=True)
class Fingerprint:
    """What a day's source is made of: its tables and a digest of their versions."""

    tables: tuple[str, ...]
    digest: str

    @property
    def empty(self) -> bool:
        return not self.tables


def fingerprint(rows: Iterable[tuple[Any, ...]]) -> Fingerprint:
    """The fingerprint of a day from its `table_versions` rows."""
    rows = sorted(rows)
    text = "\n".join(":".join(str(v) for v in row) for row in rows)
    return Fingerprint(
        tuple(str(r[0]) for r in rows), hashlib.sha256(text.encode()).hexdigest()[:32]
    )


class SourceDatabase:
    """Connections to the source, and the statements run on it."""

    def __init__(self, options: SourceOptions, fallback: Database) -> None:
        self.options = options
        self.fallback = fallback

    @property
    def schema(self) -> str:
        return self.options.schema

    @contextmanager
    def connect(self) -> Iterator[SourceReader]:
        """A connection to the source (autocommit), closed afterwards."""
        try:
            if self.options.url:
                conn: Connection = psycopg.connect(self.options.url, autocommit=True)
            else:
                conn = self.fallback.connect(autocommit=True)
        except psycopg.Error as exc:
            raise classify(exc, "connecting to the export source") from exc
        try:
            yield SourceReader(conn, self.options.schema, self.options.url or self.fallback.url)
        finally:
            conn.close()


class SourceReader:
    """The statements of an export on one source connection."""

    def __init__(self, conn: Connection, schema: str, url: str) -> None:
        self.conn = conn
        self.schema = schema
        self.url = url

    def _all(self, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        try:
            return self.conn.execute(Q[name], params).fetchall()
        except psycopg.Error as exc:
            raise classify(exc, f"export source query {name}") from exc

    def tables(self, spec: ExportSpec, day: date) -> list[str]:
        """The day's tables, found in the catalog with the anchored pattern of the day and
        checked again here (a table the pattern lets through and the check refuses fails)."""
        rows = self._all("find_tables", {"schema": self.schema, "pattern": spec.name_regex(day)})
        names = [str(r[0]) for r in rows]
        for name in names:
            spec.name_values(name, day)
        return names

    def fingerprints(self, spec: ExportSpec, days: Iterable[date]) -> dict[date, Fingerprint]:
        """The fingerprint of each of `days` (a day without tables has an empty one), read from
        the catalog and the server's statistics in one query."""
        wanted = set(days)
        groups = "".join(f"_(?:{part.pattern})" for part in spec.parts)
        pattern = f"^{re.escape(spec.prefix)}{groups}_([0-9]{{8}})$"
        rows = self._all("table_versions", {"schema": self.schema, "pattern": pattern})
        by_day: dict[date, list[tuple[Any, ...]]] = {d: [] for d in wanted}
        for row in rows:
            found = re.fullmatch(pattern, str(row[0]))
            if found is None:
                continue
            try:
                day = datetime.strptime(found.group(1), DAY_FORMAT).date()
            except ValueError:
                continue  # eight digits that are not a date: not a day's table
            if day in by_day:
                by_day[day].append(row)
        return {day: fingerprint(rows) for day, rows in by_day.items()}

    @contextmanager
    def snapshot(self) -> Iterator[ArrowFetcher]:
        """One read-only snapshot for everything read inside (a day reads consistently):
        this connection's, exported to the connections of the fetcher it gives."""
        try:
            with self.conn.transaction():
                self.conn.execute(Q["snapshot"])
                row = self.conn.execute(Q["export_snapshot"]).fetchone()
                yield ArrowFetcher(self.url, self.schema, str(row[0]) if row else None)
        except psycopg.Error as exc:
            raise classify(exc, "reading the export source") from exc

    # -- generated sources --------------------------------------------------------------------

    def create_table(self, spec: ExportSpec, table: str, lines: Iterable[bytes]) -> None:
        """Create `table` (replacing it), COPY the text-format `lines` into it, index it."""
        try:
            with self.conn.transaction():
                self.conn.execute(statements.create_schema(self.schema))
                self.conn.execute(statements.create_source_table(spec, self.schema, table))
                with (
                    self.conn.cursor() as cur,
                    cur.copy(statements.copy_into(spec, self.schema, table)) as copy,
                ):
                    for line in lines:
                        copy.write(line)
                self.conn.execute(statements.create_gin_index(spec, self.schema, table))
        except psycopg.Error as exc:
            raise classify(exc, f"writing source table {table}") from exc
