"""``sluice sql``: a read-only query, printed as a table or streamed as JSON, NDJSON or CSV.

The streamed formats read the rows batch by batch from a server-side cursor and write each
batch straight to stdout, so memory stays bounded whatever the size of the result. Values
that JSON has no type for (dates, decimals, intervals ...) are written as their text form;
SQL NULL is ``null`` in JSON and an empty field in CSV.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.text import Text

from sluice import render
from sluice.commands.common import engine, out, usage_error

Batches = Iterator[list[tuple[Any, ...]]]


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    ndjson = "ndjson"


def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query.", metavar="QUERY")],
    output: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help="table (the default), json, csv or ndjson (one JSON object per line); csv, "
            "ndjson and json stream the rows.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    write: Annotated[
        bool,
        typer.Option(
            "--write",
            help="Run statements that change data (several, in one transaction) and print "
            "their status instead of rows.",
        ),
    ] = False,
) -> None:
    """Run a read-only query against the sluice database and print the rows.

    Without --write, writing is impossible whatever the text: the query runs as a cursor's
    single SELECT in a read-only transaction."""
    if as_json and output not in (None, Format.json):
        raise usage_error(f"--json and --format {output} contradict each other")
    chosen = Format.json if as_json else output or Format.table
    with engine() as opened:
        if write:
            statuses = opened.db.write_query(query)
            if chosen is Format.json:
                sys.stdout.write(json.dumps({"ok": True, "statements": statuses}) + "\n")
            else:
                out.print(Text("\n".join(statuses)))
            return
        if chosen is Format.table:
            columns, rows = opened.db.read_only_query(query)
            render.rows_table(out, columns, rows)
            return
        with opened.db.stream_query(query) as (columns, batches):
            _WRITERS[chosen](columns, _first_read(batches))


def _first_read(batches: Batches) -> Batches:
    """The same batches, the first one fetched now: a query that fails, fails before any
    output (a half-written document is worse than none)."""
    first = next(batches, None)
    return itertools.chain([first] if first else [], batches)


def write_ndjson(columns: list[str], batches: Batches) -> None:
    for batch in batches:
        sys.stdout.write("".join(_json_row(columns, row) + "\n" for row in batch))
    sys.stdout.flush()


def write_json(columns: list[str], batches: Batches) -> None:
    """One JSON array, written as the rows come."""
    sep = "[\n"
    for batch in batches:
        sys.stdout.write(sep + ",\n".join(_json_row(columns, row) for row in batch))
        sep = ",\n"
    sys.stdout.write("[]\n" if sep == "[\n" else "\n]\n")
    sys.stdout.flush()


def write_csv(columns: list[str], batches: Batches) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for batch in batches:
        writer.writerows([_csv_value(v) for v in row] for row in batch)
    sys.stdout.flush()


def _json_row(columns: list[str], row: tuple[Any, ...]) -> str:
    return json.dumps(dict(zip(columns, row, strict=True)), default=str, ensure_ascii=False)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return value


_WRITERS = {Format.json: write_json, Format.csv: write_csv, Format.ndjson: write_ndjson}
