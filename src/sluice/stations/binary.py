"""Station rows in PostgreSQL's binary forms, built and read by numpy in one go: rows to write
as one binary array per column (query parameters), rows read as one binary array per column,
keys to read as binary COPY.

Every field has a fixed width, so a row (or an array element) is a numpy record: NULLs
travel as sentinels the SQL turns back (NaN for floats, -1 for the counters, which are never
negative, -infinity for times and dates, two spaces for a region). Times are microseconds and
dates days since 2000-01-01 on the wire; `sluice.stations.columns` counts from 1970.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sluice.stations.columns import NULL, StationColumns

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
#: 2000-01-01 from 1970-01-01.
PG_EPOCH_DAYS = 10957
PG_EPOCH_US = PG_EPOCH_DAYS * 86_400_000_000
_INT32_MIN = int(np.iinfo(np.int32).min)

#: The station columns after the key, in the order of the SQL that reads and writes them.
BODY: tuple[tuple[str, str], ...] = (
    ("lat", ">f8"),
    ("lon", ">f8"),
    ("max_lat", ">f8"),
    ("min_lat", ">f8"),
    ("max_lon", ">f8"),
    ("min_lon", ">f8"),
    ("weight", ">f8"),
    ("radius", ">i4"),
    ("samples", ">i8"),
    ("source", ">i2"),
    ("block_count", ">i4"),
    ("psc", ">i2"),
    ("created", ">i8"),
    ("modified", ">i8"),
    ("last_seen", ">i4"),
    ("block_first", ">i4"),
    ("block_last", ">i4"),
    ("region", "S2"),
)
_COUNTERS = ("radius", "samples", "source", "block_count", "psc")
_TIMES = ("created", "modified")
_DATES = ("last_seen", "block_first", "block_last")


#: ndim, has-NULL flag, element type, then the one dimension's length and lower bound.
_ARRAY_HEADER = 20


def decode(columns: list[bytes], into: StationColumns) -> None:
    """Set the rows of `into` that `read_stations` found: its columns (the batch index, then
    the body) as ``array_send`` values of one dimension without NULLs."""

    def values(data: bytes, kind: str) -> npt.NDArray[Any]:
        return np.frombuffer(data, dtype=_element(kind), offset=_ARRAY_HEADER)["value"]

    at = values(columns[0], ">i4").astype(np.intp)
    into.exists[at] = True
    body = dict(zip((name for name, _ in BODY), columns[1:], strict=True))
    for name, kind in BODY[:7]:
        getattr(into, name)[at] = values(body[name], kind)
    for name in _COUNTERS:
        value = values(body[name], dict(BODY)[name]).astype(np.int64)
        getattr(into, name)[at] = np.where(value == -1, NULL, value)
    for name in _TIMES:
        value = values(body[name], ">i8").astype(np.int64)
        getattr(into, name)[at] = np.where(value == NULL, NULL, value + PG_EPOCH_US)
    for name in _DATES:
        value = values(body[name], ">i4").astype(np.int64)
        getattr(into, name)[at] = np.where(value == _INT32_MIN, NULL, value + PG_EPOCH_DAYS)
    into.region[at] = [r.decode().strip() or None for r in values(body["region"], "S2")]


@dataclass(frozen=True)
class PgArray:
    """A one-dimensional array in PostgreSQL's binary form, to send as a query parameter as
    it is (the repository's dumper gives it `oid`, the array type)."""

    data: bytes
    oid: int


#: PostgreSQL's element type and array type of each column of `BODY`, and of keys.
_TYPES: dict[str, tuple[int, int]] = {
    **dict.fromkeys(
        ("lat", "lon", "max_lat", "min_lat", "max_lon", "min_lon", "weight"), (701, 1022)
    ),
    "radius": (23, 1007),
    "samples": (20, 1016),
    "source": (21, 1005),
    "block_count": (23, 1007),
    "psc": (21, 1005),
    "created": (1184, 1185),
    "modified": (1184, 1185),
    "last_seen": (1082, 1182),
    "block_first": (1082, 1182),
    "block_last": (1082, 1182),
    "region": (1042, 1014),
    "key": (17, 1001),
}


#: The columns of `Elements`, in their order.
COLUMNS = ("key", *(name for name, _ in BODY))


class Elements:
    """Rows as the elements of one binary array per column (`COLUMNS`), built once, to send
    in slices: `arrays(start, stop)` gives the arrays of rows ``start:stop``."""

    def __init__(self, keys: npt.NDArray[Any], rows: StationColumns) -> None:
        self._columns = {name: _elements(values) for name, values in _values(keys, rows)}

    def arrays(self, start: int, stop: int) -> dict[str, PgArray]:
        out = {}
        for name, elements in self._columns.items():
            element, oid = _TYPES[name]
            n = stop - start
            head = (1, 0, element, n, 1) if n else (0, 0, element)
            data = np.array(head, dtype=">i4").tobytes() + elements[start:stop].tobytes()
            out[name] = PgArray(data, oid)
        return out


def _element(kind: str | np.dtype[Any]) -> np.dtype[Any]:
    """An element of a binary array without NULLs: its length, then its value."""
    return np.dtype([("len", ">i4"), ("value", kind)])


def _elements(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    out = np.empty(len(values), dtype=_element(values.dtype.newbyteorder(">")))
    out["len"] = values.dtype.itemsize
    out["value"] = values
    return out


def _values(keys: npt.NDArray[Any], rows: StationColumns) -> Iterator[tuple[str, npt.NDArray[Any]]]:
    """Each column's values, NULLs as the sentinels the SQL turns back, in `COLUMNS` order."""
    yield "key", keys
    for name, kind in BODY[:7]:
        yield name, getattr(rows, name).astype(kind)
    for name in _COUNTERS:
        value = getattr(rows, name)
        yield name, np.where(value == NULL, -1, value).astype(dict(BODY)[name])
    for name in _TIMES:
        value = getattr(rows, name)
        yield name, np.where(value == NULL, NULL, value - PG_EPOCH_US).astype(">i8")
    for name in _DATES:
        value = getattr(rows, name)
        yield name, np.where(value == NULL, _INT32_MIN, value - PG_EPOCH_DAYS).astype(">i4")
    # Region codes have two letters; none is two spaces (a NUL would not be text).
    yield "region", np.array([r or "  " for r in rows.region], dtype="S2")


def encode_keys(
    index: npt.NDArray[np.int32], tag: npt.NDArray[np.int16], keys: npt.NDArray[Any]
) -> bytes:
    """Rows of ``station_keys`` (index in the batch, shard tag, key), without header or
    trailer."""
    dtype = np.dtype(
        [
            ("count", ">i2"),
            ("i_len", ">i4"),
            ("i", ">i4"),
            ("tag_len", ">i4"),
            ("tag", ">i2"),
            ("key_len", ">i4"),
            ("key", f"V{keys.dtype.itemsize}"),
        ]
    )
    out = np.empty(len(keys), dtype=dtype)
    out["count"], out["i_len"], out["tag_len"] = 3, 4, 2
    out["key_len"] = keys.dtype.itemsize
    out["i"], out["tag"], out["key"] = index, tag, keys
    return out.tobytes()
