"""The operator's verbs on the ledger: ``sluice loads list|show|retry`` and ``sluice feeds
list|pause|resume`` (and ``sluice retry``, the older name of ``loads retry``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from sluice import render
from sluice.commands.common import JsonOpt, engine, out, print_json, say, usage_error
from sluice.ledger.states import Status

loads_app = typer.Typer(
    help="The loads on the ledger: list them, show one, retry errored ones.",
    no_args_is_help=True,
)
feeds_app = typer.Typer(
    help="The registered feeds: list them, pause and resume them.", no_args_is_help=True
)

LoadIds = Annotated[
    list[int] | None, typer.Argument(help="Errored loads to retry.", metavar="LOAD_ID")
]
RetryFeeds = Annotated[
    list[str] | None,
    typer.Option("--feed", help="Retry the errored loads of a feed (repeatable).", metavar="FEED"),
]


class Retryable(StrEnum):
    """The statuses a retry takes loads from (only errored ones can go back to the queue)."""

    errored = "errored"


def retry_loads(load_ids: list[int] | None, feeds: list[str] | None, as_json: bool) -> None:
    """Put errored loads back in the queue; print how many and which."""
    if not load_ids and not feeds:
        raise usage_error("name load ids or --feed (retrying everything must be explicit)")
    with engine() as opened:
        ids = opened.retry(feeds=feeds, load_ids=load_ids)
    if as_json:
        print_json({"ok": True, "retried": ids})
    else:
        say(f"{len(ids)} load(s) back in the queue: {', '.join(map(str, ids)) or '-'}")


@loads_app.command("list")
def loads_list(
    feed: Annotated[
        str | None, typer.Option("--feed", help="Only the loads of this feed.", metavar="FEED")
    ] = None,
    status: Annotated[
        Status | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="Only the loads in this status: ready, ingesting, loaded, errored, superseded, "
            "skipped ...",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, metavar="N", help="At most this many loads.")
    ] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List the most recent loads, newest first."""
    with engine() as opened:
        found = opened.loads(feed=feed, status=status.value if status else None, limit=limit)
    if as_json:
        print_json([load.as_dict() for load in found])
    else:
        render.loads_table(out, found)


@loads_app.command("show")
def loads_show(
    load_id: Annotated[int, typer.Argument(help="The load.", metavar="LOAD_ID")],
    as_json: JsonOpt = False,
) -> None:
    """Show everything the ledger knows about one load."""
    with engine() as opened:
        found = opened.load(load_id)
    if as_json:
        print_json(found.as_dict())
    else:
        render.load_detail(out, found)


@loads_app.command("retry")
def loads_retry(
    load_ids: LoadIds = None,
    feed: RetryFeeds = None,
    status: Annotated[
        Retryable, typer.Option("--status", help="Which loads a retry takes.")
    ] = Retryable.errored,
    as_json: JsonOpt = False,
) -> None:
    """Put errored loads back in the queue, to read the same object version again.

    A fixed file is a new object version: the next run discovers and loads it, and it
    supersedes the errored load without a retry. Retry is for errors that were not the file's
    fault (a table fixed by hand, a database that was full).
    """
    retry_loads(load_ids, feed, as_json)


@feeds_app.command("list")
def feeds_list(as_json: JsonOpt = False) -> None:
    """List the registered feeds: state, schedule, source and their loads per state."""
    with engine() as opened:
        found = opened.feeds_overview()
    if as_json:
        print_json([entry.as_dict() for entry in found])
    else:
        render.feeds_table(out, found)


FeedName = Annotated[str, typer.Argument(help="A registered feed.", metavar="FEED")]


@feeds_app.command("pause")
def feeds_pause(name: FeedName, as_json: JsonOpt = False) -> None:
    """Stop scanning and loading a feed (loads in hand finish) until it is resumed."""
    with engine() as opened:
        opened.pause(name)
    _said(name, active=False, as_json=as_json)


@feeds_app.command("resume")
def feeds_resume(name: FeedName, as_json: JsonOpt = False) -> None:
    """Scan and load a paused feed again."""
    with engine() as opened:
        opened.resume(name)
    _said(name, active=True, as_json=as_json)


def _said(name: str, *, active: bool, as_json: bool) -> None:
    if as_json:
        print_json({"ok": True, "feed": name, "active": active})
    else:
        say(f"feed {name} {'resumed' if active else 'paused'}")
