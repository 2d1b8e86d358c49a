"""One Incoming file into its lake table: the CSV streamed into Arrow batches (every column a
string, empty → NULL), cast to the ``.dfm`` types for a typed table (values that do not cast
become NULL and rejects), written as Parquet through the table's file IO and committed by
replacing exactly the file's partition. Memory holds one batch at a time, whatever the file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sluice import faults
from sluice.errors import BadInputError, SchemaError
from sluice.export.arrow import ChunkFile
from sluice.formats.dfm import Column, Dfm
from sluice.formats.streams import prefetch
from sluice.lake import Lake
from sluice.route.cast import cast_column, lake_type

#: Bytes of CSV per Arrow batch: a bounded amount of memory per load.
BLOCK_BYTES = 512 << 10
#: The longest header row accepted.
MAX_HEADER_BYTES = 1 << 20
#: Rejects kept per load (all are counted; past this many only the count grows).
MAX_REJECTS_KEPT = 100_000

REJECTS_SCHEMA = [
    ("line", pa.int64()),
    ("column", pa.string()),
    ("value", pa.string()),
    ("reason", pa.string()),
]


@dataclass
class Written:
    """What a lake write did."""

    table: str
    rows: int = 0
    rejects: int = 0
    snapshot_id: int | None = None
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FileSpec:
    """The file to write and where: its lake table, partition values, declared columns."""

    table: str
    obj: str
    partition: Mapping[str, str]
    #: The columns (from the ``.dfm``), or None to take the header's names (DMAP).
    dfm: Dfm | None
    typed: bool
    #: Names the data files of this attempt (distinct per attempt: a retry never reuses one).
    tag: str


def split_header(chunks: Iterable[bytes], obj: str) -> tuple[list[str], Iterator[bytes]]:
    """The header row's names and the bytes after it."""
    pieces = iter(chunks)
    head = b""
    for piece in pieces:
        head += piece
        if b"\n" in head:
            break
        if len(head) > MAX_HEADER_BYTES:
            raise BadInputError(f"no end of the header row in {MAX_HEADER_BYTES:,} bytes", obj=obj)
    line, _, rest = head.partition(b"\n")
    try:
        text = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"the header row is not UTF-8 ({exc})", obj=obj, line=1) from exc
    names = next(csv.reader([text]), [])
    if not names or not any(n.strip() for n in names):
        raise BadInputError("the file has no header row", obj=obj, line=1)

    def remainder() -> Iterator[bytes]:
        if rest:
            yield rest
        yield from pieces

    return names, remainder()


def columns_of(spec: FileSpec, header: list[str]) -> list[Column]:
    """The file's columns: the ``.dfm``'s (the header must name them), else the header's."""
    if spec.dfm is not None:
        spec.dfm.check_header(header, obj=spec.obj)
        return list(spec.dfm.columns)
    names = [h.strip() for h in header]
    if len({n.lower() for n in names}) != len(names):
        raise BadInputError(f"the header names a column twice ({', '.join(names)})", obj=spec.obj)
    return [Column(name=n, type="STRING") for n in names]


def output_schema(columns: Sequence[Column], partition: Sequence[str], typed: bool) -> pa.Schema:
    fields = [pa.field(c.lower, lake_type(c) if typed else pa.string()) for c in columns]
    clash = sorted({c.lower for c in columns} & set(partition))
    if clash:
        raise SchemaError(f"the file has a column named like a partition column: {clash[0]}")
    return pa.schema(fields + [pa.field(p, pa.string()) for p in partition])


def read_batches(
    chunks: Iterable[bytes], names: Sequence[str], delimiter: str, obj: str
) -> Iterator[pa.RecordBatch]:
    """The rows after the header as string batches; a malformed row is a BadInputError."""
    done = 0
    try:
        reader = pacsv.open_csv(
            io.BufferedReader(ChunkFile(chunks), buffer_size=1 << 20),
            read_options=pacsv.ReadOptions(column_names=list(names), block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                null_values=[""],
            ),
        )
        for batch in reader:
            if batch.num_rows:
                done += batch.num_rows
                yield batch
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInputError(
            f"the rows do not match the {len(names)} declared columns ({text})",
            obj=obj,
            line=done + 2,
        ) from exc


def write_file(
    lake: Lake,
    spec: FileSpec,
    chunks: Iterable[bytes],
    *,
    delimiter: str = ",",
    on_rows: Callable[[int], None] = lambda n: None,
) -> Written:
    """Write one decompressed CSV stream to its lake table, replacing its partition."""
    header, rest = split_header(chunks, spec.obj)
    columns = columns_of(spec, header)
    partition = list(spec.partition)
    schema = output_schema(columns, partition, spec.typed)
    done = Written(spec.table)
    rejects = Rejects()
    path = "/".join(f"{k}={v}" for k, v in spec.partition.items()) + f"/{spec.tag}.parquet"
    names = [c.name for c in columns]

    def batches() -> Iterator[pa.RecordBatch]:
        rows = 0
        for batch in read_batches(rest, names, delimiter, spec.obj):
            arrays = _typed(batch, columns, spec.typed, rows, rejects)
            n = batch.num_rows
            arrays += [pa.repeat(pa.scalar(v, pa.string()), n) for v in spec.partition.values()]
            rows += n
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    with (
        lake.output(spec.table, schema, partition, path) as (location, stream),
        pq.ParquetWriter(stream, schema) as writer,
    ):
        # Reading and casting the next batches in a thread while this one is written: both
        # run mostly in Arrow, outside the interpreter lock, so they overlap on two cores.
        for batch in prefetch(batches(), depth=1):
            writer.write_batch(batch)
            done.rows += batch.num_rows
            on_rows(done.rows)
    done.rejects = rejects.count
    done.files = [location] if done.rows else []
    faults.pause("lake")
    done.snapshot_id = lake.overwrite(spec.table, schema, spec.partition, done.files)
    _write_rejects(lake, spec, rejects.kept)
    return done


