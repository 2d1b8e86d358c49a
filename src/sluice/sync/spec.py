"""Declarations of a hierarchical sync: entities, where their items are found, how each column
is filled, what the natural key and the stale scope are. A recipe only declares these; the
engine (`sluice.sync.engine`) does the work.

An *entity* maps to one table. Its items are found below each row of its parent entity (the
*scope*): rows of the table that belong to a parent seen in this sync but were not found again
are stale and deleted — only within that parent, never elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sluice.errors import ConfigError
from sluice.load.spec import Column, check_identifier
from sluice.sync.view import BucketView

#: A column's value for one item.
Getter = Callable[["Item"], Any]


class ScopeContext(Protocol):
    """What a value getter may consult besides its item: the bucket, and rows of entities
    already synced in this scope (to resolve references such as a frame by its order). The
    engine's `SyncContext` is one; declarations depend on this, never on the engine."""

    @property
    def view(self) -> BucketView: ...

    def rows(self, entity: str) -> Sequence[Row]:
        """Rows of `entity` in this scope: synced now, else read from the table."""
        ...

    def lookup(self, entity: str, **match: Any) -> int | None:
        """The id of the row of `entity` whose columns equal `match`, if there is one."""
        ...


@dataclass(frozen=True)
class Field:
    """One column of an entity's table."""

    name: str
    #: SQL type: integer, bigint, double precision, boolean, text, varchar(n), date, timestamptz.
    type: str
    #: Where the value comes from; None means the sync never sets it (it stays NULL).
    value: Getter | None = None
    nullable: bool = True
    #: Allowed values (an enumeration), enforced by a CHECK constraint.
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        Column(self.name, self.type)  # the same name and type rules as load tables


@dataclass(frozen=True)
class ForeignKey:
    """A column referencing another entity's table by its id."""

    column: str
    table: str
    on_delete: Literal["cascade", "set null"] = "cascade"


@dataclass
class Item:
    """Something a finder found: a folder, a file, or an element of a JSON list."""

    #: The object key or folder prefix (ending in ``/``) the item came from.
    path: str
    #: The JSON document (or list element) describing the item, if any.
    data: Any = None
    #: For list elements: the whole document the list is in.
    document: Any = None
    #: For list elements: the 1-based position in the list.
    index: int = 0
    #: Named groups captured by the finder's pattern (e.g. a voxel spacing).
    groups: Mapping[str, str] = field(default_factory=dict)
    parent: Row | None = None
    context: ScopeContext | None = None

    def ancestor(self, entity: str) -> Row:
        """The nearest row of `entity` above this item."""
        row = self.parent
        while row is not None:
            if row.entity == entity:
                return row
            row = row.item.parent
        raise KeyError(f"no {entity} above {self.path}")

    @property
    def sync(self) -> ScopeContext:
        assert self.context is not None, "items get their context when the engine finds them"
        return self.context

    @property
    def bucket(self) -> BucketView:
        return self.sync.view


@dataclass
class Row:
    """A row the sync wants in a table: the item it came from, its column values, and its id
    once it exists (found or inserted)."""

    entity: str
    item: Item
    values: dict[str, Any]
    id: int | None = None
    #: A partition's row kept as it is (nothing below it changed): its subtree is not synced.
    kept: bool = False

    def __getitem__(self, column: str) -> Any:
        if column == "id":
            return self.id
        return self.values[column]


class Finder(Protocol):
    """Finds the items of an entity below one parent row (None for roots)."""

    def __call__(self, parent: Row | None, view: BucketView) -> Sequence[Item]: ...


@dataclass(frozen=True)
class Entity:
    """One table of the hierarchy."""

    name: str
    table: str
    fields: tuple[Field, ...]
    #: Natural key: the columns that identify a row within its scope (NULL-safe); empty for
    #: entities identified by their metadata id (`identity`).
    key: tuple[str, ...]
    find: Finder
    #: The entity whose rows scope this one (None for roots).
    parent: str | None = None
    #: The column that holds the parent row's id; stale rows are deleted per parent. It always
    #: references the parent's table ON DELETE CASCADE (see `Tree.references`).
    scope: str | None = None
    #: References other than the scope's to its parent.
    foreign_keys: tuple[ForeignKey, ...] = ()
    #: For entities whose primary key comes from the metadata (not generated).
    identity: Getter | None = None
    #: Whether rows not found again are deleted (never for roots such as datasets).
    delete_stale: bool = True
    #: The command-line flag that turns this entity on.
    flag: str = ""
    #: Whether each row of this entity is a *partition* of its scope: its values and those of
    #: everything below it come only from the objects below its folder, from the columns of
    #: its ancestors named here (``"dataset.deposition_id"``), and from rows in its own
    #: subtree. A re-sync then keeps a partition in which nothing changed as it is, without
    #: reading its documents. None: not a partition.
    partition: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        check_identifier(self.name, "entity")
        check_identifier(self.table, "table")
        names = [f.name for f in self.fields]
        for column in (*self.key, *((self.scope,) if self.scope else ())):
            if column not in names:
                raise ConfigError(f"entity {self.name!r}: {column!r} is not one of its fields")
        if (self.parent is None) != (self.scope is None):
            raise ConfigError(f"entity {self.name!r}: parent and scope go together")
        if not self.key and self.identity is None:
            raise ConfigError(f"entity {self.name!r} needs a natural key or an identity")
        if self.partition is not None and self.parent is None:
            raise ConfigError(f"entity {self.name!r}: a partition needs a parent")
        for used in self.partition or ():
            if used.count(".") != 1:
                raise ConfigError(
                    f"entity {self.name!r}: partition column {used!r} is not 'entity.column'"
                )
        if any(fk.column == self.scope for fk in self.foreign_keys):
            raise ConfigError(
                f"entity {self.name!r}: {self.scope!r} references the parent already; "
                "do not declare it again"
            )

    def field(self, name: str) -> Field:
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        raise KeyError(name)


@dataclass(frozen=True)
class Tree:
    """Entities in dependency order: a parent before its children, and an entity before any
    entity whose values look it up."""

    schema: str
    entities: tuple[Entity, ...]

    def __post_init__(self) -> None:
        check_identifier(self.schema, "schema")
        partitions = [e.name for e in self.entities if e.partition is not None]
        if len(partitions) > 1:
            raise ConfigError(f"a tree has at most one partition entity, not {partitions}")
        seen: set[str] = set()
        for entity in self.entities:
            if entity.parent is not None and entity.parent not in seen:
                raise ConfigError(f"entity {entity.name!r} comes before its parent")
            seen.add(entity.name)

    def __getitem__(self, name: str) -> Entity:
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise KeyError(name)

    def references(self, entity: Entity) -> tuple[ForeignKey, ...]:
        """Every foreign key of `entity`: its scope to its parent's table first (children go
        with their parent), then those it declares."""
        if entity.parent is None or entity.scope is None:
            return entity.foreign_keys
        return (ForeignKey(entity.scope, self[entity.parent].table), *entity.foreign_keys)

    def children(self, name: str) -> list[Entity]:
        return [e for e in self.entities if e.parent == name]

    def below(self, name: str) -> list[Entity]:
        """Every entity under `name`, in order."""
        names = {name}
        out = []
        for entity in self.entities:
            if entity.parent in names:
                names.add(entity.name)
                out.append(entity)
        return out
