"""Qlik Replicate ``.dfm`` metadata: the columns, types and keys of one data file.

Every ODS data file in an Incoming bucket (``LOAD00000001.csv.gz``, ``20211201-112233444.csv.gz``)
has a sibling ``.dfm`` JSON document with the same stem. It names the file's columns in order,
their Qlik types, which of them form the primary key, and when the file was written. This module
reads one (bounded in size: a ``.dfm`` is a few kilobytes, anything far larger is not one) and
maps its types to Arrow and PostgreSQL, so that the lake, the current view and the checks of a
data file's header all read the same declaration.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sluice.errors import BadInputError

if TYPE_CHECKING:  # Arrow is imported where a schema is built: reading a .dfm needs none
    import pyarrow as pa

__all__ = [
    "MAX_DFM_BYTES",
    "Column",
    "Dfm",
    "arrow_type",
    "dfm_key",
    "parse_dfm",
    "postgres_type",
]

#: Larger than any real ``.dfm`` (a table of 1,000 columns is about 200 kB).
MAX_DFM_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Column:
    """One column of a data file as its ``.dfm`` declares it."""

    name: str
    type: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    #: 1-based position in the primary key, 0 when the column is not part of it.
    primary_key_pos: int = 0

    @property
    def lower(self) -> str:
        """The column's name as PostgreSQL and the lake tables spell it."""
        return self.name.lower()


@dataclass(frozen=True)
class Dfm:
    """What a ``.dfm`` says of its data file."""

    columns: tuple[Column, ...]
    #: ``fileInfo.startWriteTimestamp``; None when the field is empty or missing.
    start_write: datetime | None
    record_count: int | None
    source_schema: str
    source_table: str
    field_delimiter: str = ","
    null_value: str = ""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def key(self) -> list[Column]:
        """The primary-key columns in key order (empty when the table declares none)."""
        keyed = [c for c in self.columns if c.primary_key_pos > 0]
        return sorted(keyed, key=lambda c: c.primary_key_pos)

    def arrow_schema(self, *, typed: bool = True) -> pa.Schema:
        """The columns as Arrow fields, lower-cased; every one a string when not `typed`."""
        import pyarrow as pa

        return pa.schema(
            [pa.field(c.lower, arrow_type(c) if typed else pa.string()) for c in self.columns]
        )

    def check_header(self, header: Sequence[str], *, obj: str) -> None:
        """Raise BadInputError unless a data file's header row names the declared columns."""
        want = [n.lower() for n in self.names]
        have = [h.strip().lower() for h in header]
        if have == want:
            return
        missing = [n for n in want if n not in have]
        extra = [h for h in have if h not in want]
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"not declared {', '.join(extra)}")
        if not parts:
            parts.append(f"in the order {', '.join(have)} instead of {', '.join(want)}")
        raise BadInputError(
            f"the header does not match the .dfm columns ({'; '.join(parts)})", obj=obj, line=1
        )


def dfm_key(data_key: str) -> str:
    """The key of the ``.dfm`` sibling of a data file: ``a/LOAD1.csv.gz`` → ``a/LOAD1.dfm``."""
    for suffix in (".csv.gz", ".csv", ".jsonl.gz", ".jsonl", ".json"):
        if data_key.endswith(suffix):
            return data_key[: -len(suffix)] + ".dfm"
    return data_key.rsplit(".", 1)[0] + ".dfm"


def parse_dfm(body: bytes, *, obj: str) -> Dfm:
    """Read a ``.dfm`` document; BadInputError (naming `obj`) when it is not a valid one."""
    if len(body) > MAX_DFM_BYTES:
        raise BadInputError(
            f"a .dfm of {len(body):,} bytes is larger than {MAX_DFM_BYTES:,}; not a .dfm", obj=obj
        )
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInputError(f"the .dfm is not JSON ({exc})", obj=obj) from exc
    if not isinstance(doc, dict):
        raise BadInputError("the .dfm is not a JSON object", obj=obj)
    data = _section(doc, "dataInfo", obj)
    file_info = _optional(doc, "fileInfo")
    raw_columns = data.get("columns")
    if not isinstance(raw_columns, list) or not raw_columns:
        raise BadInputError("the .dfm has no dataInfo.columns", obj=obj)
    columns = tuple(_column(c, i, obj) for i, c in enumerate(raw_columns, start=1))
    names = [c.lower for c in columns]
    if len(set(names)) != len(names):
        raise BadInputError(f"the .dfm declares a column twice ({', '.join(names)})", obj=obj)
    options = _optional(_optional(doc, "formatInfo"), "options")
    return Dfm(
        columns=columns,
        start_write=_timestamp(file_info.get("startWriteTimestamp"), obj),
        record_count=_int_or_none(file_info.get("recordCount")),
        source_schema=str(data.get("sourceSchema") or ""),
        source_table=str(data.get("sourceTable") or ""),
        field_delimiter=str(options.get("fieldDelimiter") or ","),
        null_value=str(options.get("nullValue") or ""),
    )


