"""The Ichnaea verbs: ``sluice ichnaea serve|status|fanout|redrive`` and ``sluice ichnaea
dead-letters list|redrive`` here; ``keys`` (`ichnaea_keys`), ``exports`` (`ichnaea_exports`),
``stations`` and ``stats`` (`stations`) mounted on the group.

The intake's settings come from the ``[ichnaea]`` section of the settings when it is there,
else from the environment: ``SLUICE_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``),
``SLUICE_ICHNAEA_REDIS_PREFIX`` (default ``sluice:ichnaea``), ``SLUICE_ICHNAEA_MAX_BACKLOG``,
``SLUICE_ICHNAEA_RETRY_AFTER``.

The recipe's API (and with it Starlette and the Redis client) is imported by the verbs that
run, not when the command line starts.

Until the group is registered in the root command, ``python -m sluice.commands.ichnaea ARGS``
runs ``sluice ichnaea ARGS`` with the same global handling of errors.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from sluice import render
from sluice.commands.common import (
    HostOpt,
    JsonOpt,
    PortOpt,
    TokenOpt,
    engine,
    out,
    print_json,
    say,
    settings,
)
from sluice.commands.ichnaea_exports import attach as attach_exports
from sluice.commands.ichnaea_keys import attach as attach_keys
from sluice.commands.stations import attach as attach_stations
from sluice.errors import ConfigError
from sluice.recipes.ichnaea.options import IchnaeaOptions

log = logging.getLogger("sluice.cli")

ichnaea = typer.Typer(
    help="Ichnaea submissions: the submit API with API keys and sampling → the intake queue "
    "→ fan-out to the export configs.",
    no_args_is_help=True,
)
attach_keys(ichnaea)
attach_exports(ichnaea)
dead_app = typer.Typer(help="Reports an export gave up on, with the reason.", no_args_is_help=True)
ichnaea.add_typer(dead_app, name="dead-letters")
# the internal exporter's verbs: `sluice ichnaea stations simulate|show|expire|upkeep`,
# `sluice ichnaea stats [--regions]`
attach_stations(ichnaea)


def options() -> IchnaeaOptions:
    """The intake's settings: ``[ichnaea]`` of sluice.toml, over which the environment wins."""
    return settings().ichnaea


# -- serve and status -----------------------------------------------------------------------------


@ichnaea.command("serve")
def serve(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8420,
    token: TokenOpt = None,
) -> None:
    """Serve the submit API (/v1/submit, /v1/geosubmit, /v2/geosubmit) with the service.

    The submit routes are open to all; a token guards the rest of the service."""
    from sluice.recipes.ichnaea import api
    from sluice.service.server import serve as run_server

    run_server(
        settings(),
        host=host,
        port=port,
        token=token or None,
        extensions=[api.extension(options())],
        what="the Ichnaea submit API",
    )


@ichnaea.command("status")
def status(as_json: JsonOpt = False) -> None:
    """The intake's counters, depth and age, and each export's queue and delivery counts."""
    from sluice.recipes.ichnaea import api

    with engine() as opened:
        report = api.full_status(opened.db, options())
    if as_json:
        print_json(report)
        return
    intake = {k: v for k, v in report.items() if k not in ("exports", "warning")}
    age = intake["oldest_age_seconds"]
    intake["oldest_age_seconds"] = "-" if age is None else f"{age:.1f}"
    render.summary(out, "ichnaea intake", intake)
    if report["warning"]:
        say(f"warning: {report['warning']}")
    if report["exports"]:
        _exports_table(report["exports"])


def _exports_table(rows: list[dict[str, object]]) -> None:
    columns = (
        "name",
        "kind",
        "depth",
        "in_hand",
        "oldest_age_seconds",
        "delivered",
        "retried",
        "dead_lettered",
        "dead_letters",
        "skipped",
    )
    table = render.titled_table("exports", columns, right=columns[2:])
    for row in rows:
        age = row["oldest_age_seconds"]
        shown = {**row, "oldest_age_seconds": "-" if age is None else f"{age:.1f}"}
        table.add_row(*(render.literal(shown[c]) for c in columns))
    out.print(table)


# -- fan-out --------------------------------------------------------------------------------------


@ichnaea.command("fanout")
def fanout(
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="Deliver everything queued now (small batches too), then exit."
        ),
    ] = False,
    until_idle: Annotated[
        float | None,
        typer.Option(
            "--until-idle",
            min=0,
            metavar="SECONDS",
            help="Exit after this long with nothing to do.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fan accepted reports out to every export config and deliver them, until stopped."""
    from sluice.commands.service import GracefulStop
    from sluice.recipes.ichnaea import api

    if once and until_idle is not None:
        raise ConfigError("give --once or --until-idle, not both")
    resolved = settings()
    with GracefulStop("stopping: finishing the batch in hand") as stopping, engine() as opened:
        report = api.run_fanout(
            opened.db, options(), stopping.stop, s3=resolved.s3, once=once, until_idle=until_idle
        )
    if as_json:
        print_json(report.as_dict())
    else:
        render.summary(out, "ichnaea fan-out", report.as_dict())


@ichnaea.command("redrive")
def redrive(
    name: Annotated[str, typer.Argument(metavar="EXPORT", help="The export.")],
    as_json: JsonOpt = False,
) -> None:
    """Send the dead letters of an export again (back onto its queue)."""
    _redrive(name, as_json)


@dead_app.command("redrive")
def dead_redrive(
    name: Annotated[str, typer.Argument(metavar="EXPORT", help="The export.")],
    as_json: JsonOpt = False,
) -> None:
    """Send the dead letters of an export again (as sluice ichnaea redrive does)."""
    _redrive(name, as_json)


def _redrive(name: str, as_json: bool) -> None:
    from sluice.recipes.ichnaea import api

    with engine() as opened:
        moved = api.redrive(opened.db, options(), name)
    if as_json:
        print_json({"ok": True, "export": name, "redriven": moved})
    else:
        say(f"export {name}: {moved} dead letters back on its queue")


@dead_app.command("list")
def dead_list(
    name: Annotated[str, typer.Argument(metavar="EXPORT", help="The export.")],
    limit: Annotated[int, typer.Option("--limit", min=1, metavar="N", help="Show at most N.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List the dead letters of an export with the reason it gave up."""
    from sluice.recipes.ichnaea import api

    with engine() as opened:
        total, letters = api.list_dead_letters(opened.db, options(), name, limit)
    if as_json:
        print_json({"export": name, "total": total, "letters": [d.as_dict() for d in letters]})
        return
    table = render.titled_table(
        f"dead letters of {name}: {total}", ("intake id", "attempts", "reason")
    )
    for letter in letters:
        table.add_row(
            render.literal(letter.iid),
            render.literal(letter.attempts),
            render.literal(letter.reason),
        )
    out.print(table)


def main() -> None:
    """``sluice ichnaea ARGS``, with the group mounted on the root command if it is not yet."""
    from sluice import cli

    if not any(group.name == "ichnaea" for group in cli.app.registered_groups):
        cli.app.add_typer(ichnaea, name="ichnaea")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(cli.run(["ichnaea", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
