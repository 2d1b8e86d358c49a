"""The Ichnaea verbs: ``sluice ichnaea serve|status`` and ``sluice ichnaea keys
add|list|update|remove``.

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
from rich.table import Table

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
from sluice.errors import ConfigError
from sluice.intake.keys import ApiKey, masked
from sluice.recipes.ichnaea.options import IchnaeaOptions

log = logging.getLogger("sluice.cli")

ichnaea = typer.Typer(
    help="Ichnaea submissions: the submit API with API keys and sampling → the intake queue.",
    no_args_is_help=True,
)
keys_app = typer.Typer(help="The API keys of the submit API.", no_args_is_help=True)
ichnaea.add_typer(keys_app, name="keys")


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
    """The intake's counters (accepted, sampled out, dropped by reason), depth and age."""
    from sluice.recipes.ichnaea import api

    report = api.status(options()).as_dict()
    if as_json:
        print_json(report)
        return
    shown = {**report}
    age = report["oldest_age_seconds"]
    shown["oldest_age_seconds"] = "-" if age is None else f"{age:.1f}"
    render.summary(out, "ichnaea intake", shown)


# -- keys -----------------------------------------------------------------------------------------

KeyArg = Annotated[str, typer.Argument(help="The API key.", metavar="KEY", show_default=False)]
SampleOpt = Annotated[
    int | None,
    typer.Option(
        "--sample-submit",
        min=0,
        max=100,
        metavar="N",
        help="Percent of submit requests kept (0 keeps none).",
        show_default=False,
    ),
]
MaxreqOpt = Annotated[
    int | None,
    typer.Option(
        "--maxreq",
        min=0,
        metavar="N",
        help="Requests per day and path (0: unlimited).",
        show_default=False,
    ),
]


@keys_app.command("add")
def keys_add(
    key: KeyArg, sample_submit: SampleOpt = None, maxreq: MaxreqOpt = None, as_json: JsonOpt = False
) -> None:
    """Add an API key (by default every submission of it is kept, without a daily limit)."""
    from sluice.recipes.ichnaea import api

    with engine() as opened:
        added = api.add_key(
            opened.db,
            key,
            sample_submit=100 if sample_submit is None else sample_submit,
            maxreq=maxreq,
        )
    _said("added", added, as_json)


@keys_app.command("update")
def keys_update(
    key: KeyArg, sample_submit: SampleOpt = None, maxreq: MaxreqOpt = None, as_json: JsonOpt = False
) -> None:
    """Change an API key's sample rate or daily limit."""
    from sluice.recipes.ichnaea import api

    changes: dict[str, int | None] = {}
    if sample_submit is not None:
        changes["store_sample_submit"] = sample_submit
    if maxreq is not None:
        changes["maxreq"] = maxreq
    if not changes:
        raise ConfigError("nothing to change: give --sample-submit and/or --maxreq")
    with engine() as opened:
        api.update_key(opened.db, key, **changes)
        found = api.keys(opened.db).get(key)
    assert found is not None  # update_key refused a key that does not exist
    _said("updated", found, as_json)


@keys_app.command("remove")
def keys_remove(key: KeyArg, as_json: JsonOpt = False) -> None:
    """Remove an API key: its submissions are then taken as without a key."""
    from sluice.recipes.ichnaea import api

    with engine() as opened:
        api.remove_key(opened.db, key)
    if as_json:
        print_json({"ok": True, "removed": masked(key)})
    else:
        say(f"removed API key {masked(key)}")


@keys_app.command("list")
def keys_list(
    reveal: Annotated[bool, typer.Option("--reveal", help="Show the keys in full.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the API keys (shortened, unless --reveal) with their sample rates and limits."""
    from sluice.recipes.ichnaea import api

    with engine() as opened:
        found = api.list_keys(opened.db)
    shown = [_shown(key, reveal) for key in found]
    if as_json:
        print_json(shown)
        return
    table = Table(title=render.literal("API keys"), title_justify="left")
    columns = ("key", "sample submit %", "maxreq", "sample locate %")
    for name in columns:
        table.add_column(name, justify="left" if name == "key" else "right")
    for row in shown:
        table.add_row(
            render.literal(row["key"]),
            render.literal(row["store_sample_submit"]),
            render.literal(row["maxreq"] or "unlimited"),
            render.literal(row["store_sample_locate"]),
        )
    out.print(table)


def _shown(key: ApiKey, reveal: bool) -> dict[str, object]:
    return {
        "key": key.valid_key if reveal else masked(key.valid_key),
        "maxreq": key.maxreq,
        "store_sample_submit": key.store_sample_submit,
        "store_sample_locate": key.store_sample_locate,
    }


def _said(verb: str, key: ApiKey, as_json: bool) -> None:
    shown = _shown(key, reveal=False)
    if as_json:
        print_json({"ok": True, verb: shown})
        return
    limit = key.maxreq or "unlimited"
    say(
        f"{verb} API key {shown['key']}: {key.store_sample_submit}% of submissions kept, "
        f"daily limit {limit}"
    )


def main() -> None:
    """``sluice ichnaea ARGS``, with the group mounted on the root command if it is not yet."""
    from sluice import cli

    if not any(group.name == "ichnaea" for group in cli.app.registered_groups):
        cli.app.add_typer(ichnaea, name="ichnaea")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(cli.run(["ichnaea", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
