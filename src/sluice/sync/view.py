"""One listing of a prefix, matched in memory.

A sync lists each top-level prefix (a dataset) once — one request per listing page — and every
finder then works on that listing: sub-folders, globs, file sizes summed under a prefix. Metadata
documents are fetched once each (several at a time) and cached.

A document that is listed but cannot be read or parsed raises `SyncError`: the caller must
treat its scope as failed, never as empty, so nothing is deleted because of a read error.
Parsing is bounded (`parse_json`): whatever the bytes, it returns a value or says why not.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sluice.errors import ConfigError, SluiceError, TerminalError, TransientError
from sluice.store import ObjectInfo, Store
from sluice.sync.fetcher import Fetcher, Order

#: Metadata documents fetched at once, by default: a bounded pool keeps a store (and the
#: process) from being flooded, while the latency of one request no longer adds up per document.
DEFAULT_CONCURRENCY = 8
#: Keys of a listing handed on at a time while it goes on (`BucketView.list_ahead`).
LIST_STRETCH = 100
#: How deep arrays and objects may nest in a document. Metadata nests a handful of levels;
#: the bound keeps the parser, and every later walk of the value (finders, getters, the JSON
#: encoder), far below Python's recursion limit, whose error would end the whole sync.
MAX_DEPTH = 512
#: The most digits an integer in a document may have: Python's own default limit on
#: converting digits to an int, fixed here so that a lifted limit cannot let in a
#: quadratic-time conversion. No column holds an integer nearly this long.
MAX_INTEGER_DIGITS = 4300

# A token of a JSON text's structure: a whole string (brackets inside it do not nest; an
# unterminated one runs to the end, so the scan never backtracks) or a bracket.
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.?[^"\\]*)*(?:"|\Z)|[\[\]{}]', re.DOTALL)


class SyncError(TerminalError):
    """A scope cannot be synced as it is (an unreadable document, a duplicate key...)."""


class DocumentError(ValueError):
    """Why a JSON text cannot be read (the caller names the object)."""


def parse_json(raw: bytes | str) -> Any:
    """The JSON value of `raw` (UTF-8 bytes, a byte order mark allowed, or text). Raises
    DocumentError, and nothing else, when it is not UTF-8, not JSON, nested deeper than
    MAX_DEPTH or holds an integer longer than MAX_INTEGER_DIGITS."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"is not UTF-8 text ({exc})") from exc
    text = raw.removeprefix("\ufeff")
    _check_depth(text)
    try:
        return json.loads(text, parse_int=_integer)
    except DocumentError:
        raise
    except json.JSONDecodeError as exc:
        raise DocumentError(f"is not valid JSON ({exc})") from exc
    except RecursionError:  # not reachable within MAX_DEPTH; kept so no input ends the sync
        raise DocumentError("is nested too deeply to be parsed") from None
    except Exception as exc:  # whatever else the parser raises is still the document's fault
        raise DocumentError(f"cannot be parsed ({type(exc).__name__}: {exc})") from exc


