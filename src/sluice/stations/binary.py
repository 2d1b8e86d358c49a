"""Station rows in PostgreSQL's binary forms, built and read by numpy in one go: rows to write
as binary COPY, rows read as one binary array per column.

Every field has a fixed width, so a row (or an array element) is a numpy record: NULLs
travel as sentinels the SQL turns back (NaN for floats, -1 for the counters, which are never
negative, -infinity for times and dates, two spaces for a region). Times are microseconds and
dates days since 2000-01-01 on the wire; `sluice.stations.columns` counts from 1970.
"""

from __future__ import annotations

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


def _dtype(head: tuple[tuple[str, str], ...]) -> np.dtype[Any]:
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for name, kind in head + BODY:
        fields += [(f"{name}_len", ">i4"), (name, kind)]
    return np.dtype(fields)


def write_dtype(key_bytes: int) -> np.dtype[Any]:
    """A row of ``station_rows``: shard tag, whether the row exists, key, then the body."""
    return _dtype((("tag", ">i2"), ("existing", "?"), ("key", f"V{key_bytes}")))


def decode(columns: list[bytes], into: StationColumns) -> None:
    """Set the rows of `into` that `read_stations` found: its columns (the batch index, then
    the body) as ``array_send`` values of one dimension without NULLs."""

    def values(data: bytes, kind: str) -> npt.NDArray[Any]:
        element = np.dtype([("len", ">i4"), ("value", kind)])
        return np.frombuffer(data, dtype=element, offset=_ARRAY_HEADER)["value"]

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


def encode(
    tag: npt.NDArray[np.int16],
    keys: npt.NDArray[Any],
    existing: npt.NDArray[np.bool_],
    rows: StationColumns,
) -> bytes:
    """`rows` (with their shard tag, key — ``V6`` or ``V11`` records — and whether the row
    exists) as binary COPY rows of ``station_rows``, without header or trailer."""
    dtype = write_dtype(keys.dtype.itemsize)
    out = np.zeros(len(rows), dtype=dtype)
    out["count"] = len(dtype.names or ()) // 2
    for name in dtype.names or ():
        if name.endswith("_len"):
            out[name] = dtype[name.removesuffix("_len")].itemsize
    out["tag"], out["existing"], out["key"] = tag, existing, keys
    for name, _ in BODY[:7]:
        out[name] = getattr(rows, name)
    for name in _COUNTERS:
        value = getattr(rows, name)
        out[name] = np.where(value == NULL, -1, value)
    for name in _TIMES:
        value = getattr(rows, name)
        out[name] = np.where(value == NULL, NULL, value - PG_EPOCH_US)
    for name in _DATES:
        value = getattr(rows, name)
        out[name] = np.where(value == NULL, _INT32_MIN, value - PG_EPOCH_DAYS)
    out["region"] = [(r or "").ljust(2)[:2].encode() for r in rows.region]
    return out.tobytes()


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
