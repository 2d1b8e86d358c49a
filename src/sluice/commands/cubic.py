"""The Cubic verbs: ``sluice cubic tables add|list|activate|deactivate``, ``sluice cubic
status``, ``sluice cubic loads`` and ``sluice cubic retry``.

Tables are registered on the ledger (or declared in ``[cubic.tables.NAME]`` of sluice.toml);
``sluice run --once`` then scans Incoming, ingests into the lake and moves every file to
Archive or Error.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from sluice.commands.common import JsonOpt, engine, out, print_json, say
from sluice.recipes.cubic.options import DEFAULT_SNAPSHOT_KEY, TableDeclaration

cubic = typer.Typer(
    help="Cubic Incoming routing: registered tables, their loads, the lake they feed.",
    no_args_is_help=True,
)
tables_app = typer.Typer(help="The registered tables (Incoming prefixes).", no_args_is_help=True)
cubic.add_typer(tables_app, name="tables")


class Kind(StrEnum):
    ODS = "ods"
    DMAP = "dmap"
    STREAM = "stream"


NameArg = Annotated[str, typer.Argument(help="The table's name.", metavar="NAME")]


@tables_app.command("add")
def tables_add(
    name: NameArg,
    prefix: Annotated[
        str,
        typer.Option(
            "--prefix",
            help="Its prefix in Incoming, ending in '/': cubic/ods_qlik/EDW.SAMPLE/.",
            metavar="PREFIX",
        ),
    ],
    kind: Annotated[Kind, typer.Option("--kind", help="ods, dmap or stream.")] = Kind.ODS,
    snapshot_key: Annotated[
        str,
        typer.Option(
            "--snapshot-key", help="The file that starts a snapshot (ODS).", metavar="FILE"
        ),
    ] = DEFAULT_SNAPSHOT_KEY,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw/--typed",
            help="Raw: every lake column a string; typed: the .dfm's types (ODS).",
        ),
    ] = True,
    current_view: Annotated[
        bool,
        typer.Option("--current-view", help="Keep the table's current state in PostgreSQL."),
    ] = False,
    lake: Annotated[
        bool,
        typer.Option("--lake/--no-lake", help="Write the files to the lake, or only route them."),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Register a table (again: update its declaration)."""
    from sluice.recipes.cubic import api

    declared = TableDeclaration(
        name=name,
        prefix=prefix,
        kind=kind.value,
        snapshot_key=snapshot_key,
        raw=raw,
        current_view=current_view,
        lake=lake,
    )
    with engine() as opened:
        row = api.add_table(opened, declared)
    if as_json:
        print_json(row.as_dict())
    else:
        say(f"table {row.name}: {row.kind} at {row.prefix} ({'raw' if row.raw else 'typed'})")


@tables_app.command("list")
def tables_list(as_json: JsonOpt = False) -> None:
    """List the registered tables with their snapshot and loads."""
    from sluice.recipes.cubic import api

    with engine() as opened:
        rows = api.tables(opened)
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    table = Table("table", "kind", "prefix", "active", "snapshot", "waiting", "archived", "errored")
    for r in rows:
        table.add_row(
            r.name,
            r.kind + ("" if r.raw else " typed"),
            r.prefix,
            "yes" if r.active else "no",
            r.snapshot or "-",
            str(r.waiting),
            str(r.archived),
            str(r.errored),
        )
    out.print(table)


def _set(name: str, active: bool, as_json: bool) -> None:
    from sluice.recipes.cubic import api

    with engine() as opened:
        row = api.set_active(opened, name, active)
    if as_json:
        print_json(row.as_dict())
    else:
        say(f"table {row.name} {'activated' if row.active else 'deactivated'}")


@tables_app.command("activate")
def tables_activate(name: NameArg, as_json: JsonOpt = False) -> None:
    """Scan and advance a table again."""
    _set(name, True, as_json)


@tables_app.command("deactivate")
def tables_deactivate(name: NameArg, as_json: JsonOpt = False) -> None:
    """Stop scanning and advancing a table (its loads in hand finish)."""
    _set(name, False, as_json)


@cubic.command("status")
def status(as_json: JsonOpt = False) -> None:
    """Show the tables, their loads by status and the lake's tables."""
    from sluice.recipes.cubic import api

    with engine() as opened:
        found = api.status(opened)
    if as_json:
        print_json(found.as_dict())
        return
    table = Table("table", "active", "snapshot", "loads by status")
    for r in found.tables:
        counts = found.loads.get(r.name, {})
        text = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"
        table.add_row(r.name, "yes" if r.active else "no", r.snapshot or "-", text)
    out.print(table)
    lake = Table("lake table", "rows", "partitions", "snapshots")
    for t in found.lake:
        lake.add_row(t["name"], str(t["rows"]), str(t["partitions"]), str(t["snapshots"]))
    out.print(lake)
    if found.unknown_prefixes:
        say(
            f"{len(found.unknown_prefixes)} prefix(es) in Incoming belong to no table: "
            + ", ".join(found.unknown_prefixes)
        )


@cubic.command("loads")
def loads(
    table: Annotated[
        str | None, typer.Option("--table", help="Only this table's loads.", metavar="NAME")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only loads in this status.", metavar="STATUS")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List loads with their snapshot, lake write, Archive or Error key and reason."""
    from sluice.recipes.cubic import api

    with engine() as opened:
        rows = api.loads(opened, table=table, status=status, limit=limit)
    if as_json:
        print_json(rows)
        return
    view = Table("id", "key", "status", "rows", "rejects", "moved to", "reason")
    for r in rows:
        view.add_row(
            str(r["id"]),
            r["key"],
            r["status"],
            "-" if r["rows_written"] is None else str(r["rows_written"]),
            str(r["rejects"] or 0),
            r["archive_key"] or r["error_key"] or "-",
            r["reason"] or "",
        )
    out.print(view)


@cubic.command("retry")
def retry(
    load_ids: Annotated[list[int], typer.Argument(help="Errored loads.", metavar="LOAD_ID...")],
    as_json: JsonOpt = False,
) -> None:
    """Put errored loads' files back in Incoming, for the next scan to load them again."""
    from sluice.recipes.cubic import api

    with engine() as opened:
        keys = api.retry(opened, load_ids)
    if as_json:
        print_json({"ok": True, "moved_back": keys})
    else:
        say(f"{len(keys)} file(s) back in Incoming: {', '.join(keys)}")
