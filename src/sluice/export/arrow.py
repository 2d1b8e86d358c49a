"""Source rows → typed Arrow record batches, the same for every way in.

Each way in gives *parts*: a batch's good rows (the JSON keys as text, the buckets as
``list<int64>``, the tail as ``int64``, optionally the bracketed string) and its rejected rows
with their place in the batch and why. The direct path's batches arrive from ADBC with the
keys taken out on the server and the array in its binary form (`from_lists` splits it,
vectorised); a dump's rows are flattened to text first (`from_flat`). `typed` adds the table
name's values and the day as constant columns to the good rows, in the output schema.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.export.spec import ExportSpec, ds_nodash
from sluice.formats import pgarray

INT64_LIST = pa.list_(pa.int64())


def flat_names(spec: ExportSpec, as_string: bool) -> list[str]:
    """The columns of a flat batch (a dump's rows flattened to text)."""
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
    """A readable file over an iterator of byte chunks (a stream), for Arrow's readers."""

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


@dataclass(frozen=True)
class Part:
    """One batch of a table: its good rows (`good_names`), its rejected rows (index in the
    batch, reason, JSON text, array text) and how many rows it had."""

    good: pa.RecordBatch
    rows: int
    bad: list[tuple[int, str, str | None, str | None]] = field(default_factory=list)

    def rejected(self, table: str, first_line: int) -> list[Rejected]:
        return [Rejected(table, first_line + i, why, j, a) for i, why, j, a in self.bad]


def good_names(spec: ExportSpec, as_string: bool) -> list[str]:
    """The columns of a part's good rows."""
    names = [*spec.json_keys, "buckets", *spec.tail]
    return [*names, "as_string"] if as_string else names


def from_flat(flat: pa.RecordBatch, spec: ExportSpec, as_string: bool) -> Part:
    """A flat batch (every field as text, `flat_names`) as a part."""
    rows = flat.num_rows
    reasons = flat.column("reason")
    bad: list[tuple[int, str, str | None, str | None]] = []
    if reasons.null_count != len(reasons):
        json_text, array_text = flat.column("raw_json"), flat.column("raw_array")
        for i in pc.indices_nonzero(pc.is_valid(reasons)).to_pylist():
            bad.append((i, str(reasons[i].as_py()), json_text[i].as_py(), array_text[i].as_py()))
        flat = flat.filter(pc.is_null(reasons))
    columns = [flat.column(key) for key in spec.json_keys]
    columns.append(buckets(flat.column("buckets")))
    columns += [flat.column(name).cast(pa.int64()) for name in spec.tail]
    if as_string:
        columns.append(flat.column("as_string"))
    return Part(pa.RecordBatch.from_arrays(columns, names=good_names(spec, as_string)), rows, bad)


def from_lists(batch: pa.RecordBatch, spec: ExportSpec, as_string: bool) -> Part:
    """A batch of `sluice.export.statements.export_select` (the JSON's type when it is not an
    object, the JSON text of a rejected row, the keys, the array in its binary form, the
    bracketed string) as a part. The arrays are split into buckets and tail without a Python
    loop (`sluice.formats.pgarray`); rows are rejected for the reasons, and in the order, the
    dump path gives."""
    k = len(spec.tail)
    rows = batch.num_rows
    json_type, json_text = batch.column(0), batch.column(1)
    keys = [batch.column(2 + i) for i in range(len(spec.json_keys))]
    binary = batch.column(2 + len(keys))
    packed = pgarray.Packed(binary)
    shapes = packed.shapes()
    lengths = shapes.lengths
    not_object = np.asarray(json_type.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    good = shapes.simple & (lengths >= k) & ~not_object
    rejected: list[tuple[int, str, str | None, str | None]] = []
    if not good.all():
        for i in np.flatnonzero(~good).tolist():
            elements = pgarray.decode_one(binary[i].as_py())
            rejected.append(_reject(spec, i, json_type[i].as_py(), json_text[i].as_py(), elements))
        mask = pa.array(good)
        keys = [pc.filter(column, mask) for column in keys]
        if as_string:
            batch = batch.filter(mask)
    where = np.flatnonzero(good).astype(np.int64)
    counts = lengths[where] - k
    values = packed.gather(where, np.zeros(len(where), np.int64), counts)
    offsets = np.concatenate([np.zeros(1, np.int64), np.cumsum(counts)]).astype(np.int32)
    bucket_lists = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values), type=INT64_LIST)
    tails = [pa.array(packed.element(where, lengths[where] - k + j)) for j in range(k)]
    columns = [*keys, bucket_lists, *tails]
    if as_string:
        columns.append(batch.column(batch.num_columns - 1))
    good_batch = pa.RecordBatch.from_arrays(columns, names=good_names(spec, as_string))
    return Part(good_batch, rows, rejected)


def _reject(
    spec: ExportSpec,
    i: int,
    json_type: str | None,
    json_text: str | None,
    values: list[int | None] | None,
) -> tuple[int, str, str | None, str | None]:
    text = None if values is None else _array_text(values)
    if json_type is not None:
        why = f"{spec.json_column} is a JSON {json_type}, not an object"
    elif values is None:
        why = f"{spec.array_column} is NULL"
    elif len(values) < len(spec.tail):
        why = f"{spec.array_column} has {len(values)} elements, fewer than {len(spec.tail)}"
    elif None in values:
        why = f"{spec.array_column} has a NULL element"
    else:
        why = f"{spec.array_column} is not a one-dimensional array"
    return i, why, json_text, text


def _array_text(values: list[int | None]) -> str:
    """An integer array as PostgreSQL writes it (``{1,NULL,3}``)."""
    return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"


def typed(
    batch: pa.RecordBatch,
    spec: ExportSpec,
    schema: pa.Schema,
    *,
    day: date,
    ingest: date,
    names: dict[str, str],
) -> pa.RecordBatch:
    """The good rows of a part in the output schema."""
    good = batch
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
    columns.append(good.column("buckets"))
    columns += [good.column(name) for name in spec.tail]
    if "as_string" in good.schema.names and len(schema) > len(columns):
        columns.append(good.column("as_string"))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def buckets(literals: pa.Array) -> pa.Array:
    """``{1,2,3}`` array literals → ``list<int64>`` (``{}`` → an empty list)."""
    inner = pc.utf8_slice_codeunits(literals, 1, -1)
    inner = pc.if_else(pc.equal(inner, ""), None, inner)
    lists = pc.split_pattern(inner, ",").cast(INT64_LIST)
    return pc.fill_null(lists, pa.scalar([], INT64_LIST))
