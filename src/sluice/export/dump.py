"""pg_dump directory archives: writing them with the real ``pg_dump``, reading them back.

The table of contents is read with ``pg_restore --list`` (the format's own reader), never by
scraping ``toc.dat``: each ``TABLE DATA`` entry gives a dump id, a schema and a table, and the
table's rows are in ``<dump id>.dat.gz`` (or ``.dat`` when written uncompressed). Data files
are decompressed as streams and read as COPY text, unescaped exactly
(`sluice.formats.pgcopy`); rows are flattened the way the direct path's COPY flattens them on
the server, so both ways give the same rows.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from sluice.errors import BadInputError, ConfigError
from sluice.export import arrow
from sluice.export.day import DayExport, RowsSink, TableStream, write_day
from sluice.export.spec import ExportSpec, ds_nodash
from sluice.formats import pgcopy
from sluice.formats.compression import gunzip

#: Rows of a dump turned into one flat batch.
BATCH_ROWS = 32_768
READ_BYTES = 1 << 20
#: ``pg_restore --list`` lines of table data: ``3382; 0 33534 TABLE DATA public t owner``.
_DATA_ENTRY = re.compile(r"^(\d+); \d+ \d+ TABLE DATA (\S+) (\S+) (\S+)$")
#: jsonb_typeof's names of JSON values, for the same reasons as the server's.
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}


@dataclass(frozen=True)
class TocEntry:
    """A table's data in an archive."""

    dump_id: int
    schema: str
    table: str


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ConfigError(
            f"{name} is not installed (Debian's postgresql-client package provides it)"
        )
    return found


def write_dump(url: str, schema: str, tables: Sequence[str], directory: Path) -> None:
    """Write the `tables` of `schema` as one directory archive with the real pg_dump."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    args = [tool("pg_dump"), "--format", "directory", "--file", str(directory), "--no-owner"]
    for table in tables:
        args += ["--table", f'"{schema}"."{table}"']
    done = subprocess.run([*args, "--dbname", url], capture_output=True, text=True, check=False)
    if done.returncode:
        raise ConfigError(f"pg_dump of {len(tables)} tables failed: {done.stderr.strip()}")


def read_toc(directory: Path) -> list[TocEntry]:
    """The table-data entries of an archive, as ``pg_restore --list`` reads them."""
    if not (directory / "toc.dat").is_file():
        raise BadInputError("no toc.dat: not a pg_dump directory archive", obj=str(directory))
    done = subprocess.run(
        [tool("pg_restore"), "--list", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise BadInputError(
            f"pg_restore cannot read its table of contents: {done.stderr.strip()}",
            obj=str(directory),
        )
    entries = []
    for line in done.stdout.splitlines():
        found = _DATA_ENTRY.match(line.strip())
        if found:
            entries.append(TocEntry(int(found.group(1)), found.group(2), found.group(3)))
    return entries


def dump_folder(root: Path, spec: ExportSpec, day: date) -> Path:
    """A day's archive: `root` itself if it is one, else ``<root>/<prefix>/<YYYYMMDD>`` (the
    seed's layout)."""
    if (root / "toc.dat").is_file():
        return root
    return root / spec.prefix / ds_nodash(day)


def dump_fingerprint(directory: Path) -> str:
    """What a day's archive is: its table of contents and the sizes of its data files."""
    toc = directory / "toc.dat"
    if not toc.is_file():
        return "empty"
    digest = hashlib.sha256(toc.read_bytes())
    for path in sorted(directory.glob("*.dat*")):
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
    return digest.hexdigest()[:32]


def data_chunks(directory: Path, entry: TocEntry) -> Iterator[bytes]:
    """The decompressed bytes of an entry's data file, as a stream."""
    plain = directory / f"{entry.dump_id}.dat"
    packed = directory / f"{entry.dump_id}.dat.gz"
    path = packed if packed.exists() else plain
    if not path.exists():
        raise BadInputError(f"no data file for {entry.table}", obj=str(plain))

    def raw() -> Iterator[bytes]:
        with path.open("rb") as handle:
            while chunk := handle.read(READ_BYTES):
                yield chunk

    return gunzip(raw(), str(path)) if path.suffix == ".gz" else raw()


