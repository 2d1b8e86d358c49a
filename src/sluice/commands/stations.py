"""The station verbs of the Ichnaea recipe: ``sluice ichnaea stations simulate|show`` and
``sluice ichnaea stats``. `attach` mounts them on the ``ichnaea`` group."""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Annotated, Any

import typer

from sluice import render
from sluice.commands.common import JsonOpt, engine, out, print_json, say
from sluice.errors import ConfigError

stations = typer.Typer(
    help="The station tables of the internal exporter: simulate the algorithm, show a row.",
    no_args_is_help=True,
)

KindArg = Annotated[str, typer.Argument(metavar="KIND", help="wifi, blue or cell.")]


def attach(group: typer.Typer) -> None:
    """Mount ``stations`` and ``stats`` on `group` (the ``ichnaea`` command group)."""
    group.add_typer(stations, name="stations")
    group.command("stats")(stats)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--today is a day as YYYY-MM-DD, not {text!r}") from exc


@stations.command("simulate")
def simulate(
    kind: Annotated[str, typer.Option("--kind", help="wifi, blue or cell.")],
    today: Annotated[
        str, typer.Option("--today", metavar="YYYY-MM-DD", help="The day of the run.")
    ],
) -> None:
    """Run the station algorithm on JSON from stdin and print the transition; no database.

    Input: {"station": <row before> | null, "observations": [{"key", "lat", "lon",
    "accuracy", "age", "speed", "signal", "source", ...}]}. Output: {"transition": ...,
    "station": <row after> | null}."""
    from sluice.stations import simulate as run

    text = sys.stdin.read()
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"stdin is not JSON: {exc}") from exc
    print_json(run(kind, document, _day(today)))


@stations.command("show")
def show(
    kind: KindArg,
    key: Annotated[str, typer.Argument(metavar="KEY", help="A MAC, or radio:mcc:mnc:lac:cid.")],
    as_json: JsonOpt = False,
) -> None:
    """Print one station's row."""
    from sluice.stations import show_station
    from sluice.stations.simulate import station_to_json

    try:
        with engine() as opened:
            found = show_station(opened.db, kind, key)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if found is None:
        raise ConfigError(f"there is no {kind} station {key}")
    row = station_to_json(found, kind)
    if as_json:
        print_json(row)
    else:
        render.summary(out, f"{kind} {key}", row)


def stats(as_json: JsonOpt = False) -> None:
    """Print the daily counters of observations and new stations (cumulative totals)."""
    from sluice.stations import stats as read

    with engine() as opened:
        rows: list[dict[str, Any]] = read(opened.db)
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("no counters yet")
    for row in rows:
        say(f"{row['time']}  {row['name']:<12} {row['value']}")
