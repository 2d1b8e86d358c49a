"""One listing of a prefix, matched in memory.

A sync lists each top-level prefix (a dataset) once — one request per listing page — and every
finder then works on that listing: sub-folders, globs, file sizes summed under a prefix. Metadata
documents are fetched once each (several at a time) and cached.

A document that is listed but cannot be read or parsed raises `SyncError`: the caller must
treat its scope as failed, never as empty, so nothing is deleted because of a read error.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sluice.errors import SluiceError, TerminalError, TransientError
from sluice.store import Store

#: Metadata documents fetched at once.
FETCH_THREADS = 16


class SyncError(TerminalError):
    """A scope cannot be synced as it is (an unreadable document, a duplicate key...)."""


class BucketView:
    """What a sync sees of one bucket: listings, object sizes, JSON documents."""

    def __init__(self, store: Store, bucket: str, https_prefix: str) -> None:
        self.store = store
        #: The bucket name used in s3:// URLs (the folder name for a local folder).
        self.bucket = bucket
        self.https_prefix = https_prefix.rstrip("/")
        self._keys: list[str] = []
        self._sizes: dict[str, int] = {}
        self._listed: list[str] = []
        self._json: dict[str, Any] = {}
        self._lock = threading.Lock()

    # -- listings ---------------------------------------------------------------------------

    def list_prefix(self, prefix: str) -> None:
        """List everything below `prefix` (whole path segments) into the view, once."""
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        if any(prefix.startswith(done) for done in self._listed):
            return
        for info in self.store.list(prefix.rstrip("/")):
            if info.key not in self._sizes:
                bisect.insort(self._keys, info.key)
            self._sizes[info.key] = info.size
        self._listed.append(prefix)

    def _ensure(self, prefix: str) -> None:
        if not any(prefix.startswith(done) for done in self._listed):
            folder = prefix[: prefix.rfind("/") + 1] if "/" in prefix else ""
            self.list_prefix(folder)

    def keys(self, prefix: str) -> list[str]:
        """Keys below `prefix` (a folder ending in ``/``, or any key prefix), sorted."""
        self._ensure(prefix)
        start = bisect.bisect_left(self._keys, prefix)
        end = bisect.bisect_left(self._keys, prefix + "\U0010ffff")
        return self._keys[start:end]

    def exists(self, key: str) -> bool:
        self._ensure(key)
        return key in self._sizes

    def size(self, key: str) -> int | None:
        self._ensure(key)
        return self._sizes.get(key)

    def size_under(self, prefix: str) -> int:
        """Total size of the objects whose key starts with `prefix` (0 if there are none)."""
        return sum(self._sizes[key] for key in self.keys(prefix))

    def folders(self, prefix: str) -> list[str]:
        """Folders directly below `prefix` (ending in ``/``), from the listing."""
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        found: list[str] = []
        for key in self.keys(prefix):
            rest = key[len(prefix) :]
            if "/" in rest:
                folder = prefix + rest.split("/", 1)[0] + "/"
                if not found or found[-1] != folder:
                    found.append(folder)
        return sorted(set(found))

    def glob(self, prefix: str, pattern: str) -> list[str]:
        """Keys below `prefix` whose remaining path matches `pattern`, where ``*`` and ``?``
        never cross a ``/`` (like a shell glob)."""
        regex = _glob_regex(pattern)
        base = prefix.rstrip("/") + "/" if prefix else ""
        return [key for key in self.keys(base) if regex.fullmatch(key[len(base) :])]

    # -- documents --------------------------------------------------------------------------

    def json(self, key: str) -> Any:
        """The parsed JSON document at `key` (fetched once)."""
        with self._lock:
            if key in self._json:
                return self._json[key]
        document = self._fetch(key)
        with self._lock:
            self._json[key] = document
        return document

    def text(self, key: str) -> str:
        try:
            return b"".join(self.store.read(key)).decode("utf-8")
        except SluiceError as exc:
            raise SyncError(f"{self.store.uri(key)}: cannot be read: {exc}") from None
        except UnicodeDecodeError as exc:
            raise SyncError(f"{self.store.uri(key)}: not UTF-8 text ({exc})") from None

    def prefetch(self, keys: Iterable[str]) -> None:
        """Fetch many documents at once; errors surface when a document is used."""
        wanted = [k for k in keys if k not in self._json]
        if not wanted:
            return

        def fetch(key: str) -> None:
            # An error is raised again, with its message, by the finder that needs the document.
            with contextlib.suppress(SyncError):
                self.json(key)

        with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
            list(pool.map(fetch, wanted))

    def _fetch(self, key: str) -> Any:
        uri = self.store.uri(key)
        try:
            raw = b"".join(self.store.read(key))
        except TransientError as exc:
            raise SyncError(
                f"{uri}: cannot be fetched ({exc}); its scope is left unchanged"
            ) from None
        except SluiceError as exc:
            raise SyncError(f"{uri}: cannot be read ({exc}); its scope is left unchanged") from None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SyncError(
                f"{uri}: is not valid JSON ({exc}); its scope is left unchanged"
            ) from None

    # -- URLs -------------------------------------------------------------------------------

    def s3_url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.relative(key)}"

    def https_url(self, key: str) -> str:
        return f"{self.https_prefix}/{self.relative(key)}"

    def relative(self, key: str) -> str:
        """Keys inside metadata sometimes start with the bucket name; it is dropped."""
        key = key.lstrip("/")
        return key[len(self.bucket) + 1 :] if key.startswith(self.bucket + "/") else key


_GLOBS: dict[str, re.Pattern[str]] = {}


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A shell glob as a regex: ``*`` and ``?`` never cross a ``/``, ``[...]`` is a class."""
    if pattern in _GLOBS:
        return _GLOBS[pattern]
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        end = pattern.find("]", i + 2) if ch == "[" else -1
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif end > 0:
            body = pattern[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    _GLOBS[pattern] = re.compile("".join(out), re.DOTALL)
    return _GLOBS[pattern]


def first(items: Iterable[str], predicate: Callable[[str], bool] | None = None) -> str | None:
    for item in items:
        if predicate is None or predicate(item):
            return item
    return None
