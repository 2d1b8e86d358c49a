"""The lake verbs: ``sluice lake tables`` and ``sluice lake scan TABLE``.

They read the lake of the Cubic routing (``[cubic] lake``, its catalog in the ledger's
PostgreSQL), through pyiceberg.
"""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from sluice.commands.common import JsonOpt, engine, out, print_json

lake = typer.Typer(
    help="The lake's Iceberg tables: list them, read their rows.", no_args_is_help=True
)


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


@lake.command("tables")
def tables(as_json: JsonOpt = False) -> None:
    """List the lake's tables with rows, partitions and snapshots."""
    from sluice.recipes.cubic import api

    with engine() as opened:
        found = api.lake_tables(opened)
    if as_json:
        print_json([t.__dict__ for t in found])
        return
    view = Table("table", "rows", "partitions", "snapshots", "files", "snapshot id")
    for t in found:
        view.add_row(
            t.name,
            str(t.rows),
            str(t.partitions),
            str(t.snapshots),
            str(t.files),
            str(t.snapshot_id or "-"),
        )
    out.print(view)


@lake.command("scan")
def scan(
    table: Annotated[str, typer.Argument(help="The lake table.", metavar="TABLE")],
    where: Annotated[
        str | None,
        typer.Option(
            "--where", help="A row filter: \"sample_id > 2 and snapshot = '…'\".", metavar="EXPR"
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=0, help="At most this many rows.")
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="table, csv or json (one object a line).")
    ] = Format.TABLE,
) -> None:
    """Print a lake table's rows."""
    from sluice.recipes.cubic import api

    with engine() as opened:
        reader = api.lake_scan(opened, table, where=where, limit=limit)
        names = reader.schema.names
        if fmt is Format.TABLE:
            view = Table(*names)
            for batch in reader:
                for row in batch.to_pylist():
                    view.add_row(*("" if row[n] is None else str(row[n]) for n in names))
            out.print(view)
            return
        writer: Any = csv.writer(sys.stdout) if fmt is Format.CSV else None
        if writer is not None:
            writer.writerow(names)
        for batch in reader:
            for row in batch.to_pylist():
                if writer is not None:
                    writer.writerow(["" if row[n] is None else row[n] for n in names])
                else:
                    sys.stdout.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
        sys.stdout.flush()
