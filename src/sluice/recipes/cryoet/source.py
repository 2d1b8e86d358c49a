"""What the CryoET recipe declares about a portal bucket: its import flags, its scopes (the
depositions named, then each dataset folder) and the passes that sync one scope. The one-shot
``cryoet load`` (`sluice.recipes.cryoet.api`) and the runtime's sync feeds
(`sluice.sync.flow`) both use these.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

from sluice.errors import ConfigError
from sluice.recipes.cryoet.tree import TREE
from sluice.store import S3Options, Store, locate
from sluice.sync import BucketView, Item, Pass, Syncer, SyncError
from sluice.sync.finders import dig
from sluice.sync.flow import Scope
from sluice.sync.view import DEFAULT_CONCURRENCY

DEFAULT_HTTPS_PREFIX = "https://files.cryoetdataportal.cziscience.com"
DEPOSITIONS = "depositions_metadata"

#: Import flags, as in the original command (``--import-<flag with dashes>``).
FLAGS = (
    "depositions",
    "dataset_authors",
    "dataset_funding",
    "runs",
    "frame_acquisition_files",
    "frames",
    "gains",
    "tiltseries",
    "alignments",
    "identified_objects",
    "tomogram_voxel_spacing",
    "tomograms",
    "tomogram_authors",
    "annotations",
    "annotation_authors",
    "annotation_method_links",
)


def resolve_flags(flags: Iterable[str], *, everything: bool = False) -> frozenset[str]:
    """The flags in force after the original's implication rules (in its order), plus one
    fix: identified objects need their runs, so they imply ``runs`` too."""
    on = set(FLAGS) if everything else set(flags)
    unknown = on - set(FLAGS)
    if unknown:
        raise ConfigError(f"unknown import flag {sorted(unknown)[0]!r}")
    if on & {"annotation_authors", "annotation_method_links"}:
        on.add("annotations")
    if "tomogram_authors" in on:
        on.add("tomograms")
    if on & {"annotations", "tomograms"}:
        on.add("tomogram_voxel_spacing")
    if "alignments" in on:
        on.add("tiltseries")
    if "frames" in on:
        on.add("frame_acquisition_files")
    if on & {
        "alignments",
        "gains",
        "frame_acquisition_files",
        "tiltseries",
        "tomogram_voxel_spacing",
        "identified_objects",
    }:
        on.add("runs")
    return frozenset(on)


def enabled_entities(flags: Collection[str]) -> set[str]:
    """Entities synced below a dataset when `flags` are on (the dataset itself always)."""
    return {e.name for e in TREE.entities if not e.flag or e.flag in flags}


DEPOSITION_CHILDREN = ("deposition_author", "deposition_type")


def is_document(key: str) -> bool:
    """Whether `key` is a metadata document (JSON, and not a chunk of an OME-Zarr folder)."""
    return key.endswith(".json") and ".zarr/" not in key


#: Document names in the order a dataset's sync uses them (the tree's order). They are fetched
#: ahead in that order, so that each entity finds its documents in while later ones still come;
#: the others (annotations) come last.
FETCH_ORDER = (
    "deposition_metadata.json",
    "dataset_metadata.json",
    "run_metadata.json",
    "frames_metadata.json",
    "tiltseries_metadata.json",
    "alignment_metadata.json",
    "identified_objects.json",
    "tomogram_metadata.json",
)


def fetch_order(key: str) -> tuple[int, str]:
    """Where `key` comes among the documents fetched ahead (see FETCH_ORDER)."""
    name = key.rsplit("/", 1)[-1]
    return (FETCH_ORDER.index(name) if name in FETCH_ORDER else len(FETCH_ORDER)), key


def list_ahead(
    syncer: Syncer, view: BucketView, s3_prefix: str, filters: Sequence[str] = ()
) -> None:
    """Start listing the dataset folder that `s3_prefix` names (if it names one), so that the
    listing goes on while the tables are made ready. When the dataset was never synced (or
    the sync is full), every document must be read: with a pool, each is queued as the
    listing names it, and fetched while the listing goes on."""
    prefix = s3_prefix.strip().lstrip("/")
    if not prefix or prefix.endswith("/"):
        return
    folder = prefix + "/"
    wanted = {f.strip().strip("/") for f in filters}
    if view.concurrency == 1 or (wanted and prefix.rsplit("/", 1)[-1] not in wanted):
        # One document at a time: each is fetched in turn when the sync comes to it.
        view.list_ahead(folder)
        return
    # The listing starts first; whether its documents are queued is known a moment later.
    read_all: Future[bool] = Future()

    def then(keys: list[str]) -> None:
        if read_all.result():
            view.prefetch(k for k in keys if is_document(k))

    view.list_ahead(folder, then)
    try:
        read_all.set_result(syncer.full or syncer.never_synced(folder))
    except BaseException:
        read_all.set_result(False)
        raise


def dataset_passes(syncer: Syncer, view: BucketView, folder: str) -> list[Pass]:
    """The pass that syncs one dataset folder: the dataset and everything enabled below it,
    importing first, as the pass goes, the depositions its documents name that the database
    lacks.

    Only the documents that changed since the last sync are read here (all of them, several
    at a time, for a first or full sync): one that did not change named depositions that were
    imported then, and depositions are never deleted by a sync."""
    changed = syncer.changed_documents(folder, (k for k in view.keys(folder) if is_document(k)))
    view.prefetch(sorted(changed, key=fetch_order))
    dataset = Item(path=folder, data=view.json(folder + "dataset_metadata.json"))
    needs = MissingDepositions(syncer, view, changed, dataset, DEPOSITION_CHILDREN)
    return [Pass("dataset", [dataset], needs=needs)]


def check_depositions(view: BucketView, deposition_ids: Sequence[int]) -> None:
    """Refuse, from the listing alone, a named deposition that has no folder: a usage error
    of the whole command, not a failed scope."""
    for deposition in deposition_ids:
        marker = f"{DEPOSITIONS}/{int(deposition)}/deposition_metadata.json"
        if not view.exists(marker):
            raise ConfigError(f"deposition {deposition}: {view.store.uri(marker)} does not exist")


def deposition_passes(view: BucketView, deposition_ids: Sequence[int]) -> list[Pass]:
    items = [_deposition_item(view, dep) for dep in deposition_ids]
    return [Pass("deposition", items, DEPOSITION_CHILDREN)]


def deposition_label(deposition_ids: Sequence[int]) -> str:
    return "depositions " + ", ".join(str(d) for d in deposition_ids)


class MissingDepositions:
    """What a dataset's pass needs first (`Pass.needs`): the depositions that `documents` (the
    dataset's documents that changed) refer to and that the database does not have yet (one
    already there is never overwritten by this). Asked as the pass goes, it looks at the
    documents used so far, so that the pass does not wait for every document before its first
    row; at the end of the pass, at all of them: the depositions imported are the same."""

    def __init__(
        self,
        syncer: Syncer,
        view: BucketView,
        documents: Sequence[str],
        dataset: Item,
        children: Collection[str],
    ) -> None:
        self.syncer = syncer
        self.view = view
        self.documents = list(documents)
        self._changed = frozenset(documents)
        self.dataset = dataset
        self.children = children
        #: Documents looked at, and depositions found there to exist or imported.
        self._seen: set[str] = set()
        self._known: set[int] = set()

    def __call__(self, final: bool) -> list[Pass]:
        view = self.view
        keys = self.documents if final else [k for k in view.used() if k in self._changed]
        referenced: dict[int, str] = {}
        for key in keys:
            if key in self._seen:
                continue
            self._seen.add(key)
            value = dig(view.json(key), "deposition_id")
            if isinstance(value, int) and not isinstance(value, bool):
                referenced.setdefault(value, key)
        dataset_deposition = dig(self.dataset.data, "deposition_id")
        if isinstance(dataset_deposition, int):
            referenced.setdefault(dataset_deposition, self.dataset.path + "dataset_metadata.json")
        wanted = {d: k for d, k in referenced.items() if d not in self._known}
        if not wanted:
            return []
        missing = sorted(set(wanted) - self.syncer.existing_ids("deposition", wanted))
        self._known.update(wanted)
        if not missing:
            return []
        items = []
        for deposition in missing:
            try:
                items.append(_deposition_item(view, deposition))
            except ConfigError:
                raise SyncError(
                    f"deposition {deposition} (named by {view.store.uri(wanted[deposition])}) "
                    f"is not in the database and {DEPOSITIONS}/{deposition}/ has no "
                    "deposition_metadata.json"
                ) from None
        return [Pass("deposition", items, self.children)]


def _deposition_item(view: BucketView, deposition: int) -> Item:
    """The deposition folder of exactly this id (``300`` never selects ``3001``)."""
    folder = f"{DEPOSITIONS}/{int(deposition)}/"
    marker = folder + "deposition_metadata.json"
    if not view.exists(marker):
        raise ConfigError(f"deposition {deposition}: {view.store.uri(marker)} does not exist")
    return Item(path=folder, data=view.json(marker))


def dataset_folders(view: BucketView, s3_prefix: str, filters: Sequence[str]) -> list[str]:
    """Dataset folders under the prefix, matching whole path segments: ``1000`` selects the
    folder ``1000/`` and never ``10001/``; ``a/`` (or nothing) selects every folder in it."""
    prefix = s3_prefix.strip().lstrip("/")
    if prefix and not prefix.endswith("/"):
        candidates = [prefix + "/"]
    else:
        candidates = list(view.store.list_dirs(prefix.rstrip("/")))
    wanted = {f.strip().strip("/") for f in filters}
    found = []
    for folder in candidates:
        if wanted and folder.rstrip("/").rsplit("/", 1)[-1] not in wanted:
            continue
        if view.exists(folder + "dataset_metadata.json"):
            found.append(folder)
    return found


def open_bucket(bucket: str, endpoint_url: str | None, s3: S3Options) -> tuple[Store, str]:
    """The store and the bucket name used in s3:// URLs. A local folder stands for a bucket
    of the folder's name, so the same tree gives the same rows from a folder and from S3."""
    if not bucket.strip():
        raise ConfigError("name a bucket (an S3 bucket name or s3:// URL) or a local folder")
    if bucket.startswith("s3://"):
        url = bucket
    elif "://" in bucket or "/" in bucket or Path(bucket).is_dir():
        store, prefix = locate(bucket, s3)
        if prefix:
            raise ConfigError(f"{bucket!r}: name a bucket, not a prefix (use --s3-prefix)")
        name = Path(bucket.removeprefix("file://")).resolve().name
        return store, name
    else:
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
            raise ConfigError(f"{bucket!r} is neither an S3 bucket name nor a folder")
        url = f"s3://{bucket}"
    options = replace(s3, endpoint_url=endpoint_url) if endpoint_url else s3
    store, prefix = locate(url, options)
    if prefix:
        raise ConfigError(f"{bucket!r}: name a bucket, not a prefix (use --s3-prefix)")
    return store, url[5:]


