"""``sluice ichnaea keys add|list|update|remove``: the API keys of the submit API. Mounted on
the ``ichnaea`` group by `attach`."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice import render
from sluice.commands.common import JsonOpt, engine, given, out, print_json, say
from sluice.errors import ConfigError
from sluice.intake.keys import ApiKey, masked

keys_app = typer.Typer(help="The API keys of the submit API.", no_args_is_help=True)


def attach(group: typer.Typer) -> None:
    """Mount ``keys`` on `group` (the ``ichnaea`` command group)."""
    group.add_typer(keys_app, name="keys")


# -- keys -----------------------------------------------------------------------------------------

KeyArg = Annotated[str, typer.Argument(help="The API key.", metavar="KEY", show_default=False)]
SampleOpt = Annotated[
    int | None,
    given(
        "--sample-submit",
        min=0,
        max=100,
        metavar="N",
        help="Percent of submit requests kept (0 keeps none).",
    ),
]
MaxreqOpt = Annotated[
    int | None,
    given("--maxreq", min=0, metavar="N", help="Requests per day and path (0: unlimited)."),
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
    columns = ("key", "sample submit %", "maxreq", "sample locate %")
    table = render.titled_table("API keys", columns, right=columns[1:])
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
