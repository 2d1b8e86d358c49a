"""The sync engine: per scope (e.g. one dataset), in one transaction, for each entity type in
order: find the items below the parent rows, read the existing rows of those parents in one
query, diff by natural key, and apply the difference set-wise — insert what is new, update in
place what changed (primary keys survive), delete what was not found again (their children
follow through ON DELETE CASCADE). A failure rolls the scope back; other scopes go on.

`Syncer` decides which scopes to sync and holds their transactions and records; a scope's pass
over the entities is a `sluice.sync.walk.Walk`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

import psycopg

import sluice
from sluice import faults
from sluice.db import Connection, Database
from sluice.errors import SchemaError, SluiceError
from sluice.sync.report import ScopeReport
from sluice.sync.repository import SyncRepository
from sluice.sync.spec import Entity, Item, Tree
from sluice.sync.state import SyncState
from sluice.sync.values import INTEGER_RANGES
from sluice.sync.view import BucketView
from sluice.sync.walk import Walk

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pass:
    """Items of a root entity to sync, and the entities below it to sync with them (None:
    every enabled one)."""

    root: str
    items: Sequence[Item]
    only: Collection[str] | None = None
    #: What this pass needs first: asked before each entity's rows are computed (and once
    #: more after the pass, with ``final`` true), it returns the passes to run at once, in
    #: the same transaction, before going on — e.g. importing the depositions that the
    #: documents read so far name. So the pass need not wait for every document before its
    #: first row: the documents fetched ahead come in while it goes.
    needs: Callable[[bool], Sequence[Pass]] | None = None


#: The passes of a scope, or what computes them (read only when the scope must be synced).
Passes = Sequence[Pass] | Callable[[], Sequence[Pass]]


class Syncer:
    """Applies a tree below root items, one transaction per scope.

    Unless `full`, a sync reads only what changed since the last sync of a scope (recorded on
    the ledger with the scope's rows): a scope in which nothing changed is skipped, and in one
    that changed, a partition (a run) in which nothing changed keeps its rows without its
    documents being read. `documents` says which keys are metadata documents, so that those
    that must be read are fetched ahead, `view.concurrency` at a time."""

    def __init__(
        self,
        db: Database,
        tree: Tree,
        view: BucketView,
        *,
        enabled: Collection[str],
        dry_run: bool = False,
        full: bool = False,
        documents: Callable[[str], bool] | None = None,
        options: str = "",
    ) -> None:
        self.db = db
        self.tree = tree
        self.view = view
        self.enabled = frozenset(enabled)
        self.dry_run = dry_run
        self.full = full
        self.documents = documents
        # What the rows depend on besides the objects: a change of any of these makes every
        # digest differ, so nothing recorded before is trusted (the code's version included:
        # a new release may compute a column differently).
        self.salt = json.dumps(
            {
                "tree": tree.schema,
                "enabled": sorted(self.enabled),
                "bucket": view.bucket,
                "https": view.https_prefix,
                "sluice": sluice.__version__,
                "options": options,
            },
            sort_keys=True,
        )

    def ensure_schema(self) -> None:
        """Create the tree's tables if missing (in a dry run, each scope does it in its own
        transaction, which is rolled back)."""
        if self.dry_run:
            return
        with self.db.connection() as conn, conn.transaction():
            SyncRepository(conn, self.tree).ensure_schema()

    def existing_ids(self, entity: str, ids: Collection[int]) -> set[int]:
        """Which of `ids` already exist in an identity entity's table."""
        # An id out of the range of the bigint column cannot exist, and must not reach the
        # server, which would fail the query without saying which id it was.
        low, high = INTEGER_RANGES["bigint"]
        storable = [i for i in ids if low <= i <= high]
        with self.db.connection() as conn:
            repo = SyncRepository(conn, self.tree)
            try:
                return {row_id for row_id, _ in repo.fetch(self.tree[entity], ids=storable)}
            except SchemaError:
                return set()  # a dry run before the first sync: no table yet

    def _state(self, conn: Connection, key: str) -> SyncState:
        return SyncState(conn, self.view.store.url, self.tree.schema, key)

    def never_synced(self, key: str) -> bool:
        """Whether nothing is recorded of scope `key` (so all its documents must be read)."""
        with self.db.connection() as conn:
            state = self._state(conn, key)
            return state.digest() is None and not state.documents()

    def changed_documents(self, key: str, documents: Iterable[str]) -> list[str]:
        """Those of `documents` whose listed version is not the one the last sync of scope
        `key` read (every one of them for a full sync)."""
        wanted = list(documents)
        if self.full:
            return wanted
        with self.db.connection() as conn:
            recorded = self._state(conn, key).documents()
        return [k for k in wanted if recorded.get(k) != self.view.version(k)]

    def scope(
        self, name: str, passes: Passes, *, key: str | None = None, prefixes: Sequence[str] = ()
    ) -> ScopeReport:
        """Run `passes` in one transaction: each syncs the items of a root entity and, below
        them, every enabled entity (or those the pass names); return what was done or why it
        failed. With `key` (the scope on the ledger) and the `prefixes` below which its
        objects lie, a scope in which nothing changed since its last sync is skipped: its
        passes are not even computed."""
        report = ScopeReport(name=name)
        started = time.perf_counter()
        try:
            if key is not None and not self.full and self._unchanged(key, prefixes):
                report.skipped = True
            else:
                try:
                    planned = passes() if callable(passes) else passes
                    with self.db.connection() as conn:
                        self.apply(conn, name, planned, report, key=key, prefixes=prefixes)
                finally:
                    self.view.settle()
        except SluiceError as exc:
            report.ok = False
            report.error = str(exc)
            log.error("%s: %s", name, exc)
        except Exception as exc:
            # A defect, not bad input; still this scope's failure alone (the transaction is
            # rolled back), with the traceback in the log.
            report.ok = False
            report.error = f"unexpected {type(exc).__name__}: {exc}"
            log.exception("%s: unexpected error", name)
        report.seconds = time.perf_counter() - started
        return report

    def _unchanged(self, key: str, prefixes: Sequence[str]) -> bool:
        digest = self.view.fingerprint(prefixes, self.salt)
        with self.db.connection() as conn:
            return self._state(conn, key).digest() == digest

    def apply(
        self,
        conn: Connection,
        name: str,
        passes: Sequence[Pass],
        report: ScopeReport,
        *,
        key: str | None = None,
        prefixes: Sequence[str] = (),
    ) -> ScopeReport:
        """Run `passes` on `conn`, in a transaction of its own or a savepoint of the one it is
        in (a work-queue unit's, committed with the unit); raise on failure, nothing kept.
        What was read is recorded for scope `key` (by default `name`) in the same
        transaction; with `prefixes`, so is the scope's digest."""
        repo = SyncRepository(conn, self.tree)
        state = self._state(conn, key or name)
        try:
            with conn.transaction():
                if self.dry_run:
                    repo.ensure_schema()
                    repo.statements = 0
                repo.lock(f"scope {name}")
                recorded = {} if self.full else state.partitions()
                self.view.escaped.clear()
                walk = Walk(self, repo, report, recorded)
                for step in passes:
                    walk.run_pass(step)
                self._record(state, walk, prefixes)
                if self.dry_run:
                    raise psycopg.Rollback()
                faults.pause("sync")
        finally:
            # Nothing fetched ahead for this scope keeps going behind it.
            self.view.settle()
            report.statements = repo.statements + state.statements
        return report

    def entities_of(self, step: Pass) -> list[Entity]:
        """The entities a pass syncs below its root."""
        wanted = self.enabled if step.only is None else frozenset(step.only)
        return [e for e in self.tree.below(step.root) if e.name in wanted]

    def _record(self, state: SyncState, walk: Walk, prefixes: Sequence[str]) -> None:
        """Record what the scope's rows now come from: its digest, its partitions, the
        versions of the documents read below its prefixes (and forget those gone)."""
        below = tuple(p.rstrip("/") + "/" if p else "" for p in prefixes)
        read = {
            k: v for k, v in self.view.read_versions().items() if not below or k.startswith(below)
        }
        known = state.documents()
        gone = [k for k in known if self.view.version(k) is None]
        fresh = {k: v for k, v in read.items() if known.get(k) != v}
        digest = self.view.fingerprint(prefixes, self.salt) if prefixes else None
        # A partition whose values looked outside its folder is read again every time.
        partitions = {f: p for f, p in walk.partitions.items() if f not in self.view.escaped}
        state.save(digest, partitions, fresh, gone)