#: The options of a CryoET sync feed (``[syncs.NAME]`` with ``recipe = "cryoet"``).
OPTIONS = {
    "bucket": str,
    "https_prefix": str,
    "endpoint_url": str,
    "s3_prefix": str,
    "deposition_ids": list,
    "flags": list,
    "everything": bool,
    "filter_datasets": list,
    "full": bool,
    "concurrency": int,
}


class CryoetSync:
    """A portal bucket as a sync feed: its scopes are the depositions named, then each
    dataset folder below ``s3_prefix``; each is synced as ``cryoet load`` syncs it."""

    tree = TREE

    def __init__(self, options: Mapping[str, Any], s3: S3Options) -> None:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(
                f"cryoet sync: unknown option {unknown[0]!r} (known: {', '.join(sorted(OPTIONS))})"
            )
        for name, kind in OPTIONS.items():
            if name in options and not isinstance(options[name], kind):
                raise ConfigError(f"cryoet sync: {name} must be {kind.__name__}")
        if not options.get("bucket"):
            raise ConfigError("cryoet sync: 'bucket' is required (a bucket, s3:// URL or folder)")
        self.options = dict(options)
        self.https_prefix = str(options.get("https_prefix") or DEFAULT_HTTPS_PREFIX)
        self.store, self.bucket = open_bucket(
            str(options["bucket"]), options.get("endpoint_url") or None, s3
        )
        self.on = resolve_flags(
            [str(f) for f in options.get("flags", ())], everything=bool(options.get("everything"))
        )
        self.deposition_ids = tuple(int(d) for d in options.get("deposition_ids", ()))
        self.concurrency = int(options.get("concurrency", DEFAULT_CONCURRENCY))
        if self.concurrency < 1:
            raise ConfigError("cryoet sync: concurrency must be at least 1")
        self._full = bool(options.get("full", False))

    @property
    def full(self) -> bool:
        return self._full

    def is_document(self, key: str) -> bool:
        return is_document(key)

    @property
    def store_url(self) -> str:
        return self.store.url

    def view(self) -> BucketView:
        return BucketView(
            self.store,
            self.bucket,
            self.https_prefix,
            concurrency=self.concurrency,
            order=fetch_order,
        )

    def enabled(self) -> set[str]:
        return enabled_entities(self.on)

    def scopes(self, view: BucketView) -> list[Scope]:
        found = []
        if "depositions" in self.on and self.deposition_ids:
            folders = tuple(f"{DEPOSITIONS}/{d}/" for d in self.deposition_ids)
            found.append(Scope(DEPOSITION_SCOPE, deposition_label(self.deposition_ids), folders))
        prefix = str(self.options.get("s3_prefix", ""))
        filters = [str(f) for f in self.options.get("filter_datasets", ())]
        for folder in dataset_folders(view, prefix, filters):
            found.append(Scope(folder, f"dataset {folder.rstrip('/')}", (folder,)))
        return found

    def passes(self, syncer: Syncer, view: BucketView, scope: str) -> list[Pass]:
        if scope == DEPOSITION_SCOPE:
            return deposition_passes(view, self.deposition_ids)
        return dataset_passes(syncer, view, scope)


#: The key of the scope of the depositions a sync names (no dataset folder is called so).
DEPOSITION_SCOPE = f"{DEPOSITIONS}/"
