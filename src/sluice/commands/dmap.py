"""The DMAP verbs: ``sluice cubic dmap feeds add|list``, ``sluice cubic dmap fetch`` and
``sluice cubic dmap datasets``.

Settings: ``[cubic.dmap]`` ``base_url``, ``controlled_key``, ``public_key`` (environment
``SLUICE_CUBIC_DMAP_BASE_URL``, ``SLUICE_CUBIC_DMAP_CONTROLLED_KEY``,
``SLUICE_CUBIC_DMAP_PUBLIC_KEY``); files go to the ``[cubic]`` ``incoming`` location. No verb
prints a key.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sluice import render
from sluice.commands.common import JsonOpt, engine, out, print_json, say

dmap = typer.Typer(
    help="Cubic DMAP: the API's feeds, and fetches of their datasets into Incoming.",
    no_args_is_help=True,
)
feeds_app = typer.Typer(help="The DMAP endpoints fetched.", no_args_is_help=True)
dmap.add_typer(feeds_app, name="feeds")

FeedArg = Annotated[
    str,
    typer.Argument(
        help="The endpoint below the base URL (/datasetcontrolleduserapi/...).",
        metavar="URL",
        show_default=False,
    ),
]


@feeds_app.command("add")
def feeds_add(relative_url: FeedArg, as_json: JsonOpt = False) -> None:
    """Add a feed: an endpoint of the API, fetched from the start of its history."""
    from sluice.recipes.cubic import dmap_fetch

    with engine() as opened:
        feed = dmap_fetch.add_feed(opened.db, relative_url)
    if as_json:
        print_json(feed.as_dict())
    else:
        say(f"added feed {feed.relative_url}")


@feeds_app.command("list")
def feeds_list(as_json: JsonOpt = False) -> None:
    """List the feeds with their watermarks and what their last fetch found wrong."""
    from sluice.recipes.cubic import dmap_fetch

    with engine() as opened:
        rows = [f.as_dict() for f in dmap_fetch.list_feeds(opened.db)]
    if as_json:
        print_json(rows)
        return
    _table(
        "DMAP feeds",
        rows,
        ("relative_url", "last_updated_at", "datasets", "fetched_at", "last_error"),
    )


@dmap.command("fetch")
def fetch(
    feed: Annotated[
        str | None,
        typer.Option("--feed", metavar="URL", help="Only this feed.", show_default=False),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="TIMESTAMP",
            help="Ask for datasets updated from this time (UTC), not from the watermark, and "
            "fetch them again.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch the datasets updated since each feed's watermark into Incoming."""
    from sluice.recipes.cubic import dmap_fetch

    with engine() as opened:
        reports = dmap_fetch.fetch(
            opened.db,
            opened.settings.cubic_dmap,
            opened.settings.cubic.incoming,
            opened.cubic_s3,
            feed=feed,
            since=since,
        )
    rows = [r.as_dict() for r in reports]
    if as_json:
        print_json({"ok": all(r.ok for r in reports), "feeds": rows})
    else:
        shown = [
            {
                **row,
                "uploaded": len(row["uploaded"]),
                "failed": len(row["failed"]),
                "problems": reports[i].summary() or "",
            }
            for i, row in enumerate(rows)
        ]
        _table(
            "DMAP fetch",
            shown,
            (
                "feed",
                "results",
                "invalid",
                "uploaded",
                "unchanged",
                "failed",
                "bytes",
                "watermark_after",
                "problems",
            ),
        )
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


@dmap.command("datasets")
def datasets(as_json: JsonOpt = False) -> None:
    """List the datasets fetched into Incoming, oldest first."""
    from sluice.recipes.cubic import dmap_fetch

    with engine() as opened:
        rows = [d.as_dict() for d in dmap_fetch.datasets(opened.db)]
    if as_json:
        print_json(rows)
        return
    _table(
        "DMAP datasets",
        rows,
        ("dataset_id", "type", "start_date", "end_date", "last_updated", "size", "object_key"),
    )


def _table(title: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    table = render.titled_table(title, columns)
    for row in rows:
        table.add_row(*(render.literal("" if row[c] is None else row[c]) for c in columns))
    out.print(table)
