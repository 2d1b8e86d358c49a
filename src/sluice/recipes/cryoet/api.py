"""The CryoET verb: ``load`` — the equivalent of the portal's ``db_import.importer load``.

Depositions named with ``--deposition-id`` are synced first (one transaction); then each dataset
under ``--s3-prefix`` is synced in a transaction of its own, after importing any deposition it
refers to that the database does not have yet. A dataset that fails is rolled back and reported;
the others still import.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence

from sluice.api import Engine
from sluice.recipes.cryoet.source import (
    DEFAULT_HTTPS_PREFIX,
    DEPOSITION_SCOPE,
    DEPOSITIONS,
    FLAGS,
    check_depositions,
    dataset_folders,
    dataset_passes,
    deposition_label,
    deposition_passes,
    enabled_entities,
    fetch_order,
    is_document,
    list_ahead,
    open_bucket,
    resolve_flags,
)
from sluice.recipes.cryoet.tree import TREE
from sluice.runtime.record import record_sync
from sluice.sync import BucketView, ScopeReport, Syncer, SyncReport
from sluice.sync.view import DEFAULT_CONCURRENCY

__all__ = ["DEFAULT_HTTPS_PREFIX", "FLAGS", "enabled_entities", "load", "resolve_flags"]


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
    full: bool = False,
    concurrency: int = DEFAULT_CONCURRENCY,
    command: str | None = None,
) -> SyncReport:
    """Sync the portal metadata of `bucket` (an S3 bucket name, an ``s3://`` URL or a local
    folder) into the database. Unless it is a dry run, the sync is recorded on the ledger's
    list of runs (``sluice status``), named `command` (by default, the equivalent CLI
    command).

    Only what changed since the last sync is read: a dataset in which nothing changed is
    skipped, and in one that changed, only the runs in which something changed are read
    again; `full` reads everything. Documents are fetched `concurrency` at a time."""
    store, name = open_bucket(bucket, endpoint_url, engine.settings.s3)
    view = BucketView(
        store,
        name,
        https_prefix or DEFAULT_HTTPS_PREFIX,
        concurrency=concurrency,
        order=fetch_order,
    )
    on = resolve_flags(flags, everything=everything)
    syncer = Syncer(
        engine.db,
        TREE,
        view,
        enabled=enabled_entities(on),
        dry_run=dry_run,
        full=full,
        documents=is_document,
    )

    def sync() -> SyncReport:
        return _sync(syncer, view, on, s3_prefix, deposition_ids, filter_datasets)

    if dry_run:
        return sync()
    command = command or " ".join(
        ["cryoet load", bucket]
        + ([f"--s3-prefix {s3_prefix}"] if s3_prefix else [])
        + [f"--deposition-id {d}" for d in deposition_ids]
        + [f"--filter-dataset {d}" for d in filter_datasets]
        + (["--full"] if full else [])
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
    list_ahead(syncer, view, s3_prefix, filter_datasets)
    try:
        syncer.ensure_schema()
        report = SyncReport(dry_run=syncer.dry_run)
        if "depositions" in on and deposition_ids:
            check_depositions(view, deposition_ids)
            label = deposition_label(deposition_ids)
            folders = tuple(f"{DEPOSITIONS}/{d}/" for d in deposition_ids)
            report.scopes.append(
                syncer.scope(
                    label,
                    lambda: deposition_passes(view, deposition_ids),
                    key=DEPOSITION_SCOPE,
                    prefixes=folders,
                )
            )
        for folder in dataset_folders(view, s3_prefix, filter_datasets):
            report.scopes.append(_dataset_scope(syncer, view, folder))
    finally:
        view.settle()  # nothing fetched ahead outlives the command
    report.requests = store.requests.as_dict()
    report.seconds = time.perf_counter() - started
    return report


def _dataset_scope(syncer: Syncer, view: BucketView, folder: str) -> ScopeReport:
    # A read error while planning is this dataset's failure, not the command's: the syncer
    # reports it on the scope.
    return syncer.scope(
        f"dataset {folder.rstrip('/')}",
        lambda: dataset_passes(syncer, view, folder),
        key=folder,
        prefixes=(folder,),
    )
