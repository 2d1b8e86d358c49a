"""PostgreSQL's binary form of ``bigint[]`` (what ``array_send`` gives), decoded vectorised.

The binary form of an array is: the number of dimensions, a has-NULL flag and the element
type (three big-endian int32), then per dimension its length and lower bound (two int32), then
per element its byte length (int32, -1 for NULL) and its bytes (a big-endian int64 here). A
one-dimensional array without NULLs is therefore 20 bytes and 12 bytes per element, and an
empty array is 12 bytes: the elements of every such array of a whole batch are gathered with
one numpy fancy index over an int64 view at every byte offset. Anything else (NULL elements,
more dimensions, another element type) is left to `decode_one`, a row at a time.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

#: The element type of ``bigint[]`` in the binary form (``int8``'s oid).
INT8_OID = 20
_BE_I4 = np.dtype(">i4")
_BE_I8 = np.dtype(">i8")

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Shapes:
    """What each array of a batch is: simple (one dimension or empty, no NULLs, int8), and
    its number of elements (valid where simple)."""

    simple: npt.NDArray[np.bool_]
    lengths: IntArray


class Packed:
    """The binary arrays of one batch (a ``binary`` Arrow column) as numpy views."""

    def __init__(self, column: pa.Array) -> None:
        if not pa.types.is_binary(column.type) and not pa.types.is_large_binary(column.type):
            raise TypeError(f"expected a binary column of array_send values, got {column.type}")
        buffers = column.buffers()
        kind = np.int64 if pa.types.is_large_binary(column.type) else np.int32
        offsets = np.frombuffer(buffers[1], dtype=kind, count=len(column) + 1 + column.offset)
        self.offsets = offsets[column.offset :].astype(np.int64)
        data = buffers[2]
        self.data = (
            np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        )
        self.valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        self.column = column

    def _view(self, dtype: np.dtype[np.generic]) -> npt.NDArray[np.int64]:
        """`dtype` values starting at every byte of the data (overlapping, unaligned)."""
        size = dtype.itemsize
        count = max(len(self.data) - size + 1, 0)
        view: npt.NDArray[np.int64] = np.ndarray(
            shape=(count,), dtype=dtype, buffer=self.data, offset=0, strides=(1,)
        )
        return view

    def shapes(self) -> Shapes:
        starts, ends = self.offsets[:-1], self.offsets[1:]
        size = ends - starts
        ok = self.valid & (size >= 12)
        at = np.where(ok, starts, 0)
        i4 = self._view(_BE_I4)
        if len(i4) == 0:
            return Shapes(np.zeros(len(starts), bool), np.zeros(len(starts), np.int64))
        ndim = np.where(ok, i4[at], -1)
        flags = np.where(ok, i4[np.minimum(at + 4, len(i4) - 1)], 1)
        oid = np.where(ok, i4[np.minimum(at + 8, len(i4) - 1)], 0)
        one = ok & (ndim == 1) & (size >= 20)
        dim = np.where(one, i4[np.minimum(at + 12, len(i4) - 1)], 0).astype(np.int64)
        empty = ok & (ndim == 0) & (size == 12)
        simple = (empty | (one & (size == 20 + 12 * dim))) & (flags == 0)
        simple &= empty | (oid == INT8_OID)
        return Shapes(simple, np.where(one & simple, dim, 0))

    def gather(self, rows: IntArray, first: IntArray, count: IntArray) -> IntArray:
        """For each of `rows` (simple arrays), `count` elements from element `first` on, all
        in one int64 array."""
        total = int(count.sum())
        if total == 0:
            return np.zeros(0, np.int64)
        before = np.cumsum(count) - count
        base = self.offsets[rows] + 24 + 12 * (first - before)
        positions = np.repeat(base, count) + 12 * np.arange(total, dtype=np.int64)
        gathered: IntArray = self._view(_BE_I8)[positions].astype(np.int64)
        return gathered

    def element(self, rows: IntArray, index: IntArray) -> IntArray:
        """Element `index` of each of `rows` (simple arrays that have it)."""
        if len(rows) == 0:
            return np.zeros(0, np.int64)
        found: IntArray = self._view(_BE_I8)[self.offsets[rows] + 24 + 12 * index].astype(np.int64)
        return found


def decode_one(value: bytes | None) -> list[int | None] | None:
    """One array's binary form as a list (NULL elements as None; more dimensions flattened
    in storage order), for the rows `Packed` leaves aside."""
    if value is None:
        return None
    ndim, _, oid = struct.unpack_from(">iiI", value, 0)
    if oid != INT8_OID:
        raise ValueError(f"the array's elements have type oid {oid}, not bigint ({INT8_OID})")
    at = 12 + 8 * ndim
    count = 1 if ndim else 0
    for d in range(ndim):
        count *= struct.unpack_from(">i", value, 12 + 8 * d)[0]
    out: list[int | None] = []
    for _ in range(count):
        (size,) = struct.unpack_from(">i", value, at)
        at += 4
        if size < 0:
            out.append(None)
            continue
        out.append(struct.unpack_from(">q", value, at)[0])
        at += size
    return out
