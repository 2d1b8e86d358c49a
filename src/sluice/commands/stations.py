"""The station verbs of the Ichnaea recipe: ``sluice ichnaea stations
simulate|show|expire|upkeep`` and ``sluice ichnaea stats [--regions]``. `attach` mounts them
on the ``ichnaea`` group."""

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
    help="The station tables of the internal exporter: simulate the algorithm, show a row, "
    "expire stale stations.",
    no_args_is_help=True,
)

KindArg = Annotated[str, typer.Argument(metavar="KIND", help="wifi, blue or cell.")]


def attach(group: typer.Typer) -> None:
    """Mount ``stations`` and ``stats`` on `group` (the ``ichnaea`` command group)."""
    group.add_typer(stations, name="stations")
    group.command("stats")(stats)


def _day(text: str, option: str = "--today") -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"{option} is a day as YYYY-MM-DD, not {text!r}") from exc


TodayOpt = Annotated[
    str | None,
    typer.Option("--today", metavar="YYYY-MM-DD", help="The day of the run (default: today)."),
]
KeepDaysOpt = Annotated[
    int,
    typer.Option(
        "--keep-days",
        min=1,
        envvar="SLUICE_ICHNAEA_STATION_KEEP_DAYS",
        help="Stations not active for this many days expire.",
    ),
]
ChunkOpt = Annotated[
    int,
    typer.Option("--chunk", min=1, help="Rows one transaction looks at (keeps locks short)."),
]


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


def stats(
    regions: Annotated[
        bool,
        typer.Option(
            "--regions",
            help="Print the region counts instead: cells per radio, wifi and Bluetooth "
            "stations per region (rebuilt by the daily upkeep).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Print the daily counters of observations and new stations (cumulative totals), or with
    --regions the region counts."""
    from sluice.stations import stats as read

    if regions:
        _region_stats(as_json)
        return
    with engine() as opened:
        rows: list[dict[str, Any]] = read(opened.db)
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("no counters yet")
    for row in rows:
        say(f"{row['time']}  {row['name']:<12} {row['value']}")


def _region_stats(as_json: bool) -> None:
    from sluice.stations.reads import REGION_STAT_COLUMNS, region_stats

    with engine() as opened:
        rows = region_stats(opened.db)
    if as_json:
        print_json(rows)
    elif not rows:
        say("no region counts yet (the daily upkeep builds them)")
    else:
        render.rows_table(
            out, REGION_STAT_COLUMNS, ([r[c] for c in REGION_STAT_COLUMNS] for r in rows)
        )


@stations.command("expire")
def expire(
    before: Annotated[
        str | None,
        typer.Option(
            "--before",
            metavar="YYYY-MM-DD",
            help="Delete stations last active before this day (default: --keep-days ago).",
        ),
    ] = None,
    keep_days: KeepDaysOpt = 365,
    today: TodayOpt = None,
    chunk: ChunkOpt = 5000,
    as_json: JsonOpt = False,
) -> None:
    """Delete stale stations from every wifi, Bluetooth and cell table.

    Stale: last_seen (for a blocked station, its last block) before the day. Each table is
    walked in steps of --chunk keys, each step a short transaction under the shard's lock, so
    it never races a station batch; cell areas that lost a cell are recomputed."""
    from sluice.stations.upkeep import expire_stations, keep_from

    day = _day(today) if today else date.today()
    cutoff = _day(before, "--before") if before else keep_from(day, keep_days)
    with engine() as opened:
        result = expire_stations(opened.db, cutoff, chunk=chunk)
    if as_json:
        print_json(result.as_dict())
        return
    _said_expired(result.as_dict())


@stations.command("upkeep")
def upkeep(
    keep_days: KeepDaysOpt = 365,
    batch_keep_days: Annotated[
        int,
        typer.Option(
            "--batch-keep-days",
            min=1,
            envvar="SLUICE_ICHNAEA_BATCH_KEEP_DAYS",
            help="Records of applied batches older than this many days are deleted.",
        ),
    ] = 7,
    today: TodayOpt = None,
    chunk: ChunkOpt = 5000,
    as_json: JsonOpt = False,
) -> None:
    """The daily upkeep: expire stale stations, fold counters older than 2 years, delete
    datamap cells not modified for 365 days and batch records older than --batch-keep-days,
    rebuild the region counts (``sluice ichnaea stats --regions``).

    Run it once a day (cron or a systemd timer), e.g. ``17 0 * * * sluice ichnaea stations
    upkeep``."""
    from sluice.stations.upkeep import upkeep as run

    day = _day(today) if today else date.today()
    with engine() as opened:
        shown = run(
            opened.db, day, keep_days=keep_days, batch_keep_days=batch_keep_days, chunk=chunk
        ).as_dict()
    if as_json:
        print_json(shown)
        return
    _said_expired(shown["stations"])
    say(f"deleted {shown['stat']['deleted']} daily counter rows before {shown['stat']['before']}")
    say(
        f"deleted {shown['datamap']['deleted']} datamap cells not modified since "
        f"{shown['datamap']['before']}"
    )
    batches = shown["batches"]
    say(f"deleted {batches['deleted']} batch records applied before {batches['before']}")
    regions = shown["regions"]
    say(
        f"counted {regions['regions']} regions ({regions['written']} rows written, "
        f"{regions['deleted']} deleted)"
    )


def _said_expired(shown: dict[str, Any]) -> None:
    say(f"deleted {shown['stations']} stations last active before {shown['before']}")
    for table, count in shown["by_table"].items():
        say(f"  {table:<14} {count}")
    say(f"recomputed {shown['areas']} cell areas")
