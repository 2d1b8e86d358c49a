"""Hierarchical syncs on the work queue: a bucket's scopes (a dataset folder, the depositions
named) are units of kind ``sync``, versioned by what is below them.

A scan lists the bucket once and records, for each scope, a digest of every object below it
and its version (and of the sync's options): a scope is synced again exactly when something in
it was added, removed or replaced. Its step syncs the scope inside the unit's transaction, so
the rows and the unit's move to ``loaded`` commit together; a scope that fails is errored on
its own with its reason, the others go on. A recipe (`TreeSource`) declares the tree, the
scopes and the passes; this module does the rest for any recipe.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sluice import schedule
from sluice.db import Connection, Database
from sluice.errors import ConfigError
from sluice.ledger.queue import Lane
from sluice.ledger.records import Counts, Discovered, FeedRow, Unit
from sluice.ledger.registry import FeedRegistry, Scan
from sluice.ledger.repository import FeedRegistration, Ledger
from sluice.ledger.states import Status
from sluice.ledger.steps import Outcome, ProgressSink
from sluice.store import S3Options
from sluice.sync.engine import Pass, Syncer
from sluice.sync.report import ScopeReport
from sluice.sync.spec import Tree
from sluice.sync.view import BucketView

log = logging.getLogger(__name__)

#: The kind of the feeds of this flow in ``sluice.feeds``.
KIND = "sync"
#: Syncs of scopes: claimed from ready, synced in ingesting, done as loaded.
SYNC = Lane("sync", ready=Status.READY, leased=Status.INGESTING, done=Status.LOADED)
#: Options of a sync feed that change how it reads, never which rows it gives.
READING = frozenset({"full", "concurrency"})
#: How often a sync feed is scanned when it does not say.
DEFAULT_SCHEDULE = "1h"


@dataclass(frozen=True)
class Scope:
    """One unit of a sync: a key on the ledger, a name for people, the prefixes it reads."""

    key: str
    name: str
    prefixes: tuple[str, ...]


class TreeSource(Protocol):
    """What a recipe declares for one sync feed."""

    @property
    def tree(self) -> Tree: ...

    @property
    def store_url(self) -> str: ...

    def view(self) -> BucketView:
        """A fresh view of the bucket (listings and documents read once per view)."""
        ...

    def enabled(self) -> Collection[str]:
        """The entities synced below a scope's root."""
        ...

    @property
    def full(self) -> bool:
        """Whether every sync reads everything again (else only what changed)."""
        ...

    def is_document(self, key: str) -> bool:
        """Whether `key` is a metadata document (fetched ahead, several at a time)."""
        ...

    def scopes(self, view: BucketView) -> list[Scope]: ...

    def passes(self, syncer: Syncer, view: BucketView, scope: str) -> list[Pass]:
        """The passes that sync `scope` (its key)."""
        ...


#: A recipe: its sync's options (from the project file, or the ledger) → its declaration.
Recipe = Callable[[Mapping[str, Any], S3Options], TreeSource]


@dataclass(frozen=True)
class SyncDeclaration:
    """A sync feed as the project file declares it (``[syncs.NAME]``)."""

    name: str
    recipe: str
    options: dict[str, Any] = field(default_factory=dict)
    schedule: str = DEFAULT_SCHEDULE

    def __post_init__(self) -> None:
        try:
            schedule.parse(self.schedule)
        except ConfigError as exc:
            raise ConfigError(f"sync {self.name!r}: {exc}") from exc


@dataclass(frozen=True)
class SyncFeed:
    """A registered sync feed, ready to scan and sync."""

    feed_id: int
    name: str
    recipe: str
    options: dict[str, Any]
    source: TreeSource
    active: bool = True
    schedule: str = DEFAULT_SCHEDULE


