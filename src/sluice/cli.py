"""The ``sluice`` command: a thin shell over `sluice.api` and the recipe APIs.

Each command parses its options, calls one API function and prints the result. Errors become
one line on stderr: exit code 2 for configuration errors, 1 for anything else (including a run
in which some load errored).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from sluice import __version__, render
from sluice.api import Engine, init_project, open_engine
from sluice.config import load_settings
from sluice.errors import ConfigError, SluiceError
from sluice.recipes.cryoet import api as cryoet_api
from sluice.recipes.glam import api as glam_api
from sluice.recipes.glam.tables import Product
from sluice.runtime.progress import make_progress
from sluice.runtime.report import RunReport

T = TypeVar("T")
out = Console(width=None if sys.stdout.isatty() else 160, soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

app = typer.Typer(
    name="sluice",
    help="Load object-store files into PostgreSQL at COPY speed, exactly once, with a ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
glam = typer.Typer(
    help="GLAM aggregate imports: CSV shards → upserted tables → serving views.",
    no_args_is_help=True,
)
db_app = typer.Typer(
    help="The database sluice uses (embedded or configured).", no_args_is_help=True
)
cryoet = typer.Typer(
    help="CryoET metadata sync: a bucket hierarchy of JSON documents → relational tables.",
    no_args_is_help=True,
)
app.add_typer(glam, name="glam")
app.add_typer(cryoet, name="cryoet")
app.add_typer(db_app, name="db")

_state: dict[str, Any] = {"project": None}

ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        help="Project file (default: nearest sluice.toml; env SLUICE_PROJECT).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", "-w", min=1, help="Loads at once (env SLUICE_WORKERS).")
]


def _version(value: bool) -> None:
    if value:
        out.print(f"sluice {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    project: ProjectOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log only problems.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """sluice: a data-ingestion engine with a load ledger."""
    _state["project"] = project
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("sluice.progress").setLevel(logging.INFO if not quiet else logging.WARNING)
    for noisy in ("pgserver", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def _engine(workers: int | None = None) -> Iterator[Engine]:
    settings = load_settings(_state["project"])
    if workers is not None:
        from dataclasses import replace

        settings = replace(settings, load=replace(settings.load, workers=workers))
    with open_engine(settings=settings) as engine:
        yield engine


def _guard(action: Callable[[], T]) -> T:
    try:
        return action()
    except ConfigError as exc:
        err.print(f"sluice: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except SluiceError as exc:
        err.print(f"sluice: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("sluice: interrupted")
        raise typer.Exit(130) from None


def _show_run(report: RunReport, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report.as_dict(), default=str))
    else:
        render.run_report(out, report)
    if not report.ok:
        raise typer.Exit(1)


# -- project and runs ---------------------------------------------------------------------------


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write sluice.toml.")] = Path(),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter sluice.toml."""
    path = _guard(lambda: init_project(directory, force=force))
    out.print(f"wrote {path}")


