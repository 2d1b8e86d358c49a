"""The binary form of bigint[] decoded vectorised, and split into buckets and tail exactly."""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa

from sluice.export import arrow
from sluice.formats import pgarray
from sluice.recipes.mozagg.tables import spec

BIG = 2**63 - 1
SMALL = -(2**63)


def send(values: list[int | None] | None, *, dims: int = 1) -> bytes | None:
    """What PostgreSQL's array_send writes for a one-dimensional bigint[] (or `dims` equal
    dimensions when given more)."""
    if values is None:
        return None
    if not values:
        return struct.pack(">iiI", 0, 0, 20)
    flag = 1 if None in values else 0
    if dims == 1:
        out = struct.pack(">iiIii", 1, flag, 20, len(values), 1)
    else:
        out = struct.pack(">iiI", 2, flag, 20) + struct.pack(">iiii", 2, 1, len(values) // 2, 1)
    for v in values:
        out += struct.pack(">i", -1) if v is None else struct.pack(">iq", 8, v)
    return out


def test_decode_one_exactly() -> None:
    assert pgarray.decode_one(send([1, -2, BIG, SMALL])) == [1, -2, BIG, SMALL]
    assert pgarray.decode_one(send([1, None, 3])) == [1, None, 3]
    assert pgarray.decode_one(send([])) == []
    assert pgarray.decode_one(None) is None
    assert pgarray.decode_one(send([1, 2, 3, 4], dims=2)) == [1, 2, 3, 4]


def test_shapes_and_gather() -> None:
    rows = [[5, 6, BIG, 9], [], None, [1, None], [1, 2, 3, 4], [SMALL, 7]]
    column = pa.array([send(r, dims=2 if i == 4 else 1) for i, r in enumerate(rows)], pa.binary())
    packed = pgarray.Packed(column)
    shapes = packed.shapes()
    assert shapes.simple.tolist() == [True, True, False, False, False, True]
    assert shapes.lengths.tolist() == [4, 0, 0, 0, 0, 2]
    where = np.array([0, 5], np.int64)
    got = packed.gather(where, np.array([1, 0], np.int64), np.array([3, 2], np.int64))
    assert got.tolist() == [6, BIG, 9, SMALL, 7]
    assert packed.element(where, np.array([3, 1], np.int64)).tolist() == [9, 7]


def test_sliced_column_keeps_its_offsets() -> None:
    column = pa.array([send([1, 2, 3]), send([4, 5, 6, 7])], pa.binary()).slice(1)
    packed = pgarray.Packed(column)
    assert packed.shapes().lengths.tolist() == [4]
    assert packed.gather(np.array([0]), np.array([0]), np.array([4])).tolist() == [4, 5, 6, 7]


def test_from_lists_splits_and_rejects_in_order() -> None:
    kind = spec("submission_date")
    keys = kind.json_keys
    histograms = [[1, 2, 2**40, 3], [BIG - 1, 1], [7], None, [1, None, 2], [3, 4, 5], [1, 2, 3]]
    json_types = [None, None, None, None, None, "array", None]
    n = len(histograms)
    columns = [
        pa.array(json_types, pa.string()),
        pa.array([None, None, '{"a": 1}', "{}", "{}", "[1]", None], pa.string()),
        *[pa.array([f"{key}{i}" for i in range(n)], pa.string()) for key in keys],
        pa.array([send(h) for h in histograms], pa.binary()),
    ]
    batch = pa.RecordBatch.from_arrays(columns, names=[f"c{i}" for i in range(len(columns))])
    part = arrow.from_lists(batch, kind, False)
    assert part.rows == n
    assert part.good.column("buckets").to_pylist() == [[1, 2], [], [1]]
    assert part.good.column("sum").to_pylist() == [2**40, BIG - 1, 2]
    assert part.good.column("count").to_pylist() == [3, 1, 3]
    assert part.good.column("os").to_pylist() == ["os0", "os1", "os6"]
    assert part.bad == [
        (2, "histogram has 1 elements, fewer than 2", '{"a": 1}', "{7}"),
        (3, "histogram is NULL", "{}", None),
        (4, "histogram has a NULL element", "{}", "{1,NULL,2}"),
        (5, "dimensions is a JSON array, not an object", "[1]", "{3,4,5}"),
    ]
    rejected = part.rejected("t", 10)
    assert [(r.table, r.line) for r in rejected] == [("t", 12), ("t", 13), ("t", 14), ("t", 15)]
