"""One scope's pass over a tree's entities (`Walk`), for the engine (`sluice.sync.engine`):
for each entity type in order, find the items below the parent rows, compute their rows, read
the existing rows of those parents in one query, diff by natural key and apply the
difference set-wise. `SyncContext` is what value getters may consult meanwhile.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sluice.errors import SluiceError
from sluice.sync.finders import folder_of
from sluice.sync.report import EntityCounts, ScopeReport
from sluice.sync.repository import SyncRepository
from sluice.sync.spec import Entity, Field, Getter, Item, Row
from sluice.sync.state import Partition
from sluice.sync.values import ValueRejected, coerce, shown
from sluice.sync.view import SyncError

if TYPE_CHECKING:
    from sluice.sync.engine import Pass, Syncer

log = logging.getLogger(__name__)


class SyncContext:
    """What value getters may consult besides their item (`sluice.sync.spec.ScopeContext`):
    the bucket, and rows of entities already synced in this scope."""

    def __init__(self, walk: Walk) -> None:
        self._walk = walk
        self.view = walk.view
        self._indexes: dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], int]] = {}

    def rows(self, entity: str) -> list[Row]:
        return self._walk.rows_of(entity)

    def lookup(self, entity: str, **match: Any) -> int | None:
        """The id of the row of `entity` whose columns equal `match`, if there is one."""
        spec = self._walk.tree[entity]
        columns = tuple(sorted(match))
        index = self._indexes.get((entity, columns))
        if index is None:
            index = {}
            for row in self.rows(entity):
                if row.id is not None:
                    index.setdefault(tuple(row[c] for c in columns), row.id)
            self._indexes[(entity, columns)] = index
        wanted = tuple(
            match[c] if c == "id" else coerce(spec.field(c).type, match[c]) for c in columns
        )
        return index.get(wanted)


class Walk:
    """One scope's pass over the entities."""

    def __init__(
        self,
        syncer: Syncer,
        repo: SyncRepository,
        report: ScopeReport,
        recorded: dict[str, Partition],
    ) -> None:
        self.syncer = syncer
        self.tree = syncer.tree
        self.view = syncer.view
        self.repo = repo
        self.report = report
        #: Partitions as the last sync left them, and as this one leaves them.
        self.recorded = recorded
        self.partitions: dict[str, Partition] = {}
        self.rows: dict[str, list[Row]] = {}
        self._existing: dict[str, list[Row]] = {}
        self.context = SyncContext(self)
        self._partition_entity = next(
            (e.name for e in self.tree.entities if e.partition is not None), None
        )
        #: What the pass being synced needs first (`Pass.needs`).
        self._needs: Callable[[bool], Sequence[Pass]] | None = None

    def run_pass(self, step: Pass) -> None:
        """Sync one pass; what it needs first runs when it asks (see `Pass.needs`)."""
        before = self._needs
        self._needs = step.needs
        try:
            self.run(self.tree[step.root], step.items, self.syncer.entities_of(step))
        finally:
            self._needs = before
        self._prerequisites(final=True, needs=step.needs)

    def _prerequisites(
        self, *, final: bool = False, needs: Callable[[bool], Sequence[Pass]] | None = None
    ) -> None:
        """Run the passes the current pass needs before it goes on (none while such a pass
        itself runs)."""
        needs = needs or self._needs
        if needs is None:
            return
        before = self._needs
        self._needs = None
        try:
            for step in needs(final):
                self.run_pass(step)
        finally:
            self._needs = before

    def run(self, root: Entity, items: Sequence[Item], entities: Sequence[Entity]) -> None:
        for item in items:
            item.context = self.context
        self.rows[root.name] = self._apply(root, list(items), None)
        for entity in entities:
            parents = self.rows.get(entity.parent or "")
            if parents is None:
                continue  # its parent type is not synced in this scope
            # Below a partition kept as it is, nothing is read nor compared: its rows stay.
            live = [p for p in parents if not p.kept]
            if entity.partition is not None:
                self.rows[entity.name] = self._partition(entity, live)
                continue
            found = self._found(entity, live)
            scope_ids = [p.id for p in live if p.id is not None]
            self.rows[entity.name] = self._apply(entity, found, scope_ids)

    def _home(self, row: Row | None) -> str | None:
        """The folder of the partition `row` is in (None above the partitions)."""
        while row is not None:
            if row.entity == self._partition_entity:
                return folder_of(row)
            row = row.item.parent
        return None

    def _found(self, entity: Entity, parents: Sequence[Row]) -> list[Item]:
        found: list[Item] = []
        for parent in parents:
            with self.view.confined(self._home(parent)):
                items = self._find(entity, parent)
            for item in items:
                item.parent = parent
                item.context = self.context
                found.append(item)
        return found

    def _partition(self, entity: Entity, parents: list[Row]) -> list[Row]:
        """Sync a partition entity: a partition whose digest is the one recorded (nothing
        below it changed, nor the ancestors' columns it uses) and whose row is still there is
        kept as it is; the others are found and compared as in a full sync. The kept rows
        still take part in the diff, so a duplicate key or a stale row is what a full sync
        would find."""
        salt = self.syncer.salt + json.dumps(_uses(entity, parents), default=str)
        scope_ids = [p.id for p in parents if p.id is not None]
        existing = self.repo.fetch(entity, scope_ids=scope_ids)
        by_id = dict(existing)
        parent_of = {p.id: p for p in parents}
        kept: list[Row] = []
        for path, was in sorted(self.recorded.items()):
            values = by_id.get(was.row_id)
            if values is None or self.view.fingerprint([path], salt) != was.digest:
                continue
            item = Item(path=path, parent=parent_of.get(values.get(entity.scope or "")))
            item.context = self.context
            kept.append(Row(entity.name, item, values, was.row_id, kept=True))
        hidden = [row.item.path for row in kept]
        with self.view.hiding(hidden):
            self._prefetch(parents)
            found = self._found(entity, parents)
        rows = self._apply(entity, found, scope_ids, kept=kept, existing=existing)
        self.report.kept += len(kept)
        self.report.read += len(rows) - len(kept)
        folders = [folder_of(row) for row in rows]
        shared = Counter(folders)
        for row, folder in zip(rows, folders, strict=True):
            # A partition is its own folder: rows sharing one are read again every time.
            if row.id is not None and shared[folder] == 1:
                digest = self.view.fingerprint([folder], salt)
                self.partitions[folder] = Partition(digest, row.id)
        return rows

    def _prefetch(self, parents: Sequence[Row]) -> None:
        """Fetch ahead, concurrently, every document below the parents that is not hidden:
        the documents of the partitions that are read again."""
        wanted = self.syncer.documents
        if wanted is None:
            return
        keys = [k for p in parents for k in self.view.keys(folder_of(p)) if wanted(k)]
        self.view.prefetch(keys)

    def _find(self, entity: Entity, parent: Row) -> Sequence[Item]:
        """The items of `entity` below `parent`. A finder walks documents as they are (a list
        where a name was expected, a nesting too deep to walk): any error is the scope's, and
        names the parent's object and the entity."""
        try:
            return entity.find(parent, self.view)
        except SluiceError:
            raise
        except Exception as exc:
            raise SyncError(
                f"{self._where(parent.item)}: {entity.name}: cannot find its items ({_reason(exc)})"
            ) from exc

    def _where(self, item: Item) -> str:
        """The URL of the object an item's values come from: its file, or for a folder (and
        the elements of its lists) the document describing it."""
        source = None
        if item.path.endswith("/"):
            source = self.view.source_of(item.data) or self.view.source_of(item.document)
        return self.view.store.uri(source or item.path)

    def rows_of(self, entity: str) -> list[Row]:
        """Rows of `entity` in this scope: synced now, else read from the table."""
        if entity in self.rows:
            return self.rows[entity]
        if entity not in self._existing:
            spec = self.tree[entity]
            parents = self.rows_of(spec.parent) if spec.parent else []
            fetched = self.repo.fetch(spec, scope_ids=[p.id for p in parents if p.id])
            self._existing[entity] = [
                Row(entity, Item(path=""), values, row_id) for row_id, values in fetched
            ]
        return self._existing[entity]

    def _apply(
        self,
        entity: Entity,
        items: list[Item],
        scope_ids: list[int] | None,
        *,
        kept: Sequence[Row] = (),
        existing: list[tuple[int, dict[str, Any]]] | None = None,
    ) -> list[Row]:
        # What the pass needs before these rows (a deposition their documents name, say).
        self._prerequisites()
        desired = [self._row(entity, item) for item in items] + list(kept)
        if existing is None:  # else read by the caller, in the same transaction
            if scope_ids is None:
                ids = [r.id for r in desired if r.id is not None]
                existing = self.repo.fetch(entity, ids=ids)
            else:
                existing = self.repo.fetch(entity, scope_ids=scope_ids)
        if scope_ids is not None and entity.scope not in entity.key and desired:
            # The key does not name the parent: a row with this key may sit under another
            # parent (or none); it is adopted and updated, never duplicated.
            known = {row_id for row_id, _ in existing}
            keys = [_key(entity, row.values) for row in desired]
            existing = existing + [
                row for row in self.repo.fetch_by_keys(entity, keys) if row[0] not in known
            ]
        creates, updates, deletes, unchanged = _diff(entity, desired, existing)
        if not entity.delete_stale:
            deletes = []
        self.repo.delete(entity, deletes)
        self.repo.update(entity, [(row.id, row.values) for row in updates if row.id is not None])
        new_ids = self.repo.insert(entity, [(row.id, row.values) for row in creates])
        if entity.identity is None:
            by_key = dict((key, row_id) for row_id, key in new_ids)
            for row in creates:
                row.id = by_key[_key(entity, row.values)]
        # An entity may be synced by more than one pass of a scope (depositions as needed).
        self.report.entities.setdefault(entity.name, EntityCounts()).add(
            EntityCounts(
                created=len(creates),
                updated=len(updates),
                deleted=len(deletes),
                unchanged=unchanged,
            )
        )
        self.report.changes += [(entity.name, "create", _show(entity, r)) for r in creates]
        self.report.changes += [(entity.name, "update", _show(entity, r)) for r in updates]
        self.report.changes += [(entity.name, "delete", f"id {i}") for i in deletes]
        return desired

    def _row(self, entity: Entity, item: Item) -> Row:
        if entity.name == self._partition_entity:
            home: str | None = folder_of(Row(entity.name, item, {}))
        else:
            home = self._home(item.parent)
        with self.view.confined(home):
            return self._compute_row(entity, item)

    def _compute_row(self, entity: Entity, item: Item) -> Row:
        where = f"{self._where(item)}: {entity.name}"
        values: dict[str, Any] = {}
        for spec in entity.fields:
            if spec.name == entity.scope:
                assert item.parent is not None
                raw: Any = item.parent.id
            else:
                raw = _compute(spec.value, item, f"{where}.{spec.name}")
            values[spec.name] = _checked(spec, raw, f"{where}.{spec.name}")
        row_id = None
        if entity.identity is not None:
            raw = _compute(entity.identity, item, f"{where}.id")
            row_id = _coerced("bigint", raw, f"{where}.id")
        return Row(entity.name, item, values, row_id)