def _text(value: Any) -> str | None:
    """A JSON value as ``->>`` gives it: strings as they are, the rest as JSON text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _decode(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="replace")


def flatten(
    fields: list[bytes | None], spec: ExportSpec, as_string: bool
) -> tuple[str | None, list[str | None], str | None, str | None]:
    """One dump row → (reason, flat values of a good row, raw JSON, raw array)."""
    tail = len(spec.tail)
    if len(fields) != 2:
        raw = b"\t".join(b"\\N" if f is None else f for f in fields)
        return f"the row has {len(fields)} fields, expected 2", [], _decode(raw), None
    doc_text, arr_text = _decode(fields[0]), _decode(fields[1])
    try:
        doc = None if doc_text is None else json.loads(doc_text)
    except ValueError as exc:
        return f"{spec.json_column} is not JSON ({exc})", [], doc_text, arr_text
    parts = [] if arr_text is None or arr_text == "{}" else arr_text[1:-1].split(",")
    reason = None
    if doc is not None and not isinstance(doc, dict):
        kind = _JSON_TYPES.get(type(doc), "number")
        reason = f"{spec.json_column} is a JSON {kind}, not an object"
    elif arr_text is None:
        reason = f"{spec.array_column} is NULL"
    elif len(parts) < tail:
        reason = f"{spec.array_column} has {len(parts)} elements, fewer than {tail}"
    elif "NULL" in parts:
        reason = f"{spec.array_column} has a NULL element"
    if reason is not None:
        return reason, [], doc_text, arr_text
    values: list[str | None] = [
        None if doc is None else _text(doc.get(key)) for key in spec.json_keys
    ]
    values.append("{" + ",".join(parts[: len(parts) - tail]) + "}")
    values += parts[len(parts) - tail :]
    if as_string:
        values.append("[" + ",".join(parts) + "]")
    return None, values, None, None


def flat_batches(lines: Iterable[bytes], spec: ExportSpec, as_string: bool) -> Iterator[arrow.Part]:
    """The parts (the direct path's shape) of a data file's COPY text lines."""
    names = arrow.flat_names(spec, as_string)
    width = len(names) - 3  # the values of a good row: all but reason and the raw values
    columns: list[list[str | None]] = [[] for _ in names]
    for fields in pgcopy.rows(lines):
        reason, values, doc_text, arr_text = flatten(fields, spec, as_string)
        columns[0].append(reason)
        if reason is None:
            for i, value in enumerate(values, start=1):
                columns[i].append(value)
        else:
            for i in range(1, width + 1):
                columns[i].append(None)
        columns[-2].append(doc_text)
        columns[-1].append(arr_text)
        if len(columns[0]) >= BATCH_ROWS:
            yield _part(names, columns, spec, as_string)
            columns = [[] for _ in names]
    if columns[0]:
        yield _part(names, columns, spec, as_string)


def _part(
    names: list[str], columns: list[list[str | None]], spec: ExportSpec, as_string: bool
) -> arrow.Part:
    flat = pa.RecordBatch.from_arrays([pa.array(c, pa.string()) for c in columns], names=names)
    return arrow.from_flat(flat, spec, as_string)


def dump_tables(
    directory: Path, spec: ExportSpec, day: date, *, as_string: bool
) -> tuple[list[TocEntry], Iterator[TableStream]]:
    """The archive's tables of `day` (matched by the anchored pattern), and their streams."""
    pattern = re.compile(spec.name_regex(day))
    entries = sorted(
        (e for e in read_toc(directory) if pattern.fullmatch(e.table)), key=lambda e: e.table
    )

    def streams() -> Iterator[TableStream]:
        for entry in entries:
            lines = pgcopy.lines(data_chunks(directory, entry))
            names = spec.name_values(entry.table, day)
            yield entry.table, names, flat_batches(lines, spec, as_string)

    return entries, streams()


def export_dump(
    directory: Path,
    spec: ExportSpec,
    day: date,
    out_dir: Path,
    *,
    as_string: bool = False,
    ingest: date | None = None,
    tag: str | None = None,
    on_rows: RowsSink | None = None,
) -> DayExport:
    """Export one day from its directory archive (an absent archive is an empty day)."""
    if not (directory / "toc.dat").is_file():
        return DayExport(spec.prefix, day)
    _, streams = dump_tables(directory, spec, day, as_string=as_string)
    return write_day(
        spec, day, streams, out_dir, as_string=as_string, ingest=ingest, tag=tag, on_rows=on_rows
    )
