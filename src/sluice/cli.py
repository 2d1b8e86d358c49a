"""The ``sluice`` command: a thin shell over `sluice.api` and the recipe APIs.

Each command parses its options, calls one API function and prints the result: tables for a
person, or with ``--json`` one JSON document on stdout. The command groups live in
`sluice.commands`; this module assembles the tree, in the order ``--help`` lists it, and holds
the global options. Exit codes and the form of errors are described in
`sluice.commands.common`.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from sluice import __version__, logs, render
from sluice.api import init_project
from sluice.commands import operator, query, recipes, service
from sluice.commands.common import (
    NO_COLOR,
    JsonOpt,
    ProjectOpt,
    SluiceGroup,
    WorkersOpt,
    emit_error,
    engine,
    err,
    out,
    print_json,
    progress,
    say,
    state,
    usage_message,
)
from sluice.errors import ConfigError
from sluice.status import StatusReport

if NO_COLOR:
    # the help pages too; imported only then, as it costs a start of every command
    setattr(importlib.import_module("typer.rich_utils"), "COLOR_SYSTEM", None)  # noqa: B010

app = typer.Typer(
    name="sluice",
    cls=SluiceGroup,
    help="Load object-store files into PostgreSQL at COPY speed, exactly once, with a ledger.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="The database sluice uses (embedded or configured).", no_args_is_help=True
)


def _version(value: bool) -> None:
    if value:
        say(f"sluice {__version__}")
        raise typer.Exit()


class Level(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"
    critical = "critical"


class LogFormat(StrEnum):
    text = "text"
    json = "json"


LevelOpt = Annotated[
    Level | None,
    typer.Option(
        "--log-level",
        case_sensitive=False,
        metavar="LEVEL",
        help="debug, info, warning, error or critical: log records of this level and above "
        "(env SLUICE_LOG_LEVEL; default info).",
        show_default=False,
    ),
]
FormatOpt = Annotated[
    LogFormat | None,
    typer.Option(
        "--log-format",
        metavar="FORMAT",
        help="text, or json: one JSON object per line (env SLUICE_LOG_FORMAT; default text).",
        show_default=False,
    ),
]


@app.callback()
def main_options(
    project: ProjectOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more (debug).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log only problems.")] = False,
    log_level: LevelOpt = None,
    log_format: FormatOpt = None,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Debug logs, and full tracebacks of unexpected errors."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_version,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    """sluice: a data-ingestion engine with a load ledger."""
    state.project = project
    state.debug = debug
    options = logs.LogOptions(
        level=_level(log_level, verbose=verbose or debug, quiet=quiet),
        format=_log_format(log_format),
        tracebacks=debug,
    )
    state.log_level = options.level
    state.bars = options.format == "text" and sys.stderr.isatty()
    logs.setup(options, err if state.bars else None)


def _level(named: Level | None, *, verbose: bool, quiet: bool) -> int:
    """--log-level, else -v/--debug or -q, else SLUICE_LOG_LEVEL, else info."""
    if named is not None:
        return logs.level_named(named)
    if verbose:
        return logging.DEBUG
    if quiet:
        return logging.WARNING
    from_env = os.environ.get("SLUICE_LOG_LEVEL", "").strip()
    if not from_env:
        return logging.INFO
    try:
        return logs.level_named(from_env)
    except ValueError:
        allowed = ", ".join(logs.LEVELS)
        raise ConfigError(f"SLUICE_LOG_LEVEL must be one of {allowed}, got {from_env!r}") from None


def _log_format(named: LogFormat | None) -> str:
    chosen = named or os.environ.get("SLUICE_LOG_FORMAT", "").strip() or "text"
    if chosen not in logs.FORMATS:
        allowed = ", ".join(logs.FORMATS)
        raise ConfigError(f"SLUICE_LOG_FORMAT must be one of {allowed}, got {chosen!r}")
    return chosen


# -- project and runs ---------------------------------------------------------------------------


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(help="Where to write sluice.toml.", metavar="DIRECTORY")
    ] = Path(),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter sluice.toml."""
    say(f"wrote {init_project(directory, force=force)}")


