"""The Cubic verbs (``sluice cubic ...``, ``sluice lake ...``) as one typed Python API; the
commands are thin shells over these functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluice.errors import ConfigError
from sluice.ledger.repository import Ledger
from sluice.recipes.cubic.options import TableDeclaration
from sluice.recipes.cubic.tables import CUBIC_LAYOUT
from sluice.route.moves import move_with_dfm
from sluice.route.options import KIND
from sluice.route.repository import RouteLedger

if TYPE_CHECKING:
    import pyarrow as pa

    from sluice.api import Engine
    from sluice.lake import TableInfo

#: Where Incoming's vendor folders are (tables are registered below them).
VENDOR_PREFIXES = ("cubic/ods_qlik/", "cubic/dmap/", "cubic/kafka/")


@dataclass(frozen=True)
class TableRow:
    """A registered table as ``sluice cubic tables list`` shows it."""

    name: str
    prefix: str
    kind: str
    raw: bool
    snapshot_key: str
    current_view: bool
    active: bool
    snapshot: str | None
    waiting: int
    archived: int
    errored: int
    loads: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CubicStatus:
    """``sluice cubic status``: tables, loads by status, lake tables, unknown prefixes."""

    tables: list[TableRow]
    loads: dict[str, dict[str, int]]
    lake: list[dict[str, Any]]
    unknown_prefixes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tables": [t.as_dict() for t in self.tables],
            "loads": self.loads,
            "lake": self.lake,
            "unknown_prefixes": self.unknown_prefixes,
        }


def add_table(engine: Engine, declared: TableDeclaration) -> TableRow:
    """Register a table (again: update it; an inactive table stays inactive)."""
    with engine.db.connection(autocommit=True) as conn:
        engine.cubic_flow.register(Ledger(conn), declared)
    return _table(engine, declared.name)


def tables(engine: Engine) -> list[TableRow]:
    with engine.db.connection(autocommit=True) as conn:
        rows = RouteLedger(conn).tables_overview(KIND, KIND)
    found = []
    for name, active, options, snapshot, waiting, archived, errored, loads in rows:
        decl = TableDeclaration.from_options(name, options)
        found.append(
            TableRow(
                name=name,
                prefix=decl.prefix,
                kind=decl.kind,
                raw=decl.raw,
                snapshot_key=decl.snapshot_key,
                current_view=decl.current_view,
                active=bool(active),
                snapshot=None if snapshot is None else snapshot.isoformat(),
                waiting=int(waiting),
                archived=int(archived),
                errored=int(errored),
                loads=int(loads),
            )
        )
    return found


def _table(engine: Engine, name: str) -> TableRow:
    for row in tables(engine):
        if row.name == name:
            return row
    known = ", ".join(t.name for t in tables(engine)) or "none"
    raise ConfigError(f"there is no cubic table {name!r} (registered: {known})")


def set_active(engine: Engine, name: str, active: bool) -> TableRow:
    """Activate or deactivate a table: an inactive one is neither scanned nor advanced at any
    step (its loads in hand finish)."""
    _table(engine, name)
    if active:
        engine.resume(name)
    else:
        engine.pause(name)
    return _table(engine, name)


def loads(
    engine: Engine, *, table: str | None = None, status: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    if table is not None:
        _table(engine, table)
    with engine.db.connection(autocommit=True) as conn:
        return RouteLedger(conn).loads(KIND, KIND, table=table, status=status, limit=limit)


def unknown_prefixes(engine: Engine, registered: Sequence[TableRow]) -> list[str]:
    """Folders of Incoming's vendor prefixes that no registered table (nor its ``__ct``
    sibling) claims: their files are never scanned."""
    known: set[str] = set()
    for row in registered:
        decl = TableDeclaration(row.name, row.prefix, kind=row.kind)
        known.update(CUBIC_LAYOUT.prefixes(decl))
    incoming = engine.cubic_flow.places.incoming
    cut = len(incoming.full(""))
    found = []
    for vendor in VENDOR_PREFIXES:
        for folder in incoming.store.list_dirs(incoming.full(vendor)):
            relative = folder[cut:]
            if relative not in known:
                found.append(relative)
    return sorted(found)


def status(engine: Engine) -> CubicStatus:
    registered = tables(engine)
    with engine.db.connection(autocommit=True) as conn:
        counts = RouteLedger(conn).status_counts(KIND, KIND)
    by_table: dict[str, dict[str, int]] = {}
    for name, state, n in counts:
        by_table.setdefault(str(name), {})[str(state)] = int(n)
    return CubicStatus(
        tables=registered,
        loads=by_table,
        lake=[t.__dict__ for t in lake_tables(engine)],
        unknown_prefixes=unknown_prefixes(engine, registered),
    )


def retry(engine: Engine, load_ids: Sequence[int]) -> list[str]:
    """Put errored loads' files back in Incoming (with their ``.dfm``) under their original
    keys; the next scan records them as new loads. Returns the keys moved back."""
    found = {row["id"]: row for row in loads(engine, status="errored", limit=1_000_000)}
    missing = [i for i in load_ids if i not in found]
    if missing:
        raise ConfigError(f"load {missing[0]} is not an errored cubic load")
    places = engine.cubic_flow.places
    moved = []
    for load_id in load_ids:
        row = found[load_id]
        if not row["error_key"]:
            raise ConfigError(f"load {load_id} has no file in Error")
        ods = row["key"].startswith("cubic/ods_qlik/")
        move_with_dfm(places.error, row["error_key"], places.incoming, row["key"], dfm=ods)
        moved.append(str(row["key"]))
    return moved


# -- the lake -------------------------------------------------------------------------------------


def lake_tables(engine: Engine) -> list[TableInfo]:
    return engine.cubic_flow.lake.tables()


def lake_scan(
    engine: Engine, table: str, *, where: str | None = None, limit: int | None = None
) -> pa.RecordBatchReader:
    return engine.cubic_flow.lake.scan(table, where=where, limit=limit)