def _check_depth(text: str) -> None:
    """Refuse a text nesting arrays and objects deeper than MAX_DEPTH, before it is parsed:
    the parser recurses once per level."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # too few brackets to nest that deep: the usual case costs two scans in C
    depth = 0
    for token in _STRUCTURE.finditer(text):
        bracket = text[token.start()]
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise DocumentError(f"is nested deeper than {MAX_DEPTH} levels (arrays, objects)")
        elif bracket in "]}":
            depth -= 1


def _integer(digits: str) -> int:
    """An integer of a document (the parser's hook), refused before int() sees too many digits."""
    length = len(digits.lstrip("-"))
    if length > MAX_INTEGER_DIGITS:
        raise DocumentError(
            f"has an integer of {length} digits (at most {MAX_INTEGER_DIGITS} are read)"
        )
    return int(digits)


class BucketView:
    """What a sync sees of one bucket: listings, object sizes, JSON documents."""

    def __init__(
        self,
        store: Store,
        bucket: str,
        https_prefix: str,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        order: Order | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, not {concurrency}")
        self.store = store
        self.concurrency = concurrency
        #: The order in which documents queued ahead are fetched (the order the sync uses
        #: them in); without one, the order they were queued in.
        self.order = order
        #: The bucket name used in s3:// URLs (the folder name for a local folder).
        self.bucket = bucket
        self.https_prefix = https_prefix.rstrip("/")
        self._keys: list[str] = []
        self._sizes: dict[str, int] = {}
        self._versions: dict[str, str] = {}
        self._listed: list[str] = []
        self._json: dict[str, Any] = {}
        #: Why a document fetched ahead could not be read: raised when it is used, so that a
        #: bad document fails its scope (naming it) without being fetched twice.
        self._errors: dict[str, SyncError] = {}
        #: The listed version of every document read through this view (the sync records them).
        self._read: dict[str, str] = {}
        #: Folders whose objects finders must not see (partitions kept as they are).
        self._hidden: tuple[str, ...] = ()
        #: The folder whose values are being computed, and the folders whose values looked
        #: outside themselves: those cannot be kept as they are by a later sync.
        self._confined: str | None = None
        self.escaped: set[str] = set()
        #: The key each parsed document (a dict or list) came from, by identity: errors about
        #: a folder's item name the document that describes it.
        self._sources: dict[int, str] = {}
        #: Documents being fetched ahead, and the pool fetching them (see `prefetch`).
        self._pending: dict[str, Future[None]] = {}
        self._pool: Fetcher | None = None
        #: Requests in flight, whichever thread makes them: at most `concurrency` (a document
        #: the sync needs that was not fetched ahead waits for a free one).
        self._slots = threading.BoundedSemaphore(concurrency)
        #: Documents asked for through `json`, in the order first asked (a dict as an
        #: ordered set): what the sync has used so far, whatever was fetched ahead.
        self._used: dict[str, None] = {}
        #: Listings started ahead of their use (`list_ahead`).
        self._listing: dict[str, Future[list[ObjectInfo]]] = {}
        self._lock = threading.Lock()

    # -- listings ---------------------------------------------------------------------------

    def list_ahead(self, prefix: str, then: Callable[[list[str]], None] | None = None) -> None:
        """Start listing `prefix` in the background (while the caller prepares tables, say);
        the listing is taken in, or its error raised, where the view first needs it. `then`
        is given the keys of each stretch of the listing as it comes, in the listing's thread
        (to queue their documents, which are then fetched while the listing goes on)."""
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        if prefix in self._listing or any(prefix.startswith(done) for done in self._listed):
            return

        def listing() -> list[ObjectInfo]:
            found: list[ObjectInfo] = []
            stretch: list[str] = []
            for info in self.store.list(prefix.rstrip("/")):
                # The version first: a document fetched before the listing is taken in
                # records the version listed.
                self._versions[info.key] = info.version
                found.append(info)
                stretch.append(info.key)
                if then is not None and len(stretch) >= LIST_STRETCH:
                    then(stretch)
                    stretch = []
            if then is not None and stretch:
                then(stretch)
            return found

        pool = ThreadPoolExecutor(1, thread_name_prefix="sluice-list")
        self._listing[prefix] = pool.submit(listing)
        pool.shutdown(wait=False)  # its one thread ends with the listing

    def list_prefix(self, prefix: str) -> None:
        """List everything below `prefix` (whole path segments) into the view, once."""
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        if any(prefix.startswith(done) for done in self._listed):
            return
        ahead = self._listing.pop(prefix, None)
        listing = ahead.result() if ahead is not None else self.store.list(prefix.rstrip("/"))
        for info in listing:
            if info.key not in self._sizes:
                bisect.insort(self._keys, info.key)
            self._sizes[info.key] = info.size
            self._versions[info.key] = info.version
        self._listed.append(prefix)

    def _ensure(self, prefix: str) -> None:
        if not any(prefix.startswith(done) for done in self._listed):
            folder = prefix[: prefix.rfind("/") + 1] if "/" in prefix else ""
            self.list_prefix(folder)

    def keys(self, prefix: str) -> list[str]:
        """Keys below `prefix` (a folder ending in ``/``, or any key prefix), sorted."""
        self._touch(prefix)
        self._ensure(prefix)
        start = bisect.bisect_left(self._keys, prefix)
        end = bisect.bisect_left(self._keys, prefix + "\U0010ffff")
        found = self._keys[start:end]
        if self._hidden:
            found = [key for key in found if not key.startswith(self._hidden)]
        return found

    def exists(self, key: str) -> bool:
        self._touch(key)
        self._ensure(key)
        return key in self._sizes and not (self._hidden and key.startswith(self._hidden))

    def size(self, key: str) -> int | None:
        self._touch(key)
        self._ensure(key)
        if self._hidden and key.startswith(self._hidden):
            return None
        return self._sizes.get(key)

    def version(self, key: str) -> str | None:
        """The listed version of `key` (None if the listing does not hold it)."""
        self._ensure(key)
        return self._versions.get(key)

    @contextlib.contextmanager
    def hiding(self, folders: Iterable[str]) -> Iterator[None]:
        """Within the block, the objects below `folders` are not seen (a finder looking for
        the partitions that must be read again skips those kept as they are)."""
        before = self._hidden
        self._hidden = tuple(sorted(set(folders)))
        try:
            yield
        finally:
            self._hidden = before

    @contextlib.contextmanager
    def confined(self, folder: str | None) -> Iterator[None]:
        """Within the block, values are computed for what lies below `folder`: a look at any
        key outside it is noted in `escaped` (such a folder's rows depend on more than its
        own objects)."""
        before = self._confined
        self._confined = folder
        try:
            yield
        finally:
            self._confined = before

    def _touch(self, key: str) -> None:
        if self._confined is not None and not key.startswith(self._confined):
            self.escaped.add(self._confined)

    def read_versions(self) -> dict[str, str]:
        """Every document read through this view, with its listed version."""
        with self._lock:
            return dict(self._read)

    def size_under(self, prefix: str) -> int:
        """Total size of the objects whose key starts with `prefix` (0 if there are none)."""
        return sum(self._sizes[key] for key in self.keys(prefix))

    def fingerprint(self, prefixes: Iterable[str], salt: str = "") -> str:
        """A digest of every object below `prefixes` and its version: it changes exactly when
        an object there is added, removed or replaced (and with `salt`, the sync's options)."""
        digest = hashlib.sha256(salt.encode())
        for prefix in sorted(set(prefixes)):
            for key in self.keys(prefix):
                digest.update(f"{key}\0{self._versions.get(key, '')}\0".encode())
        return digest.hexdigest()[:32]

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
        """The parsed JSON document at `key` (fetched once; if it is being fetched ahead,
        waited for)."""
        self._touch(key)
        with self._lock:
            if key not in self._used:
                self._used[key] = None
            pending = self._pending.get(key)
            if pending is None and self._pool is not None and not self._known(key):
                # Not queued: asked of the pool before anything queued, rather than fetched
                # here beside the pool's own fetches.
                pending = self._pending[key] = self._pool.submit(key, urgent=True)
        if pending is not None:
            pending.result()
        else:
            self._load(key)
        with self._lock:
            if key in self._json:
                return self._json[key]
            raise self._errors[key]

    def _known(self, key: str) -> bool:
        """Whether `key` was fetched (its value or its error is kept); under the lock."""
        return key in self._json or key in self._errors

    def _load(self, key: str) -> None:
        """Fetch and parse `key` unless that was done: its value, or why it cannot be read,
        is kept for `json` (a read of the listing's state only, so that it may run in any
        thread: no `_touch`)."""
        with self._lock:
            if key in self._json or key in self._errors:
                return
        try:
            document = self._fetch(key)
        except SyncError as exc:
            with self._lock:
                self._errors.setdefault(key, exc)
            return
        with self._lock:
            # Two threads may fetch a key at once: both keep the first value, so that a
            # document is one object (source_of goes by identity).
            document = self._json.setdefault(key, document)
            if isinstance(document, dict | list):
                self._sources[id(document)] = key

    def used(self) -> list[str]:
        """The documents asked for through `json`, in the order first asked."""
        with self._lock:
            return list(self._used)

    def source_of(self, document: Any) -> str | None:
        """The key of a document this view parsed (None for any other value)."""
        with self._lock:
            key = self._sources.get(id(document))
            return key if key is not None and self._json.get(key) is document else None

    def parse(self, key: str, raw: bytes | str) -> Any:
        """`raw`, the content of `key`, as JSON; SyncError naming the object if it is not."""
        try:
            return parse_json(raw)
        except DocumentError as exc:
            raise SyncError(f"{self.store.uri(key)}: {exc}; its scope is left unchanged") from exc

    def text(self, key: str) -> str:
        self._touch(key)
        self._note(key)
        try:
            with self._slots:
                raw = b"".join(self.store.read(key))
            return raw.decode("utf-8")
        except SluiceError as exc:
            raise SyncError(f"{self.store.uri(key)}: cannot be read: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise SyncError(f"{self.store.uri(key)}: not UTF-8 text ({exc})") from exc

    def prefetch(self, keys: Iterable[str]) -> None:
        """Fetch many documents ahead of their use, in `order`, `concurrency` at a time; a
        document that cannot be read or parsed keeps its error, raised (naming the object and
        why) when it is used.

        With a pool (concurrency above 1) this returns at once: the fetches go on while the
        caller parses, computes rows and writes them, and `json` waits only for a document
        that is not in yet. With concurrency 1 the documents are fetched here, one after the
        other, in the calling thread. The documents are the scope's, which the view keeps
        parsed anyway: what is queued is a list of keys, and at most `concurrency` requests
        are in flight."""
        with self._lock:
            wanted = [
                k
                for k in dict.fromkeys(keys)
                if k not in self._json and k not in self._errors and k not in self._pending
            ]
        if not wanted:
            return
        if self.concurrency == 1:
            for key in wanted:
                self._load(key)
            return
        with self._lock:
            if self._pool is None:
                self._pool = Fetcher(self._load, self.concurrency, self.order)
            for key in wanted:
                if key not in self._pending:
                    self._pending[key] = self._pool.submit(key)

    def settle(self) -> None:
        """Drop the fetches not started yet and wait for those in flight (the end of a
        scope: nothing keeps running behind it)."""
        with self._lock:
            pool, self._pool = self._pool, None
            self._pending.clear()
        if pool is not None:
            pool.close()

    def _note(self, key: str) -> None:
        version = self._versions.get(key, "")
        with self._lock:
            self._read[key] = version

    def _fetch(self, key: str) -> Any:
        self._note(key)
        uri = self.store.uri(key)
        try:
            with self._slots:
                raw = b"".join(self.store.read(key))
        except TransientError as exc:
            raise SyncError(
                f"{uri}: cannot be fetched ({exc}); its scope is left unchanged"
            ) from exc
        except SluiceError as exc:
            raise SyncError(f"{uri}: cannot be read ({exc}); its scope is left unchanged") from exc
        return self.parse(key, raw)

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
