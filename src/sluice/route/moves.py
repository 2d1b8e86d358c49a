"""Idempotent moves between stores (Incoming → Archive or Error), the ``.dfm`` travelling
with its data file.

A move looks at both ends first, so that running it again after a crash (between the copy and
the delete, say) finishes it instead of failing or copying twice:

* source gone, destination there: it was moved already;
* destination there with the same content: the source is just removed;
* destination there with different content (a re-published dataset): the source is kept
  beside it under a distinct name (``LOAD1.<version>.csv.gz``) — never an overwrite, never a drop;
* otherwise: copy (server-side within one store, streamed between stores), then delete.

A source and a destination both missing is a move whose outcome is unknown: a transient
error, retried with backoff.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass

from sluice import faults
from sluice.errors import StoreUnavailable
from sluice.formats.dfm import dfm_key
from sluice.store import ObjectInfo, Store


@dataclass(frozen=True)
class Place:
    """A key in a store, below the store's prefix for this role."""

    store: Store
    prefix: str

    def full(self, key: str) -> str:
        return f"{self.prefix.rstrip('/')}/{key}" if self.prefix else key


@dataclass(frozen=True)
class Moved:
    """Where a file ended: its key (relative to the destination's prefix) and, when a
    different object already held the planned key, that planned key."""

    key: str
    kept_beside: str | None = None
    already: bool = False


def digest(store: Store, key: str) -> str:
    sha = hashlib.sha256()
    for piece in store.read(key):
        sha.update(piece)
    return sha.hexdigest()


def same_content(src: Place, src_info: ObjectInfo, dst: Place, dst_info: ObjectInfo) -> bool:
    if src_info.size != dst_info.size:
        return False
    if src.store is dst.store and src_info.etag and src_info.etag == dst_info.etag:
        return True
    return digest(src.store, src_info.key) == digest(dst.store, dst_info.key)


def beside(key: str, version: str) -> str:
    """A distinct name next to `key` for another version of it."""
    folder, name = posixpath.split(key)
    tag = hashlib.sha256(version.encode()).hexdigest()[:12]
    stem, dot, ext = name.partition(".")
    renamed = f"{stem}.{tag}{dot}{ext}"
    return f"{folder}/{renamed}" if folder else renamed


def _copy(src: Place, src_key: str, dst: Place, dst_key: str) -> None:
    if src.store is dst.store or src.store.url == dst.store.url:
        dst.store.copy(src.full(src_key), dst.full(dst_key))
    else:
        dst.store.put(dst.full(dst_key), src.store.read(src.full(src_key)))


def move_one(
    src: Place, key: str, dst: Place, dst_key: str, *, required: bool = True
) -> Moved | None:
    """Move `key` of `src` to `dst_key` of `dst`; None if neither exists and not `required`."""
    src_info = src.store.find(src.full(key))
    dst_info = dst.store.find(dst.full(dst_key))
    if src_info is None:
        if dst_info is not None:
            return Moved(dst_key, already=True)
        if not required:
            return None
        raise StoreUnavailable(
            f"{src.store.uri(src.full(key))} is gone and {dst.store.uri(dst.full(dst_key))} "
            "does not exist: the move's outcome is unknown; retrying"
        )
    kept = None
    target = dst_key
    if dst_info is not None:
        if same_content(src, src_info, dst, dst_info):
            src.store.delete(src.full(key))
            return Moved(dst_key, already=True)
        kept, target = dst_key, beside(dst_key, src_info.version)
        other = dst.store.find(dst.full(target))
        if other is not None and same_content(src, src_info, dst, other):
            src.store.delete(src.full(key))
            return Moved(target, kept_beside=kept, already=True)
    _copy(src, key, dst, target)
    faults.pause("move")
    src.store.delete(src.full(key))
    return Moved(target, kept_beside=kept)


def move_with_dfm(src: Place, key: str, dst: Place, dst_key: str, *, dfm: bool) -> Moved:
    """Move a data file and (when `dfm`) its ``.dfm`` sibling, which follows the data file's
    final name (beside a different object too)."""
    moved = move_one(src, key, dst, dst_key)
    assert moved is not None
    if dfm:
        move_one(src, dfm_key(key), dst, dfm_key(moved.key), required=False)
    return moved
