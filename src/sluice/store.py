"""One facade over object stores: local folders, S3 (and S3-compatible servers) and GCS.

A `Store` is one bucket (or one local folder); keys are relative to it. `locate()` turns a URL
such as ``s3://bucket/some/prefix`` or ``/data/incoming`` into a store and a key prefix.

Errors are classified where they enter: a missing object or a changed version is `ObjectGone`
(terminal for that version), refused credentials are terminal, anything else from the network
is `StoreUnavailable` (transient).
"""

from __future__ import annotations

import builtins
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

import obstore
from obstore.exceptions import (
    InvalidPathError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import GCSStore, LocalStore, S3Store

from sluice import faults
from sluice.errors import BadInputError, ConfigError, ObjectGone, StoreUnavailable, TerminalError
from sluice.formats.compression import gunzip
from sluice.text import redact_secrets, visible

if TYPE_CHECKING:
    from obstore.store import ObjectStore


@dataclass(frozen=True)
class S3Options:
    """Options for ``s3://`` URLs. Credentials come from the usual ``AWS_*`` variables."""

    #: An S3-compatible endpoint (MinIO, moto, Ceph...). Empty means AWS itself.
    endpoint_url: str = ""
    region: str = "us-east-1"


log = logging.getLogger(__name__)

#: Bytes asked from the store per read; large enough to keep COPY fed, small enough for memory.
READ_CHUNK = 1 << 20
#: Bytes per part of a multipart upload (S3's minimum) and parts uploaded at once.
UPLOAD_PART = 5 << 20
UPLOAD_PARALLEL = 2


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing says about one object."""

    key: str
    size: int
    etag: str | None
    modified: datetime | None

    @property
    def version(self) -> str:
        """The identity of this version of the object: its etag, else size and modified time."""
        if self.etag:
            return self.etag
        stamp = self.modified.isoformat() if self.modified else "?"
        return f"{self.size}:{stamp}"

    @property
    def compressed(self) -> bool:
        return self.key.endswith(".gz")

    @classmethod
    def from_meta(cls, meta: Any) -> ObjectInfo:
        return cls(
            key=str(meta["path"]),
            size=int(meta["size"]),
            etag=meta.get("e_tag"),
            modified=meta.get("last_modified"),
        )


#: S3 returns at most this many keys per listing request.
LIST_PAGE = 1000


@dataclass
class Requests:
    """Requests a store was asked for, to prove that work scales with listing pages and
    metadata files rather than with directories."""

    lists: int = 0
    #: Objects returned by listings; with ``lists`` this gives the listing pages.
    listed: int = 0
    #: Listing pages: each listing costs at least one request, and one per LIST_PAGE keys.
    pages: int = 0
    gets: int = 0
    heads: int = 0
    puts: int = 0
    deletes: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Store:
    """One bucket or local folder."""

    def __init__(self, url: str, backend: ObjectStore, *, local_root: Path | None = None) -> None:
        #: The root URL, e.g. ``s3://bucket`` or ``file:///data/bucket``.
        self.url = url
        self._backend = backend
        self._local_root = local_root
        self.requests = Requests()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def uri(self, key: str) -> str:
        """The full URL of `key`, for messages (invisible characters escaped)."""
        return visible(f"{self.url.rstrip('/')}/{key}")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object below `prefix` (whole path segments), with size, etag and modified time."""
        self.requests.lists += 1
        count = 0
        try:
            if self._local_root is not None:
                for info in local_listing(self._local_root, prefix):
                    count += 1
                    yield info
                return
            for info in self._remote_listing(prefix):
                count += 1
                yield info
        except FileNotFoundError:
            return  # a local folder that does not exist yet holds no objects
        except Exception as exc:
            raise _classify(exc, self.uri(prefix)) from exc
        finally:
            self.requests.listed += count
            self.requests.pages += max(1, -(-count // LIST_PAGE))

    def _remote_listing(self, prefix: str) -> Iterator[ObjectInfo]:
        try:
            for batch in obstore.list(self._backend, prefix=prefix or None):
                for meta in batch:
                    yield ObjectInfo.from_meta(meta)
        except InvalidPathError as exc:
            # The library parses a whole listing page at once and cannot skip the key (nor
            # resume after it): the feed fails, naming the key, and the other feeds go on.
            bad = unlistable_key(exc)
            shown = f"'{visible(bad)}'" if bad is not None else "a key"
            raise StoreUnavailable(
                f"{self.uri(prefix)}: the listing holds {shown}, a key with a character the "
                "object-store library cannot handle (a control character, an empty or '..' "
                "segment); rename or move that object"
            ) from exc

    def list_page(
        self, prefix: str = "", *, start_after: str | None = None, limit: int = LIST_PAGE
    ) -> builtins.list[ObjectInfo]:
        """Up to `limit` objects below `prefix` whose keys sort after `start_after`, in key
        order (S3's ``StartAfter``): a listing resumable where the previous page stopped."""
        self.requests.lists += 1
        found: builtins.list[ObjectInfo] = []
        try:
            if self._local_root is not None:
                after = [
                    i
                    for i in local_listing(self._local_root, prefix)
                    if start_after is None or i.key > start_after
                ]
                found = sorted(after, key=lambda i: i.key)[:limit]
            else:
                for batch in obstore.list(self._backend, prefix=prefix or None, offset=start_after):
                    found += [ObjectInfo.from_meta(m) for m in batch]
                    if len(found) >= limit:
                        break
                found = sorted(found, key=lambda i: i.key)[:limit]
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise _classify(exc, self.uri(prefix)) from exc
        finally:
            self.requests.listed += len(found)
            self.requests.pages += max(1, -(-len(found) // LIST_PAGE))
        return found

    def find(self, key: str) -> ObjectInfo | None:
        """The object `key`, or None if there is none."""
        try:
            return self.head(key)
        except ObjectGone:
            return None

    def list_dirs(self, prefix: str = "") -> tuple[str, ...]:
        """The sub-folders directly below `prefix` (one delimited listing), as full prefixes
        ending in ``/``."""
        self.requests.lists += 1
        self.requests.pages += 1
        try:
            found = obstore.list_with_delimiter(self._backend, prefix or None)
        except FileNotFoundError:
            return ()
        except Exception as exc:
            raise _classify(exc, self.uri(prefix)) from exc
        return tuple(sorted(f"{p.rstrip('/')}/" for p in found["common_prefixes"]))

    def head(self, key: str) -> ObjectInfo:
        self.requests.heads += 1
        if self._local_root is not None:
            return self._head_local(key)
        try:
            return ObjectInfo.from_meta(obstore.head(self._backend, key))
        except Exception as exc:
            raise _classify(exc, self.uri(key)) from exc

    def _head_local(self, key: str) -> ObjectInfo:
        assert self._local_root is not None
        path = self._inside(key)
        try:
            return local_info(key, path.stat())
        except FileNotFoundError:
            raise ObjectGone(
                f"{self.uri(key)} does not exist (deleted since it was listed?)"
            ) from None
        except OSError as exc:
            raise StoreUnavailable(f"{self.uri(key)}: {exc.strerror or exc}") from exc

    def _inside(self, key: str) -> Path:
        """The file of `key`, refused if it (or a link on its way) leads out of the root."""
        assert self._local_root is not None
        path = self._local_root / key
        resolved = path.resolve()
        if not resolved.is_relative_to(self._local_root.resolve()):
            raise BadInputError(
                "is a link to a file outside the bucket's folder; sluice does not follow "
                "links out of a local bucket",
                obj=self.uri(key),
            )
        return path

    def read(
        self, key: str, *, etag: str | None = None, chunk_size: int = READ_CHUNK
    ) -> Iterator[bytes]:
        """Stream the raw bytes of `key`. With `etag`, fail with ObjectGone if the object is no
        longer that version, so a load always reads exactly the version it names."""
        self.requests.gets += 1
        if faults.unreadable(key):
            raise StoreUnavailable(f"{self.uri(key)}: cannot be fetched (injected fault)")
        if self._local_root is not None:
            yield from self._read_local(key, etag, chunk_size)
            return
        options: dict[str, Any] = {"if_match": etag} if etag else {}
        try:
            result = obstore.get(self._backend, key, options=options)  # type: ignore[arg-type]
            for chunk in result.stream(min_chunk_size=chunk_size):
                yield bytes(chunk)
        except Exception as exc:
            raise _classify(exc, self.uri(key)) from exc

    def _read_local(self, key: str, etag: str | None, chunk_size: int) -> Iterator[bytes]:
        """Local files are read with plain reads (several times faster than the object-store
        stream). The version is checked before reading; the open file keeps reading that
        version even if the name is replaced meanwhile, and an in-place rewrite during the read
        is detected afterwards."""
        assert self._local_root is not None
        if etag is not None and self.head(key).etag != etag:
            raise ObjectGone(
                f"{self.uri(key)} changed since it was listed (a newer version replaced it)"
            )
        path = self._inside(key)
        try:
            with path.open("rb") as fh:
                before = os.fstat(fh.fileno())
                while piece := fh.read(chunk_size):
                    yield piece
                after = os.fstat(fh.fileno())
        except FileNotFoundError:
            raise ObjectGone(
                f"{self.uri(key)} does not exist (deleted since it was listed?)"
            ) from None
        except OSError as exc:
            raise StoreUnavailable(f"{self.uri(key)}: {exc}") from exc
        if (before.st_mtime_ns, before.st_size) != (after.st_mtime_ns, after.st_size):
            raise ObjectGone(f"{self.uri(key)} was rewritten while it was being read")

    def open(self, key: str, *, etag: str | None = None) -> Iterator[bytes]:
        """Stream the bytes of `key`, decompressed when the key ends in ``.gz``."""
        raw = self.read(key, etag=etag)
        return gunzip(raw, self.uri(key)) if key.endswith(".gz") else raw

    def put(self, key: str, data: bytes | Iterable[bytes]) -> ObjectInfo:
        """Write `data` (bytes, or an iterable of chunks streamed as a multipart upload)."""
        self.requests.puts += 1
        try:
            # Parts of S3's minimum size, two in flight: an upload holds about 10 MB whatever
            # the object's size (the defaults, twelve parts in flight, held 35-50 MB).
            obstore.put(
                self._backend, key, data, chunk_size=UPLOAD_PART, max_concurrency=UPLOAD_PARALLEL
            )
        except Exception as exc:
            raise _classify(exc, self.uri(key)) from exc
        return self.head(key)

    def copy(self, src: str, dst: str) -> None:
        """Copy `src` to `dst` inside this store (server-side on an object store)."""
        self.requests.puts += 1
        if self._local_root is not None:
            self._inside(dst).parent.mkdir(parents=True, exist_ok=True)
        try:
            obstore.copy(self._backend, src, dst)
        except Exception as exc:
            raise _classify(exc, self.uri(src)) from exc

    def move(self, src: str, dst: str) -> None:
        try:
            obstore.rename(self._backend, src, dst)
        except Exception as exc:
            raise _classify(exc, self.uri(src)) from exc

    def delete(self, key: str) -> None:
        self.requests.deletes += 1
        try:
            obstore.delete(self._backend, key)
        except Exception as exc:
            raise _classify(exc, self.uri(key)) from exc


_BAD_PATH = re.compile(r'path: "((?:[^"\\]|\\.)*)"')
_RUST_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


def unlistable_key(exc: Exception) -> str | None:
    """The key an invalid-path error of the object-store library is about (it quotes the key
    as a Rust string in its debug text), or None."""
    match = _BAD_PATH.search(str(exc))
    if match is None:
        return None
    text, out, i = match.group(1), [], 0
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out.append(ch)
            i += 1
        elif text.startswith("u{", i + 1):
            end = text.index("}", i)
            out.append(chr(int(text[i + 3 : end], 16)))
            i = end + 1
        else:
            out.append(_RUST_ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
    return "".join(out).lstrip("/")


def local_listing(root: Path, prefix: str = "") -> Iterator[ObjectInfo]:
    """The files below `prefix` of a local folder, sorted, as `ObjectInfo` (the same etag as
    the object-store library gives local files). Any name is listed as it is — a key with a tab
    or a newline is its own object's problem, not the listing's. Links to files inside the
    folder are listed; links out of it, and links to folders, are not followed."""
    base = root / prefix if prefix else root
    if not base.is_dir():
        if base.exists() or base.is_symlink():
            return
        raise FileNotFoundError(base)
    top = root.resolve()
    cut = len(os.fspath(root).rstrip(os.sep)) + 1
    # os.scandir, not pathlib: a listing of many thousand files spends its time in the path
    # objects otherwise (a scheduler tick over a bucket of 10,000 known files, say).
    for entry in _files_below(os.fspath(base)):
        try:
            stat = entry.stat()
        except OSError:
            continue  # removed meanwhile, or a dangling link
        if not S_ISREG(stat.st_mode):
            continue  # a link to a folder
        key = entry.path[cut:].replace(os.sep, "/")
        if entry.is_symlink() and not Path(entry.path).resolve().is_relative_to(top):
            log.warning("skipping %s: a link out of the bucket's folder", visible(key))
            continue
        yield local_info(key, stat)


def _files_below(folder: str) -> Iterator[os.DirEntry[str]]:
    """The entries below `folder` that are not folders (links to folders included), each
    folder's files by name before its subfolders by name; links are not followed down."""
    try:
        with os.scandir(folder) as found:
            entries = sorted(found, key=lambda e: e.name)
    except OSError:
        return  # removed meanwhile, or not readable: as os.walk, list what can be listed
    subfolders = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            subfolders.append(entry.path)
        else:
            yield entry
    for sub in subfolders:
        yield from _files_below(sub)


def local_info(key: str, stat: os.stat_result) -> ObjectInfo:
    micros = stat.st_mtime_ns // 1000
    etag = f'"{stat.st_ino:x}-{micros:x}-{stat.st_size:x}"'
    modified = datetime.fromtimestamp(micros / 1e6, tz=UTC).replace(microsecond=micros % 1_000_000)
    return ObjectInfo(key=key, size=stat.st_size, etag=etag, modified=modified)


def locate(url: str, s3: S3Options | None = None, *, create: bool = False) -> tuple[Store, str]:
    """Split a location into the store that holds it and the key prefix inside that store.

    ``s3://bucket/a/b`` → (store ``s3://bucket``, ``"a/b"``); a plain path or ``file://`` URL is
    a store of its own rooted at that folder, with an empty prefix. A missing folder is created
    when `create` is set (a place to write), else it is an error: a mistyped source must not
    read as an empty one.
    """
    if url.startswith("s3://"):
        bucket, _, prefix = url[5:].partition("/")
        return _s3(bucket, s3 or S3Options()), prefix
    if url.startswith("gs://"):
        bucket, _, prefix = url[5:].partition("/")
        if not bucket:
            raise ConfigError(f"{url!r} names no bucket")
        return Store(f"gs://{bucket}", GCSStore(bucket)), prefix
    if "://" in url and not url.startswith("file://"):
        raise ConfigError(f"unsupported store URL {url!r}: use a folder, s3:// or gs://")
    path = Path(url[7:] if url.startswith("file://") else url).expanduser().resolve()
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{url}: cannot create this folder: {exc.strerror or exc}") from exc
    elif not path.is_dir():
        reason = "is not a folder" if path.exists() else "does not exist"
        raise ConfigError(f"{url}: {reason}")
    return Store(path.as_uri(), LocalStore(str(path)), local_root=path), ""


def open_store(root_url: str, s3: S3Options | None = None) -> Store:
    """The store whose root URL is `root_url` (as recorded on a ledger row)."""
    store, prefix = locate(root_url, s3)
    if prefix:
        raise ConfigError(f"{root_url!r} is not a store root")
    return store


def _s3(bucket: str, options: S3Options) -> Store:
    if not bucket:
        raise ConfigError("an s3:// URL must name a bucket")
    config: dict[str, Any] = {"region": options.region}
    client: dict[str, Any] = {}
    if options.endpoint_url:
        config["endpoint"] = options.endpoint_url
        client["allow_http"] = options.endpoint_url.startswith("http://")
    backend = S3Store(bucket, config=config, client_options=client)  # type: ignore[arg-type]
    return Store(f"s3://{bucket}", backend)


def _classify(exc: Exception, where: str) -> Exception:
    """Turn a store exception into a sluice error, keeping only the first line of its text."""
    if isinstance(exc, TerminalError | StoreUnavailable):
        return exc
    text = redact_secrets(str(exc).strip())
    first_line = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, PreconditionError):
        return ObjectGone(f"{where} changed since it was listed (a newer version replaced it)")
    if isinstance(exc, NotFoundError | FileNotFoundError):
        return ObjectGone(f"{where} does not exist (deleted since it was listed?)")
    if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
        return ConfigError(f"{where}: access refused: {first_line}")
    if _INSTANCE_METADATA in first_line and not os.environ.get("AWS_ACCESS_KEY_ID"):
        # With no credentials in the environment the S3 client falls back to the cloud
        # instance's metadata service; off a cloud instance that can only fail.
        return ConfigError(f"{where}: no S3 credentials: {NO_CREDENTIALS_HINT} ({first_line})")
    return StoreUnavailable(f"{where}: {first_line}")


#: The token path of the instance metadata service, in the error when it was asked.
_INSTANCE_METADATA = "/latest/api/token"
NO_CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_SKIP_SIGNATURE=true for a public "
    "bucket"
)
