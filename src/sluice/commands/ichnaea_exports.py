"""``sluice ichnaea exports add|list|update|remove``: the export configs, where the fan-out
sends every accepted report. Mounted on the ``ichnaea`` group by `attach`."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice import render
from sluice.commands.common import JsonOpt, engine, given, out, print_json, say, settings
from sluice.errors import ConfigError

exports_app = typer.Typer(
    help="The export configs: where the fan-out sends every accepted report.",
    no_args_is_help=True,
)


def attach(group: typer.Typer) -> None:
    """Mount ``exports`` on `group` (the ``ichnaea`` command group)."""
    group.add_typer(exports_app, name="exports")


# -- exports --------------------------------------------------------------------------------------

ExportArg = Annotated[
    str, typer.Argument(metavar="NAME", help="The export's name.", show_default=False)
]
UrlOpt = Annotated[
    str | None,
    given(
        "--url",
        help="geosubmit: the URL to POST to; bucket: s3://... or a folder, "
        "with {source} {api_key} {year} {month} {day}.",
    ),
]
BatchOpt = Annotated[
    int | None,
    given("--batch", min=1, max=5000, metavar="N", help="Reports per batch."),
]
AgeOpt = Annotated[
    float | None,
    given(
        "--max-age",
        min=0,
        metavar="SECONDS",
        help="Flush a batch once its oldest report waited this long.",
    ),
]
AttemptsOpt = Annotated[
    int | None,
    given("--max-attempts", min=1, metavar="N", help="Tries of a batch before its dead letters."),
]
SkipKeysOpt = Annotated[
    str | None,
    given("--skip-keys", metavar="K1,K2", help="API keys whose reports are not sent."),
]
SkipSourcesOpt = Annotated[
    str | None,
    given("--skip-sources", metavar="S1,S2", help="Sources (gnss, fused, fixed, query) not sent."),
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
        given(
            "--kind",
            "--schema",
            metavar="KIND",
            help="dummy, geosubmit, bucket, or internal (the station tables).",
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
        dropped = api.remove_export(opened.db, settings().ichnaea, name, discard_data=discard)
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
    table = render.titled_table("exports", columns)
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
