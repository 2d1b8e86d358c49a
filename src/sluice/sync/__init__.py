"""Hierarchical metadata sync: declare a tree of entities over a bucket's folders and JSON
documents; the engine keeps a set of tables equal to it — created, updated in place, stale rows
deleted within their parent's scope — one transaction per scope."""

from sluice.sync.engine import Pass, Syncer
from sluice.sync.report import EntityCounts, ScopeReport, SyncReport
from sluice.sync.spec import Entity, Field, ForeignKey, Item, Row, Tree
from sluice.sync.view import BucketView, SyncError
from sluice.sync.walk import SyncContext

__all__ = [
    "BucketView",
    "Entity",
    "EntityCounts",
    "Field",
    "ForeignKey",
    "Item",
    "Pass",
    "Row",
    "ScopeReport",
    "SyncContext",
    "SyncError",
    "SyncReport",
    "Syncer",
    "Tree",
]