@app.command("import")
def import_(
    feeds: Annotated[
        list[str] | None,
        typer.Argument(help="Feeds to run (default: all).", metavar="[FEED]..."),
    ] = None,
    workers: WorkersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load new object versions of the feeds declared in sluice.toml."""

    def action() -> RunReport:
        with _engine(workers) as engine, make_progress() as progress:
            return engine.run_feeds(engine.feeds(feeds), command="import", progress=progress)

    _show_run(_guard(action), as_json)


@app.command()
def status(
    as_json: JsonOpt = False,
    errors: Annotated[int, typer.Option(help="How many recent errors to show.")] = 10,
    runs: Annotated[int, typer.Option(help="How many recent runs to show.")] = 5,
) -> None:
    """Show loads per feed and status, the last errors and the last runs."""

    def action() -> Any:
        with _engine() as engine:
            return engine.status(errors=errors, runs=runs)

    report = _guard(action)
    if as_json:
        out.print_json(json.dumps(report.as_dict(), default=str))
    else:
        render.status_report(out, report)


@app.command()
def retry(
    load_ids: Annotated[
        list[int] | None, typer.Argument(help="Errored loads to retry.", metavar="[LOAD_ID]...")
    ] = None,
    feed: Annotated[
        list[str] | None,
        typer.Option(help="Retry the errored loads of a feed.", metavar="FEED"),
    ] = None,
) -> None:
    """Put errored loads back in the queue to read the same object version again.

    A fixed file is a new object version: it is discovered and loaded by the next import and
    supersedes the errored load, without a retry. Retry is for errors that were not the file's
    fault (a table fixed by hand, a database that was full).
    """
    if not load_ids and not feed:
        err.print("sluice: name load ids or --feed (retrying everything must be explicit)")
        raise typer.Exit(2)

    def action() -> list[int]:
        with _engine() as engine:
            return engine.retry(feeds=feed, load_ids=load_ids)

    ids = _guard(action)
    out.print(f"{len(ids)} load(s) back in the queue: {', '.join(map(str, ids)) or '-'}")


@app.command()
def demo(
    bucket: Annotated[Path, typer.Option(help="Folder for the sample bucket.")] = Path(
        "demo-bucket"
    ),
    rows: Annotated[int, typer.Option(min=1, help="Rows of the desktop sample.")] = 20_000,
) -> None:
    """Generate a sample GLAM bucket, import it twice (the second day changes 10% of rows)."""

    def action() -> None:
        from sluice.demo import run_demo

        with _engine() as engine, make_progress() as progress:
            run_demo(engine, bucket.resolve(), rows, out, progress)

    _guard(action)


# -- GLAM ---------------------------------------------------------------------------------------


@glam.command("import")
def glam_import(
    product: Annotated[Product, typer.Option(help="desktop, fenix or fog.")],
    channel: Annotated[str, typer.Option(help="nightly, beta, release ...")],
    bucket: Annotated[str, typer.Option(help="Folder, s3://bucket/prefix or gs://bucket/prefix.")],
    workers: WorkersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a product/channel's aggregate shards (like manage.py import_glean_aggs)."""

    def action() -> RunReport:
        with _engine(workers) as engine, make_progress() as progress:
            return glam_api.import_aggregates(engine, product, channel, bucket, progress=progress)

    _show_run(_guard(action), as_json)


@glam.command("generate")
def glam_generate(
    product: Annotated[Product, typer.Option(help="desktop, fenix or fog.")],
    channel: Annotated[str, typer.Option(help="nightly, beta, release ...")],
    out_url: Annotated[str, typer.Option("--out", help="Folder or bucket URL to write.")],
    rows: Annotated[int, typer.Option(min=1, help="Rows in all shards together.")] = 10_000,
    shards: Annotated[int, typer.Option(min=1, help="Number of shard files.")] = 4,
    base: Annotated[
        str | None, typer.Option(help="Write the next generation of this bucket.")
    ] = None,
    change: Annotated[
        float, typer.Option(help="With --base: fraction of rows given new values.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Random seed of a first generation.")] = 1,
    gzip: Annotated[bool, typer.Option("--gzip", help="Write .csv.gz shards.")] = False,
) -> None:
    """Write realistic GLAM shards (or the next day's generation of a bucket)."""

    def action() -> glam_api.GenerateReport:
        settings = load_settings(_state["project"])
        return glam_api.generate(
            product,
            channel,
            rows=rows,
            shards=shards,
            out=out_url,
            base=base,
            change=change,
            seed=seed,
            gzip_files=gzip,
            s3=settings.s3,
        )

    report = _guard(action)
    out.print(
        f"generation {report.generation}: {report.rows:,} rows in {len(report.files)} shards, "
        f"{report.bytes / 1e6:.1f} MB, {report.changed_rows:,} rows with new values → {out_url}"
    )


# -- CryoET -------------------------------------------------------------------------------------


def _flag(name: str) -> Any:
    return typer.Option(
        f"--import-{name.replace('_', '-')}", help=f"Import {name.replace('_', ' ')}."
    )


@cryoet.command("load")
def cryoet_load(
    s3_bucket: Annotated[str, typer.Argument(help="Bucket name, s3:// URL or local folder.")],
    https_prefix: Annotated[str, typer.Argument(help="Base of the https URLs of files.")] = "",
    endpoint_url: Annotated[
        str | None, typer.Option(help="S3-compatible endpoint (env SLUICE_S3_ENDPOINT_URL).")
    ] = None,
    s3_prefix: Annotated[
        str, typer.Option(help="Dataset folder (whole path segments) or parent folder ending /.")
    ] = "",
    deposition_id: Annotated[
        list[int] | None,
        typer.Option(help="Deposition to import (with --import-depositions).", metavar="N"),
    ] = None,
    filter_dataset: Annotated[
        list[str] | None, typer.Option(help="Only this dataset (repeatable).", metavar="ID")
    ] = None,
    import_everything: Annotated[bool, typer.Option(help="Every import flag.")] = False,
    import_depositions: Annotated[bool, _flag("depositions")] = False,
    import_dataset_authors: Annotated[bool, _flag("dataset_authors")] = False,
    import_dataset_funding: Annotated[bool, _flag("dataset_funding")] = False,
    import_runs: Annotated[bool, _flag("runs")] = False,
    import_frame_acquisition_files: Annotated[bool, _flag("frame_acquisition_files")] = False,
    import_frames: Annotated[bool, _flag("frames")] = False,
    import_gains: Annotated[bool, _flag("gains")] = False,
    import_tiltseries: Annotated[bool, _flag("tiltseries")] = False,
    import_alignments: Annotated[bool, _flag("alignments")] = False,
    import_identified_objects: Annotated[bool, _flag("identified_objects")] = False,
    import_tomogram_voxel_spacing: Annotated[bool, _flag("tomogram_voxel_spacing")] = False,
    import_tomograms: Annotated[bool, _flag("tomograms")] = False,
    import_tomogram_authors: Annotated[bool, _flag("tomogram_authors")] = False,
    import_annotations: Annotated[bool, _flag("annotations")] = False,
    import_annotation_authors: Annotated[bool, _flag("annotation_authors")] = False,
    import_annotation_method_links: Annotated[bool, _flag("annotation_method_links")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the changes; change nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Sync CryoET portal metadata (like db_import.importer load): create, update in place,
    delete stale rows within their parent."""
    chosen = {name for name, value in locals().items() if name.startswith("import_") and value}
    flags = [name.removeprefix("import_") for name in chosen if name != "import_everything"]

    def action() -> Any:
        with _engine() as engine:
            return cryoet_api.load(
                engine,
                s3_bucket,
                https_prefix,
                endpoint_url=endpoint_url,
                s3_prefix=s3_prefix,
                deposition_ids=deposition_id or (),
                flags=flags,
                everything=import_everything,
                filter_datasets=filter_dataset or (),
                dry_run=dry_run,
            )

    report = _guard(action)
    if as_json:
        out.print_json(json.dumps(report.as_dict(), default=str))
    else:
        render.sync_report(out, report)
    if not report.ok:
        raise typer.Exit(1)


# -- database -----------------------------------------------------------------------------------


@db_app.command("shell")
def db_shell() -> None:
    """Open psql on the sluice database (starting the embedded server if needed)."""

    def action() -> int:
        with _engine() as engine:
            return subprocess.call([_psql(), engine.db.url])

    raise typer.Exit(_guard(action))


@db_app.command("url")
def db_url() -> None:
    """Print the database URL without its password (embedded: valid while a command runs)."""

    def action() -> str:
        with _engine() as engine:
            return engine.db.display_url

    out.print(_guard(action), markup=False, highlight=False)


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL query.", metavar="QUERY")],
    as_json: JsonOpt = False,
) -> None:
    """Run a read-only query against the sluice database and print the rows."""

    def action() -> tuple[list[str], list[tuple[Any, ...]]]:
        with _engine() as engine:
            return engine.db.read_only_query(query)

    columns, rows = _guard(action)
    if as_json:
        out.print_json(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str))
        return
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    out.print(table)


def _psql() -> str:
    try:
        from pgserver._commands import POSTGRES_BIN_PATH

        candidate = Path(POSTGRES_BIN_PATH) / "psql"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    return "psql"


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()


if __name__ == "__main__":
    main()