class SyncFlow:
    """Registration, scans and the sync step of hierarchical sync feeds."""

    kind = KIND

    def __init__(
        self,
        db: Database,
        *,
        s3: S3Options,
        recipes: Mapping[str, Recipe],
        full: bool = False,
    ) -> None:
        self.db = db
        self.s3 = s3
        #: Every scan syncs every scope again, and every sync reads all its documents again
        #: (``--full``), instead of only the scopes, runs and documents that changed.
        self.full = full
        self.recipes = dict(recipes)
        self.step = SyncStep(self)
        self._feeds: FeedRegistry[SyncFeed] = FeedRegistry(self.adopt)

    @property
    def steps(self) -> tuple[SyncStep]:
        return (self.step,)

    def _recipe(self, name: str, feed: str) -> Recipe:
        recipe = self.recipes.get(name)
        if recipe is None:
            known = ", ".join(sorted(self.recipes)) or "none"
            raise ConfigError(f"sync {feed!r}: unknown recipe {name!r} (known: {known})")
        return recipe

    def register(self, ledger: Ledger, declared: SyncDeclaration) -> SyncFeed:
        """Check the declaration with its recipe, create its tables, record it on the ledger."""
        source = self._recipe(declared.recipe, declared.name)(declared.options, self.s3)
        feed_id, active = ledger.register_feed(
            FeedRegistration(
                name=declared.name,
                kind=KIND,
                target_id=None,
                source_url=source.store_url,
                pattern="",
                options={"recipe": declared.recipe, **declared.options},
                schedule=declared.schedule,
            )
        )
        Syncer(self.db, source.tree, source.view(), enabled=source.enabled()).ensure_schema()
        feed = SyncFeed(feed_id, declared.name, declared.recipe, declared.options, source, active)
        return self._keep(feed)

    def adopt(self, row: FeedRow) -> SyncFeed:
        if row.kind != KIND:
            raise ConfigError(f"feed {row.name!r} is a {row.kind!r} feed, not a sync")
        options = {k: v for k, v in row.options.items() if k != "recipe"}
        recipe = str(row.options.get("recipe", ""))
        source = self._recipe(recipe, row.name)(options, self.s3)
        feed = SyncFeed(row.id, row.name, recipe, options, source, row.active, row.schedule)
        return self._keep(feed)

    def source(self, ledger: Ledger, feed_id: int) -> SyncFeed:
        return self._feeds.get(ledger, feed_id)

    def name_of(self, feed_id: int) -> str:
        return self._feeds.name_of(feed_id)

    def _keep(self, feed: SyncFeed) -> SyncFeed:
        return self._feeds.keep(feed)

    def scan(self, ledger: Ledger, feed: SyncFeed) -> Scan:
        """Record a version of every scope whose content (or the sync's options) changed."""
        view = feed.source.view()
        salt = json.dumps(feed.options, sort_keys=True, default=str)
        if self.full:
            # A version no scan gave before: every scope becomes a unit to sync again.
            salt += f"\0full {uuid.uuid4().hex}"
        found = [
            Discovered(scope.key, view.fingerprint(scope.prefixes, salt))
            for scope in feed.source.scopes(view)
        ]
        new = ledger.discover(SYNC.kind, feed.feed_id, feed.source.store_url, found)
        log.info("%s: %d scopes, %d to sync", feed.name, len(found), len(new))
        return Scan(feed.name, len(found), len(new))

    # -- nothing runs after a sync's units ---------------------------------------------------

    def sweep(self, ledger: Ledger) -> None:
        """A sync leaves nothing behind outside its transaction."""

    def needs_after(self, ledger: Ledger, sources: Sequence[SyncFeed]) -> list[SyncFeed]:
        return []

    def drained(self, ledger: Ledger, sources: Sequence[SyncFeed]) -> list[SyncFeed]:
        return [s for s in sources if ledger.pending(SYNC, [s.feed_id]) == 0]

    def after(self, ledger: Ledger, sources: Sequence[SyncFeed]) -> list[dict[str, Any]]:
        return []


class SyncStep:
    """The step of the lane ``sync``: one scope, synced in the unit's transaction."""

    lane = SYNC

    def __init__(self, flow: SyncFlow) -> None:
        self.flow = flow

    def label(self, unit: Unit) -> str:
        return self.flow.name_of(unit.feed_id)

    def run(self, unit: Unit, tx: Connection, progress: ProgressSink) -> Outcome:
        feed = self.flow.source(Ledger(tx), unit.feed_id)
        source = feed.source
        view = source.view()
        syncer = Syncer(
            self.flow.db,
            source.tree,
            view,
            enabled=source.enabled(),
            full=self.flow.full or source.full,
            documents=source.is_document,
            options=json.dumps(
                {k: v for k, v in feed.options.items() if k not in READING},
                sort_keys=True,
                default=str,
            ),
        )
        try:
            passes = source.passes(syncer, view, unit.key)
            # The scope's prefixes, so that its digest is recorded with its rows (a later
            # one-shot sync of an unchanged scope then skips it).
            prefixes = next((s.prefixes for s in source.scopes(view) if s.key == unit.key), ())
            report = syncer.apply(
                tx, unit.key, passes, ScopeReport(name=unit.key), key=unit.key, prefixes=prefixes
            )
        finally:
            view.settle()  # nothing fetched ahead keeps going behind a failed unit
        totals = report.entities.values()
        created = sum(c.created for c in totals)
        updated = sum(c.updated for c in totals)
        unchanged = sum(c.unchanged for c in totals)
        counts = Counts(
            rows_in=created + updated + unchanged,
            inserted=created,
            updated=updated,
            unchanged=unchanged,
            deleted=sum(c.deleted for c in totals),
        )
        return Outcome(counts=counts, path="sync", phases={"sync": report.seconds})

    def ended(self, unit: Unit) -> None:
        """A sync holds nothing outside its transaction."""
