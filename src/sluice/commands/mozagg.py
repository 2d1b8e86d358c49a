"""The mozaggregator verbs: ``sluice mozagg generate|export|backfill|query|days``.

The recipe's API (and with it Arrow, Iceberg and DuckDB) is imported by the verbs that run,
not when the command line starts.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

import typer

from sluice import render
from sluice.commands.common import JsonOpt, WorkersOpt, engine, out, print_json, progress, say
from sluice.commands.query import write_csv, write_json
from sluice.export.options import SourceOptions
from sluice.recipes.mozagg.tables import DEFAULT_SCHEMA, TYPES

if TYPE_CHECKING:
    from sluice.export.backfill import BackfillReport
    from sluice.recipes.mozagg import api

mozagg = typer.Typer(
    help="mozaggregator export: day tables (or pg_dump archives) → Parquet → Iceberg + DuckDB.",
    no_args_is_help=True,
)


class TypeChoice(StrEnum):
    submission_date = "submission_date"
    build_id = "build_id"
    both = "both"


class OneType(StrEnum):
    submission_date = "submission_date"
    build_id = "build_id"


class QueryFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _day(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not a day (YYYY-MM-DD)") from exc


DayArg = Annotated[date, typer.Option(parser=_day, metavar="YYYY-MM-DD", help="The day.")]
SourceUrlOpt = Annotated[
    str | None,
    typer.Option(metavar="URL", help="Source database (default: sluice's own database)."),
]
SourceSchemaOpt = Annotated[str, typer.Option(metavar="NAME", help="Schema of the source tables.")]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", metavar="DIR", help="Parquet folder (default: <state_dir>/export)."),
]
LakeOpt = Annotated[
    Path | None,
    typer.Option("--lake", metavar="DIR", help="Iceberg lake folder (default: <state_dir>/lake)."),
]
WarehouseOpt = Annotated[
    Path | None,
    typer.Option(
        "--warehouse",
        metavar="FILE",
        help="DuckDB warehouse file (default: <state_dir>/warehouse.duckdb).",
    ),
]
StringOpt = Annotated[
    bool,
    typer.Option("--aggregate-as-string", help="Add the seed's bracketed aggregate string."),
]


@dataclass(frozen=True)
class ExportArgs:
    """The options `export` and `backfill` share."""

    dump: Path | None
    as_string: bool
    places: api.Places
    as_json: bool


def _shared_options(dump_help: str) -> list[inspect.Parameter]:
    dump = Annotated[Path | None, typer.Option("--from-dump", metavar="DIR", help=dump_help)]
    shared: list[tuple[str, Any, Any]] = [
        ("from_dump", dump, None),
        ("aggregate_as_string", StringOpt, False),
        ("source_url", SourceUrlOpt, None),
        ("source_schema", SourceSchemaOpt, DEFAULT_SCHEMA),
        ("out_dir", OutOpt, None),
        ("lake", LakeOpt, None),
        ("warehouse", WarehouseOpt, None),
        ("as_json", JsonOpt, False),
    ]
    return [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)
        for name, kind, default in shared
    ]


def export_options(dump_help: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a verb the shared export options; it receives them as ``args: ExportArgs``."""

    def wrap(verb: Callable[..., None]) -> Callable[..., None]:
        hints = get_type_hints(verb, include_extras=True)
        own = [
            p.replace(annotation=hints[p.name])
            for p in inspect.signature(verb).parameters.values()
            if p.name != "args"
        ]
        shared = _shared_options(dump_help)

        @functools.wraps(verb)
        def run(**values: Any) -> None:
            from sluice.recipes.mozagg import api

            places = api.Places(
                source=SourceOptions(
                    url=values.pop("source_url"), schema=values.pop("source_schema")
                ),
                out_dir=values.pop("out_dir"),
                lake_dir=values.pop("lake"),
                warehouse=values.pop("warehouse"),
            )
            args = ExportArgs(
                dump=values.pop("from_dump"),
                as_string=values.pop("aggregate_as_string"),
                places=places,
                as_json=values.pop("as_json"),
            )
            verb(args=args, **values)

        parameters = [*own, *shared]
        run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
        return run

    return wrap


