"""One day of one declaration exported to one Parquet file (zstd), with a rejects file.

Whatever the way in (the source's tables directly, or a dump of them), a day is a sequence of
tables, each a stream of flat batches (`sluice.export.arrow`); each batch is typed and written
as it comes, so memory holds a batch or two whatever the size of the tables. Bad rows never
stop the day: they are counted and written to the rejects file with their table, line and
reason. The Parquet file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from sluice.errors import StoreUnavailable
from sluice.export import arrow
from sluice.export.source import SourceReader
from sluice.export.spec import ExportSpec, ds_nodash
from sluice.formats.streams import prefetch

#: Reports rows done so far (for progress bars): the day's rows read, its tables done.
RowsSink = Callable[[int], None]
#: One table of a day: its name, the values of its name parts, its flat batches.
TableStream = tuple[str, dict[str, str], Iterator[pa.RecordBatch]]


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
            for flat in batches:
                rejects.add(arrow.rejected(flat, table, line))
                good = arrow.typed(flat, spec, schema, day=day, ingest=ingest_date, names=names)
                writer.write_batch(good)
                line += flat.num_rows
                result.output_rows += good.num_rows
                if on_rows is not None:
                    on_rows(flat.num_rows)
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
    reader: SourceReader, spec: ExportSpec, day: date, tables: list[str], *, as_string: bool
) -> Iterator[TableStream]:
    """The day's tables streamed from the source with ``COPY ... TO STDOUT``."""
    for table in tables:
        # read ahead in a thread: the server writes the next rows while these are converted
        chunks = prefetch(reader.flattened(spec, table, as_string=as_string), depth=8)
        yield table, spec.name_values(table, day), arrow.csv_batches(chunks, spec, as_string)


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
    with reader.snapshot():
        tables = reader.tables(spec, day)
        return write_day(
            spec,
            day,
            direct_tables(reader, spec, day, tables, as_string=as_string),
            out_dir,
            as_string=as_string,
            ingest=ingest,
            tag=tag,
            on_rows=on_rows,
        )


def read_parquet(path: str) -> pa.Table:
    """A day's Parquet file (for tests and checks: the export itself never reads it whole)."""
    return pq.read_table(path)