def _section(doc: dict[str, object], name: str, obj: str) -> dict[str, object]:
    value = doc.get(name)
    if not isinstance(value, dict):
        raise BadInputError(f"the .dfm has no {name} object", obj=obj)
    return value


def _optional(doc: dict[str, object], name: str) -> dict[str, object]:
    value = doc.get(name)
    return value if isinstance(value, dict) else {}


def _column(raw: object, ordinal: int, obj: str) -> Column:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise BadInputError(f"column {ordinal} of the .dfm has no name", obj=obj)
    kind = raw.get("type")
    if not isinstance(kind, str) or not kind:
        raise BadInputError(f"column {raw['name']} of the .dfm has no type", obj=obj)
    try:
        return Column(
            name=raw["name"],
            type=kind.upper(),
            length=int(raw.get("length") or 0),
            precision=int(raw.get("precision") or 0),
            scale=int(raw.get("scale") or 0),
            primary_key_pos=int(raw.get("primaryKeyPos") or 0),
        )
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"column {raw['name']} of the .dfm: {exc}", obj=obj) from exc


def _timestamp(value: object, obj: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise BadInputError(f"fileInfo.startWriteTimestamp {value!r} is not a string", obj=obj)
    text = value.strip().replace("Z", "+00:00")
    # Qlik writes seven fractional digits; Python reads at most six
    if "." in text:
        head, _, frac = text.partition(".")
        digits = "".join(ch for ch in frac if ch.isdigit())
        rest = frac[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadInputError(
            f"fileInfo.startWriteTimestamp {value!r} is not a timestamp", obj=obj
        ) from exc
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _int_or_none(value: object) -> int | None:
    try:
        return None if value is None else int(str(value))
    except ValueError:
        return None


def arrow_type(column: Column) -> pa.DataType:
    """The Arrow type of a ``.dfm`` column (the lake's typed tables)."""
    import pyarrow as pa

    kind = column.type
    if kind in ("INT1", "INT2"):
        return pa.int16()
    if kind in ("INT3",):
        return pa.int32()
    if kind in ("INT4", "INT8", "UINT4", "UINT8"):
        return pa.int64()
    if kind == "NUMERIC":
        if column.scale == 0 and 0 < column.precision < 19:
            return pa.int64()
        precision = min(column.precision or 38, 38)
        return pa.decimal128(precision, min(column.scale, precision))
    if kind == "REAL4":
        return pa.float32()
    if kind == "REAL8":
        return pa.float64()
    if kind == "DATE":
        return pa.date32()
    if kind == "TIME":
        return pa.time64("us")
    if kind in ("DATETIME", "TIMESTAMP"):
        return pa.timestamp("us")
    if kind == "BOOLEAN":
        return pa.bool_()
    return pa.string()


def postgres_type(column: Column) -> str:
    """The PostgreSQL type of a ``.dfm`` column, as the downstream merge maps them. Returned as
    a fixed keyword from this table (never text from the file), safe for ``sql.SQL``."""
    kind = column.type
    if kind in ("INT1", "INT2"):
        return "smallint"
    if kind == "INT3":
        return "integer"
    if kind in ("INT4", "INT8", "UINT4", "UINT8"):
        return "bigint"
    if kind == "NUMERIC":
        if column.scale == 0 and 0 < column.precision < 19:
            return "bigint"
        if 0 < column.precision <= 1000 and 0 <= column.scale <= column.precision:
            return f"numeric({int(column.precision)},{int(column.scale)})"
        return "numeric"
    if kind == "REAL4":
        return "real"
    if kind == "REAL8":
        return "double precision"
    if kind == "DATE":
        return "date"
    if kind == "TIME":
        return "time"
    if kind in ("DATETIME", "TIMESTAMP"):
        return "timestamp"
    if kind == "BOOLEAN":
        return "boolean"
    return "text"