def _show(report: BackfillReport, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
    else:
        plan = report.plan
        say(
            f"{plan.feed}: {plan.days} days, {len(plan.queued)} to export, "
            f"{plan.done} exported before"
        )
        if report.run.loads:
            render.run_report(out, report.run)
    if not report.ok:
        raise typer.Exit(1)


@mozagg.command("generate")
def generate(
    start: Annotated[date, typer.Option(parser=_day, metavar="YYYY-MM-DD", help="First day.")],
    days: Annotated[int, typer.Option(min=1, metavar="N", help="Number of days.")] = 1,
    tables_per_day: Annotated[
        int, typer.Option(min=1, metavar="K", help="Tables per day and type.")
    ] = 4,
    rows_per_table: Annotated[int, typer.Option(min=0, metavar="R", help="Rows per table.")] = 1000,
    kind: Annotated[TypeChoice, typer.Option("--type", help="Aggregate type(s).")] = (
        TypeChoice.submission_date
    ),
    schema: SourceSchemaOpt = DEFAULT_SCHEMA,
    dump: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Also write pg_dump archives: DIR/<type>/<YYYYMMDD>."),
    ] = None,
) -> None:
    """Create realistic mozaggregator day tables in a PostgreSQL schema."""
    from sluice.recipes.mozagg import api

    kinds = TYPES if kind is TypeChoice.both else (kind.value,)
    with engine() as opened:
        report = api.generate_source(
            opened,
            start=start,
            days=days,
            tables_per_day=tables_per_day,
            rows_per_table=rows_per_table,
            kinds=kinds,
            source=SourceOptions(schema=schema),
            dump=dump,
        )
    say(f"{len(report.tables)} tables, {report.rows:,} rows in schema {schema}")
    for folder in report.dumps:
        say(f"archive {folder}")


@mozagg.command("export")
@export_options("Read a pg_dump directory archive instead.")
def export(
    kind: Annotated[OneType, typer.Option("--type", help="Aggregate type.")],
    day: DayArg,
    *,
    args: ExportArgs,
) -> None:
    """Export one day (again if done before) to Parquet, the lake and the warehouse."""
    from sluice.recipes.mozagg import api

    with engine() as opened, progress() as bars:
        report = api.export_day(
            opened,
            kind.value,
            day,
            places=args.places,
            as_string=args.as_string,
            dump=args.dump,
            progress=bars,
        )
    _show(report, args.as_json)


@mozagg.command("backfill")
@export_options("Read archives DIR/<type>/<YYYYMMDD> instead.")
def backfill(
    kind: Annotated[OneType, typer.Option("--type", help="Aggregate type.")],
    start: Annotated[date, typer.Option(parser=_day, metavar="YYYY-MM-DD", help="First day.")],
    end: Annotated[
        date, typer.Option(parser=_day, metavar="YYYY-MM-DD", help="Day after the last.")
    ],
    workers: WorkersOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Export finished days again.")] = False,
    refresh_changed: Annotated[
        bool,
        typer.Option("--refresh-changed", help="Export again the days whose source changed."),
    ] = False,
    *,
    args: ExportArgs,
) -> None:
    """Export every day of a range not exported yet; resumable, shared by workers."""
    from sluice.recipes.mozagg import api

    with engine() as opened, progress() as bars:
        report = api.backfill_days(
            opened,
            kind.value,
            start,
            end,
            places=args.places,
            workers=workers,
            force=force,
            refresh_changed=refresh_changed,
            as_string=args.as_string,
            dump_root=args.dump,
            progress=bars,
        )
    _show(report, args.as_json)


@mozagg.command("query")
def query(
    text: Annotated[str, typer.Argument(metavar="SQL", help="DuckDB SQL.")],
    output: Annotated[
        QueryFormat, typer.Option("--format", help="table, csv or json.")
    ] = QueryFormat.table,
    warehouse: WarehouseOpt = None,
) -> None:
    """Run DuckDB SQL on the warehouse."""
    from sluice.recipes.mozagg import api

    with engine() as opened:
        columns, rows = api.query(opened, text, places=api.Places(warehouse=warehouse))
    if output is QueryFormat.table:
        render.rows_table(out, columns, rows)
    elif output is QueryFormat.csv:
        write_csv(columns, iter([rows]))
    else:
        write_json(columns, iter([rows]))


@mozagg.command("days")
def days(
    kind: Annotated[OneType | None, typer.Option("--type", help="Only this type's days.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The exported days by status, or one type's days one by one."""
    from sluice.recipes.mozagg import api

    with engine() as opened:
        if kind is None:
            counts = api.days_by_status(opened)
            if as_json:
                print_json([{"feed": f, "status": s, "days": n} for f, s, n in counts])
            else:
                render.rows_table(out, ["feed", "status", "days"], counts)
            return
        records = api.partitions(opened, kind.value)
    if as_json:
        print_json([r.as_dict() for r in records])
        return
    render.rows_table(
        out,
        ["day", "outcome", "tables", "rows", "output", "rejected", "bytes", "snapshot", "exports"],
        [
            (
                r.day,
                r.outcome,
                len(r.source_tables),
                r.source_rows,
                r.output_rows,
                r.rejected_rows,
                r.bytes,
                r.snapshot_id,
                r.exports,
            )
            for r in records
        ],
    )