def _uses(entity: Entity, parents: Sequence[Row]) -> list[list[Any]]:
    """The parents' ids and the ancestors' columns a partition entity's subtree reads: when
    one of them changes, no partition below is kept."""
    out: list[list[Any]] = []
    for parent in parents:
        values: list[Any] = [parent.id]
        for used in entity.partition or ():
            name, column = used.split(".")
            row = parent if parent.entity == name else parent.item.ancestor(name)
            values.append(row[column])
        out.append(values)
    return sorted(out, key=repr)


def _compute(getter: Getter | None, item: Item, where: str) -> Any:
    """A getter's value for `item`. Getters read documents as they are: any error computing a
    value fails the scope, naming the object, entity and column (`where`)."""
    if getter is None:
        return None
    try:
        return getter(item)
    except SluiceError:
        raise
    except ValueRejected as exc:  # a getter that checks what it builds (JSON text, say)
        raise SyncError(f"{where}: {exc}") from None
    except Exception as exc:
        raise SyncError(f"{where}: cannot be computed from the metadata ({_reason(exc)})") from exc


def _coerced(sql_type: str, raw: Any, where: str) -> Any:
    try:
        return coerce(sql_type, raw)
    except ValueError as exc:
        raise SyncError(f"{where}: {exc}") from exc