@app.command("import")
def import_(
    feeds: Annotated[
        list[str] | None,
        typer.Argument(help="Feeds to run (default: all).", metavar="FEED"),
    ] = None,
    workers: WorkersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load new object versions of the feeds declared in sluice.toml, then exit."""
    with engine(workers) as opened, progress() as bars:
        report = opened.run_feeds(opened.feeds(feeds), command="import", progress=bars)
    recipes.show_run(report, as_json)


@app.command()
def refresh(
    feeds: Annotated[
        list[str] | None,
        typer.Argument(
            help="Table feeds whose serving copies to bring up to date (default: every one the "
            "ledger has).",
            metavar="FEED",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Bring serving copies up to date without loading anything.

    Applies the keys loads left pending, builds the copies that need it and refreshes stale
    materialized views.
    """
    with engine() as opened:
        report = opened.refresh_views(opened.table_feeds(feeds))
    recipes.show_run(report, as_json)


app.command("run")(service.run)
app.command("worker")(service.worker)
app.command("scheduler")(service.scheduler)
app.command("serve")(service.serve)


@app.command()
def status(
    as_json: JsonOpt = False,
    errors: Annotated[
        int, typer.Option(min=0, metavar="N", help="How many recent errors to show.")
    ] = 10,
    runs: Annotated[
        int, typer.Option(min=0, metavar="N", help="How many recent runs to show.")
    ] = 5,
) -> None:
    """Show loads per feed and status, the loads in hand, the last errors and runs."""
    with engine() as opened:
        report: StatusReport = opened.status(errors=errors, runs=runs)
    if as_json:
        print_json(report.as_dict())
    else:
        render.status_report(out, report)
        for name, figures in report.consumers.items():
            render.summary(out, name, figures)


@app.command()
def retry(
    load_ids: operator.LoadIds = None,
    feed: operator.RetryFeeds = None,
    as_json: JsonOpt = False,
) -> None:
    """Put errored loads back in the queue to read the same object version again.

    The same as 'sluice loads retry'. A fixed file is a new object version: the next run
    discovers and loads it, and it supersedes the errored load without a retry.
    """
    operator.retry_loads(load_ids, feed, as_json)


@app.command()
def demo(
    bucket: Annotated[
        Path, typer.Option(metavar="DIR", help="Folder for the sample bucket.")
    ] = Path("demo-bucket"),
    rows: Annotated[
        int, typer.Option(min=1, metavar="N", help="Rows of the desktop sample.")
    ] = 20_000,
) -> None:
    """Generate a sample GLAM bucket, import it twice (the second day changes 10% of rows)."""
    from sluice.demo import run_demo

    with engine() as opened, progress() as bars:
        run_demo(opened, bucket.resolve(), rows, out, bars)


app.command("sql")(query.sql)
app.add_typer(operator.loads_app, name="loads")
app.add_typer(operator.feeds_app, name="feeds")
app.add_typer(recipes.glam, name="glam")
app.add_typer(recipes.cryoet, name="cryoet")
app.add_typer(importlib.import_module("sluice.commands.mozagg").mozagg, name="mozagg")
app.add_typer(importlib.import_module("sluice.commands.ichnaea").ichnaea, name="ichnaea")
app.add_typer(importlib.import_module("sluice.commands.stream").stream, name="stream")
app.add_typer(importlib.import_module("sluice.commands.cubic").cubic, name="cubic")
# `sluice cubic dmap`: the DMAP fetcher's verbs join the routing's `cubic` group.
importlib.import_module("sluice.commands.cubic").cubic.add_typer(
    importlib.import_module("sluice.commands.dmap").dmap, name="dmap"
)
app.add_typer(importlib.import_module("sluice.commands.lake").lake, name="lake")
app.add_typer(db_app, name="db")


# -- database -----------------------------------------------------------------------------------


@db_app.command("shell")
def db_shell() -> None:
    """Open psql on the sluice database (starting the embedded server if needed)."""
    with engine() as opened:
        # Ctrl-C belongs to psql (it cancels the query being typed), not to this process.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            conninfo, secrets = opened.db.client_connection()
            code = subprocess.call([_psql(), conninfo], env={**os.environ, **secrets})
        finally:
            signal.signal(signal.SIGINT, previous)
    raise typer.Exit(code)


@db_app.command("url")
def db_url(as_json: JsonOpt = False) -> None:
    """Print the database URL without its password (embedded: valid while a command runs)."""
    with engine() as opened:
        url = opened.db.display_url
    if as_json:
        print_json({"url": url})
    else:
        say(url)


def _psql() -> str:
    try:
        from pgserver._commands import POSTGRES_BIN_PATH

        candidate = Path(POSTGRES_BIN_PATH) / "psql"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    return "psql"


# -- entry point --------------------------------------------------------------------------------


def run(args: Sequence[str]) -> int:
    """Run the command line `args`; return the exit code. Errors that come before a command
    runs (bad options, missing arguments) are printed here, like those of the commands."""
    state.argv = list(args)
    try:
        result = app(args=list(args), prog_name="sluice", standalone_mode=False)
    except NoArgsIsHelpError as exc:  # the help is printed already
        return exc.exit_code
    except UsageError as exc:
        return emit_error(usage_message(exc), "UsageError", exc.exit_code)
    except ClickException as exc:
        return emit_error(exc.format_message(), type(exc).__name__, exc.exit_code)
    except typer.Abort:
        return emit_error("interrupted", "Interrupted", 130)
    return result if isinstance(result, int) else 0


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