@dataclass
class Rejects:
    """The values of a file that did not cast: every one counted, the first ones kept."""

    kept: list[tuple[int, str, str | None, str]] = field(default_factory=list)
    count: int = 0


def _typed(
    batch: pa.RecordBatch,
    columns: Sequence[Column],
    typed: bool,
    first_row: int,
    rejects: Rejects,
) -> list[pa.Array]:
    if not typed:
        return list(batch.columns)
    arrays = []
    for i, column in enumerate(columns):
        values = batch.column(i)
        cast = cast_column(values, column)
        rejects.count += len(cast.failed)
        for row in cast.failed:
            if len(rejects.kept) < MAX_REJECTS_KEPT:
                # line 1 is the header; rows with newlines inside values shift this
                rejects.kept.append(
                    (first_row + row + 2, column.lower, values[row].as_py(), cast.reason)
                )
        arrays.append(cast.values)
    return arrays


def _write_rejects(
    lake: Lake, spec: FileSpec, rejects: list[tuple[int, str, str | None, str]]
) -> None:
    """The load's rejects replace its partition of ``<table>__rejects`` (a retry leaves no
    stale ones); a table that never had rejects is not created."""
    name = f"{spec.table}__rejects"
    if not rejects and not lake.has(name):
        return
    partition = list(spec.partition)
    schema = pa.schema(
        [pa.field(n, t) for n, t in REJECTS_SCHEMA] + [pa.field(p, pa.string()) for p in partition]
    )
    files: list[str] = []
    if rejects:
        path = "/".join(f"{k}={v}" for k, v in spec.partition.items()) + f"/{spec.tag}.parquet"
        lines, cols, values, reasons = zip(*rejects, strict=True)
        n = len(rejects)
        table = pa.table(
            [
                pa.array(lines, pa.int64()),
                pa.array(cols, pa.string()),
                pa.array(values, pa.string()),
                pa.array(reasons, pa.string()),
            ]
            + [pa.repeat(pa.scalar(v, pa.string()), n) for v in spec.partition.values()],
            schema=schema,
        )
        with lake.output(name, schema, partition, path) as (location, stream):
            pq.write_table(table, stream)
        files = [location]
    lake.overwrite(name, schema, spec.partition, files)


#: Lines per batch of a JSON-lines file, and the longest line accepted.
JSON_BATCH = 10_000
MAX_JSON_LINE = 16 << 20


def _lines(chunks: Iterable[bytes], obj: str) -> Iterator[bytes]:
    rest = b""
    for piece in chunks:
        rest += piece
        *whole, rest = rest.split(b"\n")
        yield from whole
        if len(rest) > MAX_JSON_LINE:
            raise BadInputError(f"a line longer than {MAX_JSON_LINE:,} bytes", obj=obj)
    if rest:
        yield rest


def write_json_lines(
    lake: Lake,
    spec: FileSpec,
    chunks: Iterable[bytes],
    *,
    on_rows: Callable[[int], None] = lambda n: None,
) -> Written:
    """A stream file (one JSON document a line) into its raw lake table: one row per line,
    its number and its JSON text, so that messages of any shape land; a line that is not
    JSON fails the load, naming the line."""
    import json

    partition = list(spec.partition)
    schema = pa.schema(
        [pa.field("line", pa.int64()), pa.field("value", pa.string())]
        + [pa.field(p, pa.string()) for p in partition]
    )
    done = Written(spec.table)
    path = "/".join(f"{k}={v}" for k, v in spec.partition.items()) + f"/{spec.tag}.parquet"
    numbers: list[int] = []
    values: list[str] = []

    def flush(writer: pq.ParquetWriter) -> None:
        n = len(values)
        arrays = [pa.array(numbers, pa.int64()), pa.array(values, pa.string())]
        arrays += [pa.repeat(pa.scalar(v, pa.string()), n) for v in spec.partition.values()]
        writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
        done.rows += n
        on_rows(done.rows)
        numbers.clear()
        values.clear()

    with (
        lake.output(spec.table, schema, partition, path) as (location, stream),
        pq.ParquetWriter(stream, schema) as writer,
    ):
        for number, raw in enumerate(_lines(chunks, spec.obj), start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
                json.loads(text)
            except (UnicodeDecodeError, ValueError) as exc:
                raise BadInputError(
                    f"not a JSON document ({exc})", obj=spec.obj, line=number
                ) from exc
            numbers.append(number)
            values.append(text)
            if len(values) >= JSON_BATCH:
                flush(writer)
        if values:
            flush(writer)
    done.files = [location] if done.rows else []
    faults.pause("lake")
    done.snapshot_id = lake.overwrite(spec.table, schema, spec.partition, done.files)
    return done
