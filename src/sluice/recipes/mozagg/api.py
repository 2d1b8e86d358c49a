"""mozaggregator verbs over the engine: generate a source, export a day, backfill a range of
days, query the warehouse, show the days by status. The export machinery (`sluice.export`),
the lake and the warehouse do the work; this module only says where things are by default:
the Parquet under ``<state_dir>/export``, the lake under ``<state_dir>/lake``, the warehouse
in ``<state_dir>/warehouse.duckdb``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sluice.api import Engine
from sluice.export.backfill import BackfillReport, backfill
from sluice.export.dump import write_dump
from sluice.export.flow import PARTITION, ExportFlow, days_between
from sluice.export.options import ExportDeclaration
from sluice.export.repository import ExportLedger, PartitionRecord
from sluice.export.source import SourceDatabase, SourceOptions
from sluice.recipes.mozagg import generate as gen
from sluice.recipes.mozagg.tables import DEFAULT_SCHEMA, RECIPE, RECIPES, TYPES, feed_name, spec
from sluice.runtime.progress import Progress
from sluice.warehouse import Warehouse, WarehouseOptions

__all__ = [
    "Places",
    "backfill_days",
    "days_by_status",
    "export_day",
    "generate_source",
    "partitions",
    "query",
]

#: The source of a generated mozaggregator: its schema in sluice's own database.
DEFAULT_SOURCE = SourceOptions(schema=DEFAULT_SCHEMA)


@dataclass(frozen=True)
class Places:
    """Where an export reads and writes (None: the defaults under the state directory)."""

    source: SourceOptions = DEFAULT_SOURCE
    out_dir: Path | None = None
    lake_dir: Path | None = None
    warehouse: Path | None = None

    def resolved(self, engine: Engine) -> Places:
        state = engine.settings.state_dir
        return replace(
            self,
            out_dir=self.out_dir or state / "export",
            lake_dir=self.lake_dir or state / "lake",
            warehouse=self.warehouse or state / "warehouse.duckdb",
        )


def _warehouse(engine: Engine, places: Places) -> Warehouse:
    path = places.resolved(engine).warehouse
    assert path is not None
    return Warehouse(WarehouseOptions(path))


@contextmanager
def _flow(engine: Engine) -> Iterator[ExportFlow]:
    """An export flow publishing each feed's days where its declaration says."""
    flow = ExportFlow(engine.db, recipes=RECIPES)
    try:
        yield flow
    finally:
        flow.close()


def _declaration(engine: Engine, kind: str, places: Places, as_string: bool) -> ExportDeclaration:
    here = places.resolved(engine)
    assert here.out_dir is not None and here.lake_dir is not None
    assert here.warehouse is not None
    return ExportDeclaration(
        name=feed_name(kind),
        recipe=RECIPE,
        kind=kind,
        out_dir=here.out_dir.resolve(),
        source=here.source,
        as_string=as_string,
        lake_dir=here.lake_dir.resolve(),
        warehouse=here.warehouse.resolve(),
    )


def backfill_days(
    engine: Engine,
    kind: str,
    start: date,
    end: date,
    *,
    places: Places = Places(),
    workers: int | None = None,
    force: bool = False,
    refresh_changed: bool = False,
    as_string: bool = False,
    dump_root: Path | None = None,
    progress: Progress | None = None,
) -> BackfillReport:
    """Export every day of [start, end) of one aggregate type not exported yet (all of them
    with `force`; those whose source changed, too, with `refresh_changed`)."""
    spec(kind)
    options = engine.settings.runner
    if workers is not None:
        options = replace(options, workers=workers)
    command = f"mozagg backfill --type {kind} --start {start} --end {end}"
    with _flow(engine) as flow:
        return backfill(
            engine.db,
            flow,
            _declaration(engine, kind, places, as_string),
            days_between(start, end),
            options,
            command=command,
            force=force,
            refresh_changed=refresh_changed,
            dump_root=dump_root.resolve() if dump_root else None,
            progress=progress,
        )


def export_day(
    engine: Engine,
    kind: str,
    day: date,
    *,
    places: Places = Places(),
    as_string: bool = False,
    dump: Path | None = None,
    progress: Progress | None = None,
) -> BackfillReport:
    """Export one day (again if it was exported before), from the source or from its
    directory archive `dump`."""
    return backfill_days(
        engine,
        kind,
        day,
        day + timedelta(days=1),
        places=places,
        force=True,
        as_string=as_string,
        dump_root=dump,
        progress=progress,
        workers=1,
    )


def generate_source(
    engine: Engine,
    *,
    start: date,
    days: int,
    tables_per_day: int,
    rows_per_table: int,
    kinds: tuple[str, ...] = TYPES,
    source: SourceOptions = DEFAULT_SOURCE,
    dump: Path | None = None,
) -> gen.GenerateReport:
    """Write a realistic source; with `dump`, also a directory archive of each day by the
    real pg_dump, at ``<dump>/<type>/<YYYYMMDD>``."""
    database = SourceDatabase(source, engine.db)
    with database.connect() as reader:
        report = gen.generate(
            reader,
            start=start,
            days=days,
            tables_per_day=tables_per_day,
            rows_per_table=rows_per_table,
            kinds=kinds,
        )
    if dump is not None:
        url = source.url or engine.db.url
        for offset in range(days):
            day = start + timedelta(days=offset)
            for kind in kinds:
                folder = dump / kind / day.strftime("%Y%m%d")
                write_dump(url, source.schema, gen.day_tables(kind, day, tables_per_day), folder)
                report.dumps.append(str(folder))
    return report


def partitions(
    engine: Engine, kind: str, start: date | None = None, end: date | None = None
) -> list[PartitionRecord]:
    """The partition rows of an aggregate type's days."""
    with engine.db.connection() as conn:
        return ExportLedger(conn).partitions(feed_name(kind), start, end)


def days_by_status(engine: Engine) -> list[tuple[str, str, int]]:
    """(feed, status, days) of every export feed; ``empty`` days apart from ``loaded``."""
    with engine.db.connection() as conn:
        return ExportLedger(conn).day_statuses(PARTITION.kind)


def query(
    engine: Engine, text: str, *, places: Places = Places()
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """DuckDB SQL on the warehouse."""
    return _warehouse(engine, places).query(text)
