"""One day of one declaration exported to one Parquet file (zstd), with a rejects file.

Whatever the way in (the source's tables directly, or a dump of them), a day is a sequence of
tables, each a stream of parts (`sluice.export.arrow.Part`); each part is typed and written
as it comes, so memory holds a batch or two whatever the size of the tables. Bad rows never
stop the day: they are counted and written to the rejects file with their table, line and
reason. The Parquet file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from sluice.errors import StoreUnavailable
from sluice.export import arrow
from sluice.export.fetch import ArrowFetcher
from sluice.export.source import SourceReader
from sluice.export.spec import ExportSpec, ds_nodash

#: Reports rows done so far (for progress bars): the day's rows read, its tables done.
RowsSink = Callable[[int], None]
#: One table of a day: its name, the values of its name parts, its parts.
TableStream = tuple[str, dict[str, str], Iterator[arrow.Part]]


@dataclass
class DayExport:
    """What exporting one day found and wrote."""

    prefix: str
    day: date
    tables: list[str] = field(default_factory=list)
    source_rows: int = 0
    output_rows: int = 0
    rejected_rows: int = 0
    bytes: int = 0
    location: str | None = None
    rejects_location: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.tables


def day_folder(out_dir: Path, spec: ExportSpec, day: date) -> Path:
    return out_dir / spec.prefix / ds_nodash(day)


def today() -> date:
    """The ingest date: the export's day in UTC (the seed's ``current_date()``)."""
    return datetime.now(UTC).date()


class _Rejects:
    """The rejects file of a day, opened at its first rejected row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._file: IO[str] | None = None
        self._csv: csv.DictWriter[str] | None = None

    def add(self, rows: list[arrow.Rejected]) -> None:
        if not rows:
            return
        if self._csv is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8", newline="")
            self._csv = csv.DictWriter(
                self._file, ["table", "line", "reason", "json", "array"], lineterminator="\n"
            )
            self._csv.writeheader()
        for row in rows:
            self._csv.writerow(
                {
                    "table": row.table,
                    "line": row.line,
                    "reason": row.reason,
                    "json": row.json_text,
                    "array": row.array_text,
                }
            )
        self.count += len(rows)

    def close(self) -> str | None:
        if self._file is None:
            return None
        self._file.close()
        return str(self.path)


def write_day(
    spec: ExportSpec,
    day: date,
    tables: Iterable[TableStream],
    out_dir: Path,
    *,
    as_string: bool = False,
    ingest: date | None = None,
    tag: str | None = None,
    on_rows: RowsSink | None = None,
) -> DayExport:
    """Write the tables of a day to ``<out>/<prefix>/<ds_nodash>/part-<tag>.parquet``."""
    started = time.perf_counter()
    result = DayExport(spec.prefix, day)
    schema = arrow.output_schema(spec, as_string)
    folder = day_folder(out_dir, spec, day)
    name = tag or uuid.uuid4().hex[:12]
    final = folder / f"part-{name}.parquet"
    partial = folder / f".part-{name}.parquet.partial"
    rejects = _Rejects(folder / f"rejects-{name}.csv")
    writer: pq.ParquetWriter | None = None
    ingest_date = ingest or today()
    try:
        for table, names, batches in tables:
            if writer is None:
                folder.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(partial, schema, compression="zstd")
            result.tables.append(table)
            line = 1
            for part in batches:
                rejects.add(part.rejected(table, line))
                good = arrow.typed(
                    part.good, spec, schema, day=day, ingest=ingest_date, names=names
                )
                writer.write_batch(good)
                line += part.rows
                result.output_rows += good.num_rows
                if on_rows is not None:
                    on_rows(part.rows)
            result.source_rows += line - 1
        if writer is not None:
            writer.close()
            writer = None
            partial.replace(final)
            result.location = str(final)
            result.bytes = final.stat().st_size
    except OSError as exc:
        raise StoreUnavailable(f"writing the export of {spec.prefix} {day}: {exc}") from exc
    finally:
        if writer is not None:
            writer.close()
            partial.unlink(missing_ok=True)
        result.rejects_location = rejects.close()
    result.rejected_rows = rejects.count
    result.seconds["export"] = time.perf_counter() - started
    return result


def direct_tables(
    fetcher: ArrowFetcher, spec: ExportSpec, day: date, tables: list[str], *, as_string: bool
) -> Generator[TableStream]:
    """The day's tables fetched from the source as Arrow, two at a time (`fetcher`)."""

    def convert(batch: pa.RecordBatch) -> arrow.Part:
        return arrow.from_lists(batch, spec, as_string)

    for table, parts in fetcher.tables(spec, tables, as_string=as_string, convert=convert):
        yield table, spec.name_values(table, day), parts


def export_direct(
    reader: SourceReader,
    spec: ExportSpec,
    day: date,
    out_dir: Path,
    *,
    as_string: bool = False,
    ingest: date | None = None,
    tag: str | None = None,
    on_rows: RowsSink | None = None,
) -> DayExport:
    """Export one day straight from the source, all its tables in one snapshot."""
    with reader.snapshot() as fetcher:
        tables = reader.tables(spec, day)
        streams = direct_tables(fetcher, spec, day, tables, as_string=as_string)
        try:
            return write_day(
                spec,
                day,
                streams,
                out_dir,
                as_string=as_string,
                ingest=ingest,
                tag=tag,
                on_rows=on_rows,
            )
        finally:
            streams.close()  # stops the fetch threads if the day ended early


def read_parquet(path: str) -> pa.Table:
    """A day's Parquet file (for tests and checks: the export itself never reads it whole)."""
    return pq.read_table(path)
