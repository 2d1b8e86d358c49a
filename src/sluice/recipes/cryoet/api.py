"""The CryoET verb: ``load`` — the equivalent of the portal's ``db_import.importer load``.

Depositions named with ``--deposition-id`` are synced first (one transaction); then each dataset
under ``--s3-prefix`` is synced in a transaction of its own, after importing any deposition it
refers to that the database does not have yet. A dataset that fails is rolled back and reported;
the others still import.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from sluice.api import Engine
from sluice.errors import ConfigError, SluiceError
from sluice.recipes.cryoet.tree import TREE
from sluice.runtime.record import record_sync
from sluice.store import S3Options, Store, locate
from sluice.sync import BucketView, Item, Pass, ScopeReport, Syncer, SyncError, SyncReport
from sluice.sync.finders import dig

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


def load(
    engine: Engine,
    bucket: str,
    https_prefix: str = "",
    *,
    endpoint_url: str | None = None,
    s3_prefix: str = "",
    deposition_ids: Sequence[int] = (),
    flags: Iterable[str] = (),
    everything: bool = False,
    filter_datasets: Sequence[str] = (),
    dry_run: bool = False,
    command: str | None = None,
) -> SyncReport:
    """Sync the portal metadata of `bucket` (an S3 bucket name, an ``s3://`` URL or a local
    folder) into the database. Unless it is a dry run, the sync is recorded on the ledger's
    list of runs (``sluice status``), named `command` (by default, the equivalent CLI
    command)."""
    store, name = _open(bucket, endpoint_url, engine.settings.s3)
    view = BucketView(store, name, https_prefix or DEFAULT_HTTPS_PREFIX)
    on = resolve_flags(flags, everything=everything)
    syncer = Syncer(engine.db, TREE, view, enabled=enabled_entities(on), dry_run=dry_run)

    def sync() -> SyncReport:
        return _sync(syncer, view, on, s3_prefix, deposition_ids, filter_datasets)

    if dry_run:
        return sync()
    command = command or " ".join(
        ["cryoet load", bucket]
        + ([f"--s3-prefix {s3_prefix}"] if s3_prefix else [])
        + [f"--deposition-id {d}" for d in deposition_ids]
        + [f"--filter-dataset {d}" for d in filter_datasets]
    )
    return record_sync(engine.db, command, sync)


def _sync(
    syncer: Syncer,
    view: BucketView,
    on: Collection[str],
    s3_prefix: str,
    deposition_ids: Sequence[int],
    filter_datasets: Sequence[str],
) -> SyncReport:
    started = time.perf_counter()
    store = view.store
    syncer.ensure_schema()
    report = SyncReport(dry_run=syncer.dry_run)
    deposition_children = ("deposition_author", "deposition_type")
    if "depositions" in on and deposition_ids:
        items = [_deposition_item(view, dep) for dep in deposition_ids]
        label = "depositions " + ", ".join(str(d) for d in deposition_ids)
        report.scopes.append(syncer.scope(label, [Pass("deposition", items, deposition_children)]))
    for folder in _dataset_folders(view, s3_prefix, filter_datasets):
        report.scopes.append(_dataset_scope(syncer, view, folder, deposition_children))
    report.requests = store.requests.as_dict()
    report.seconds = time.perf_counter() - started
    return report


def _dataset_scope(
    syncer: Syncer, view: BucketView, folder: str, deposition_children: Collection[str]
) -> ScopeReport:
    name = f"dataset {folder.rstrip('/')}"
    try:
        view.prefetch(
            key for key in view.keys(folder) if key.endswith(".json") and ".zarr/" not in key
        )
        dataset = Item(path=folder, data=view.json(folder + "dataset_metadata.json"))
        passes = _missing_depositions(syncer, view, folder, dataset, deposition_children)
        passes.append(Pass("dataset", [dataset]))
    except SluiceError as exc:  # a read error is this dataset's failure, not the command's
        return ScopeReport(name=name, ok=False, error=str(exc))
    return syncer.scope(name, passes)


def _missing_depositions(
    syncer: Syncer,
    view: BucketView,
    folder: str,
    dataset: Item,
    children: Collection[str],
) -> list[Pass]:
    """A pass importing the depositions the dataset's documents refer to that the database
    does not have yet (a deposition already there is never overwritten by this)."""
    referenced: dict[int, str] = {}
    for key in view.keys(folder):
        if key.endswith(".json") and ".zarr/" not in key:
            value = dig(view.json(key), "deposition_id")
            if isinstance(value, int) and not isinstance(value, bool):
                referenced.setdefault(value, key)
    dataset_deposition = dig(dataset.data, "deposition_id")
    if isinstance(dataset_deposition, int):
        referenced.setdefault(dataset_deposition, dataset.path + "dataset_metadata.json")
    missing = sorted(set(referenced) - syncer.existing_ids("deposition", referenced))
    if not missing:
        return []
    items = []
    for deposition in missing:
        try:
            items.append(_deposition_item(view, deposition))
        except ConfigError:
            raise SyncError(
                f"deposition {deposition} (named by {view.store.uri(referenced[deposition])}) "
                f"is not in the database and {DEPOSITIONS}/{deposition}/ has no "
                "deposition_metadata.json"
            ) from None
    return [Pass("deposition", items, children)]


def _deposition_item(view: BucketView, deposition: int) -> Item:
    """The deposition folder of exactly this id (``300`` never selects ``3001``)."""
    folder = f"{DEPOSITIONS}/{int(deposition)}/"
    marker = folder + "deposition_metadata.json"
    if not view.exists(marker):
        raise ConfigError(f"deposition {deposition}: {view.store.uri(marker)} does not exist")
    return Item(path=folder, data=view.json(marker))


def _dataset_folders(view: BucketView, s3_prefix: str, filters: Sequence[str]) -> list[str]:
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


def _open(bucket: str, endpoint_url: str | None, s3: S3Options) -> tuple[Store, str]:
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