def _checked(spec: Field, raw: Any, where: str) -> Any:
    """A column's value, coerced to its type and checked against its declaration."""
    value = _coerced(spec.type, raw, where)
    if value is None and not spec.nullable:
        raise SyncError(f"{where} is required but the metadata does not give it")
    if spec.choices and value is not None and value not in spec.choices:
        raise SyncError(f"{where} is {shown(value)}, not one of {', '.join(spec.choices)}")
    return value


def _reason(exc: Exception) -> str:
    """An unexpected error as a short reason (its text may quote a whole value)."""
    if isinstance(exc, RecursionError):
        return "the metadata is nested too deeply to walk"
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200] + '...' if len(text) > 200 else text}"


def _key(entity: Entity, values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(values[k] for k in entity.key)


def _diff(
    entity: Entity, desired: list[Row], existing: list[tuple[int, dict[str, Any]]]
) -> tuple[list[Row], list[Row], list[int], int]:
    """Creates, updates (row ids filled in), ids to delete, and the count of unchanged rows.
    Natural keys compare NULL-safely (None equals None); an existing key held by several rows
    keeps the oldest and deletes the others."""

    def identify(values: dict[str, Any], row_id: int | None) -> tuple[Any, ...]:
        return (row_id,) if entity.identity is not None else _key(entity, values)

    current: dict[tuple[Any, ...], tuple[int, dict[str, Any]]] = {}
    deletes: list[int] = []
    for row_id, values in existing:
        key = identify(values, row_id)
        if key in current:
            deletes.append(row_id)
        else:
            current[key] = (row_id, values)
    creates: list[Row] = []
    updates: list[Row] = []
    unchanged = 0
    seen: dict[tuple[Any, ...], Row] = {}
    for row in desired:
        key = identify(row.values, row.id)
        if key in seen:
            raise SyncError(
                f"{entity.name}: {row.item.path} and {seen[key].item.path} have the same key "
                f"({_show(entity, row)}); each must be unique in its scope"
            )
        seen[key] = row
        match = current.pop(key, None)
        if match is None:
            creates.append(row)
        else:
            row.id = match[0]
            if row.values != match[1]:
                updates.append(row)
            else:
                unchanged += 1
    deletes += [row_id for row_id, _ in current.values()]
    return creates, updates, sorted(deletes), unchanged


def _show(entity: Entity, row: Row) -> str:
    if entity.identity is not None:
        return f"id={row.id}"
    return ", ".join(f"{k}={row.values[k]!r}" for k in entity.key)
