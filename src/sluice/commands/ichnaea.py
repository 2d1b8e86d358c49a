"""The Ichnaea verbs: ``sluice ichnaea serve|status|fanout|redrive``, ``sluice ichnaea keys
add|list|update|remove``, ``sluice ichnaea exports add|list|update|remove`` and ``sluice
ichnaea dead-letters list|redrive``.

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
from sluice.commands.stations import attach as attach_stations
from sluice.errors import ConfigError
from sluice.intake.keys import ApiKey, masked
from sluice.recipes.ichnaea.options import IchnaeaOptions

log = logging.getLogger("sluice.cli")

ichnaea = typer.Typer(
    help="Ichnaea submissions: the submit API with API keys and sampling → the intake queue "
    "→ fan-out to the export configs.",
    no_args_is_help=True,
)
keys_app = typer.Typer(help="The API keys of the submit API.", no_args_is_help=True)
ichnaea.add_typer(keys_app, name="keys")
exports_app = typer.Typer(
    help="The export configs: where the fan-out sends every accepted report.",
    no_args_is_help=True,
)
ichnaea.add_typer(exports_app, name="exports")
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
    table = Table(title=render.literal("exports"), title_justify="left")
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
    for name in columns:
        table.add_column(name, justify="left" if name in ("name", "kind") else "right")
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
    table = Table(title=render.literal(f"dead letters of {name}: {total}"), title_justify="left")
    for column in ("intake id", "attempts", "reason"):
        table.add_column(column)
    for letter in letters:
        table.add_row(
            render.literal(letter.iid),
            render.literal(letter.attempts),
            render.literal(letter.reason),
        )
    out.print(table)


# -- exports --------------------------------------------------------------------------------------

ExportArg = Annotated[
    str, typer.Argument(metavar="NAME", help="The export's name.", show_default=False)
]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="geosubmit: the URL to POST to; bucket: s3://... or a folder, "
        "with {source} {api_key} {year} {month} {day}.",
        show_default=False,
    ),
]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch", min=1, max=5000, metavar="N", help="Reports per batch.", show_default=False
    ),
]
AgeOpt = Annotated[
    float | None,
    typer.Option(
        "--max-age",
        min=0,
        metavar="SECONDS",
        help="Flush a batch once its oldest report waited this long.",
        show_default=False,
    ),
]
AttemptsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-attempts",
        min=1,
        metavar="N",
        help="Tries of a batch before its dead letters.",
        show_default=False,
    ),
]
SkipKeysOpt = Annotated[
    str | None,
    typer.Option(
        "--skip-keys",
        metavar="K1,K2",
        help="API keys whose reports are not sent.",
        show_default=False,
    ),
]
SkipSourcesOpt = Annotated[
    str | None,
    typer.Option(
        "--skip-sources",
        metavar="S1,S2",
        help="Sources (gnss, fused, fixed, query) not sent.",
        show_default=False,
    ),
]


def _changes(
    url: str | None,
    batch: int | None,
    max_age: float | None,
    max_attempts: int | None,
    skip_keys: str | None,
    skip_sources: str | None,
) -> dict[str, object]:
    from sluice.fanout.configs import parse_set

    changes: dict[str, object] = {}
    for field, value in (
        ("url", url),
        ("batch", batch),
        ("max_age_seconds", max_age),
        ("max_attempts", max_attempts),
    ):
        if value is not None:
            changes[field] = value
    if skip_keys is not None:
        changes["skip_keys"] = parse_set(skip_keys)
    if skip_sources is not None:
        changes["skip_sources"] = parse_set(skip_sources)
    return changes


@exports_app.command("add")
def exports_add(
    name: ExportArg,
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            "--schema",
            metavar="KIND",
            help="dummy, geosubmit, bucket, or internal (the station tables).",
            show_default=False,
        ),
    ],
    url: UrlOpt = None,
    batch: BatchOpt = None,
    max_age: AgeOpt = None,
    max_attempts: AttemptsOpt = None,
    skip_keys: SkipKeysOpt = None,
    skip_sources: SkipSourcesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an export config: from now on the fan-out sends it every accepted report."""
    from dataclasses import replace

    from sluice.fanout.configs import ExportConfig
    from sluice.recipes.ichnaea import api

    config = replace(
        ExportConfig(name, kind),
        **_changes(url, batch, max_age, max_attempts, skip_keys, skip_sources),  # type: ignore[arg-type]
    )
    with engine() as opened:
        api.add_export(opened.db, config)
    _export_said("added", config.as_dict(), as_json)


@exports_app.command("update")
def exports_update(
    name: ExportArg,
    url: UrlOpt = None,
    batch: BatchOpt = None,
    max_age: AgeOpt = None,
    max_attempts: AttemptsOpt = None,
    skip_keys: SkipKeysOpt = None,
    skip_sources: SkipSourcesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an export config (a running fan-out picks the change up within seconds)."""
    from sluice.recipes.ichnaea import api

    changes = _changes(url, batch, max_age, max_attempts, skip_keys, skip_sources)
    if not changes:
        raise ConfigError(
            "nothing to change: give --url, --batch, --max-age, --max-attempts, "
            "--skip-keys or --skip-sources"
        )
    with engine() as opened:
        changed = api.update_export(opened.db, name, **changes)
    _export_said("updated", changed.as_dict(), as_json)


@exports_app.command("remove")
def exports_remove(
    name: ExportArg,
    discard: Annotated[
        bool,
        typer.Option("--discard", help="Drop the reports its queue and dead letters still hold."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove an export config (refused while its queue holds reports, unless --discard)."""
    from sluice.recipes.ichnaea import api

    with engine() as opened:
        dropped = api.remove_export(opened.db, options(), name, discard_data=discard)
    if as_json:
        print_json({"ok": True, "removed": name, "discarded": dropped})
    else:
        say(f"removed export {name}" + (f"; {dropped} reports discarded" if dropped else ""))


@exports_app.command("list")
def exports_list(
    as_json: JsonOpt = False,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Show the URLs' passwords and keys.")
    ] = False,
) -> None:
    """List the export configs (URL secrets hidden, unless --reveal)."""
    from sluice.fanout.exporters import shown_url
    from sluice.recipes.ichnaea import api

    with engine() as opened:
        found = [c.as_dict() for c in api.list_exports(opened.db)]
    for row in found:
        if row["url"] and not reveal:  # a geosubmit URL carries its target's API key
            row["url"] = shown_url(str(row["url"]))
    if as_json:
        print_json(found)
        return
    table = Table(title=render.literal("exports"), title_justify="left")
    columns = (
        "name",
        "kind",
        "url",
        "batch",
        "max_age_seconds",
        "max_attempts",
        "skip_keys",
        "skip_sources",
    )
    for column in columns:
        table.add_column(column)
    for row in found:
        table.add_row(*(render.literal(_joined(row[c])) for c in columns))
    out.print(table)


def _joined(value: object) -> object:
    return ",".join(value) if isinstance(value, list) else ("-" if value is None else value)


def _export_said(verb: str, shown: dict[str, object], as_json: bool) -> None:
    if as_json:
        print_json({"ok": True, verb: shown})
        return
    say(f"{verb} export {shown['name']} ({shown['kind']}, batch {shown['batch']})")


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
