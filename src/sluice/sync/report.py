"""What a sync did: per scope (a dataset, the depositions named) and entity, the rows created,
updated, deleted and left unchanged; what was read; the SQL it ran. The CLI renders it, the
ledger's list of runs records it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class EntityCounts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    def add(self, other: EntityCounts) -> None:
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted
        self.unchanged += other.unchanged


@dataclass
class ScopeReport:
    """What one scope (a dataset, a set of depositions) did."""

    name: str
    ok: bool = True
    error: str | None = None
    entities: dict[str, EntityCounts] = field(default_factory=dict)
    statements: int = 0
    seconds: float = 0.0
    #: Nothing below the scope changed since its last sync: it was neither read nor written.
    skipped: bool = False
    #: Partitions (runs) kept as they were, and those read again.
    kept: int = 0
    read: int = 0
    #: The planned changes, row by row (kept for --dry-run): (entity, action, natural key).
    changes: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class SyncReport:
    """A whole sync command: its scopes, the requests to the store, the SQL it ran."""

    scopes: list[ScopeReport] = field(default_factory=list)
    dry_run: bool = False
    requests: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: The run that recorded it on the ledger (None for a dry run).
    run_id: int | None = None

    @property
    def ok(self) -> bool:
        return all(scope.ok for scope in self.scopes)

    @property
    def statements(self) -> int:
        return sum(scope.statements for scope in self.scopes)

    def totals(self) -> dict[str, EntityCounts]:
        totals: dict[str, EntityCounts] = {}
        for scope in self.scopes:
            for name, counts in scope.entities.items():
                totals.setdefault(name, EntityCounts()).add(counts)
        return totals

    @property
    def changed(self) -> bool:
        return any(counts.changed for counts in self.totals().values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "changed": self.changed,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "statements": self.statements,
            "totals": {name: c.__dict__ for name, c in self.totals().items()},
            "scopes": [
                {
                    "name": s.name,
                    "ok": s.ok,
                    "error": s.error,
                    "skipped": s.skipped,
                    "partitions_kept": s.kept,
                    "partitions_read": s.read,
                    "statements": s.statements,
                    "seconds": round(s.seconds, 3),
                    "entities": {name: c.__dict__ for name, c in s.entities.items()},
                    **({"changes": [list(c) for c in s.changes]} if self.dry_run else {}),
                }
                for s in self.scopes
            ],
        }
