"""Flattened rows → typed Arrow record batches, the same for every way in.

Both ways in (a table's ``COPY ... TO STDOUT`` and a dump's data file) first give *flat*
batches: every field as text — the reason a row is rejected (null for good rows), the JSON
keys, the buckets as an array literal, the tail elements, optionally the bracketed string, the
raw values of rejected rows. `typed` turns the good rows of a flat batch into the output
schema (buckets ``list<int64>``, tail ``int64``, the table name's values and the day as
constant columns); `rejected` lists the others with their line.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sluice.export.spec import ExportSpec, ds_nodash

#: Bytes of CSV parsed into one batch: about 30,000 flattened rows, a row group of Parquet.
BLOCK_BYTES = 4 << 20
INT64_LIST = pa.list_(pa.int64())


def flat_names(spec: ExportSpec, as_string: bool) -> list[str]:
    """The columns of a flat batch, in the order of the export COPY."""
    names = ["reason", *spec.json_keys, "buckets", *spec.tail]
    if as_string:
        names.append("as_string")
    return [*names, "raw_json", "raw_array"]


def output_schema(spec: ExportSpec, as_string: bool) -> pa.Schema:
    """The Parquet (and lake, and warehouse) schema of an export."""
    fields = [pa.field(spec.ingest_column, pa.date32(), nullable=False)]
    fields += [pa.field(name, pa.string()) for name in spec.string_columns]
    fields.append(pa.field(spec.buckets_column, INT64_LIST))
    fields += [pa.field(name, pa.int64()) for name in spec.tail]
    if as_string:
        fields.append(pa.field(f"{spec.buckets_column}_string", pa.string()))
    return pa.schema(fields)


@dataclass(frozen=True)
class Rejected:
    """A row set aside: its table, its line (its place in the table's COPY), why, its values."""

    table: str
    line: int
    reason: str
    json_text: str | None
    array_text: str | None


class ChunkFile(io.RawIOBase):
    """A readable file over an iterator of byte chunks (a COPY stream), for Arrow's reader."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._rest = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._rest:
            try:
                self._rest = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def csv_batches(
    chunks: Iterable[bytes], spec: ExportSpec, as_string: bool
) -> Iterator[pa.RecordBatch]:
    """Flat batches of the tab-separated CSV an export COPY writes, read as a stream."""
    names = flat_names(spec, as_string)
    reader = pacsv.open_csv(
        io.BufferedReader(ChunkFile(chunks), buffer_size=1 << 20),
        read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(delimiter="\t", newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        ),
    )
    for batch in reader:
        if batch.num_rows:
            yield batch


def rejected(batch: pa.RecordBatch, table: str, first_line: int) -> list[Rejected]:
    """The rejected rows of a flat batch whose first row is line `first_line` of `table`."""
    reasons = batch.column("reason")
    if reasons.null_count == len(reasons):
        return []
    where = pc.indices_nonzero(pc.is_valid(reasons)).to_pylist()
    json_text = batch.column("raw_json")
    array_text = batch.column("raw_array")
    return [
        Rejected(
            table,
            first_line + i,
            str(reasons[i].as_py()),
            json_text[i].as_py(),
            array_text[i].as_py(),
        )
        for i in where
    ]


def typed(
    batch: pa.RecordBatch,
    spec: ExportSpec,
    schema: pa.Schema,
    *,
    day: date,
    ingest: date,
    names: dict[str, str],
) -> pa.RecordBatch:
    """The good rows of a flat batch in the output schema."""
    good = batch.filter(pc.is_null(batch.column("reason")))
    n = good.num_rows
    constants = {
        spec.type_column: spec.prefix,
        spec.day_column: ds_nodash(day),
        **names,
    }
    columns: list[pa.Array] = [pa.repeat(pa.scalar(ingest, pa.date32()), n)]
    for name in spec.string_columns:
        if name in constants:
            columns.append(pa.repeat(pa.scalar(constants[name], pa.string()), n))
        else:
            columns.append(good.column(name))
    columns.append(buckets(good.column("buckets")))
    columns += [good.column(name).cast(pa.int64()) for name in spec.tail]
    if "as_string" in good.schema.names and len(schema) > len(columns):
        columns.append(good.column("as_string"))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def buckets(literals: pa.Array) -> pa.Array:
    """``{1,2,3}`` array literals → ``list<int64>`` (``{}`` → an empty list)."""
    inner = pc.utf8_slice_codeunits(literals, 1, -1)
    inner = pc.if_else(pc.equal(inner, ""), None, inner)
    lists = pc.split_pattern(inner, ",").cast(INT64_LIST)
    return pc.fill_null(lists, pa.scalar([], INT64_LIST))
