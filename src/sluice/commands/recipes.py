"""The recipes' verbs: ``sluice glam import|generate`` and ``sluice cryoet load``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from sluice import render
from sluice.commands.common import (
    JsonOpt,
    WorkersOpt,
    engine,
    out,
    print_json,
    progress,
    say,
    settings,
)
from sluice.recipes.cryoet import api as cryoet_api
from sluice.recipes.glam import api as glam_api
from sluice.recipes.glam.tables import Product
from sluice.runtime.report import RunReport
from sluice.sync.view import DEFAULT_CONCURRENCY

glam = typer.Typer(
    help="GLAM aggregate imports: CSV shards → upserted tables → serving views.",
    no_args_is_help=True,
)
cryoet = typer.Typer(
    help="CryoET metadata sync: a bucket hierarchy of JSON documents → relational tables.",
    no_args_is_help=True,
)


def show_run(report: RunReport, as_json: bool) -> None:
    """Print a run's report; exit 1 when some unit of it failed."""
    if as_json:
        print_json(report.as_dict())
    else:
        render.run_report(out, report)
    if not report.ok:
        raise typer.Exit(1)


# -- GLAM -----------------------------------------------------------------------------------------


class Serving(StrEnum):
    incremental = "incremental"
    matview = "matview"


@glam.command("import")
def glam_import(
    product: Annotated[Product, typer.Option(help="desktop, fenix or fog.")],
    channel: Annotated[str, typer.Option(help="nightly, beta, release ...")],
    bucket: Annotated[
        str,
        typer.Option(metavar="URL", help="Folder, s3://bucket/prefix or gs://bucket/prefix."),
    ],
    workers: WorkersOpt = None,
    serving: Annotated[
        Serving,
        typer.Option(
            help="How the serving copy is kept: a view whose changed rows are held back until "
            "the run ends, or a materialized view refreshed concurrently."
        ),
    ] = Serving.incremental,
    as_json: JsonOpt = False,
) -> None:
    """Import a product/channel's aggregate shards (like manage.py import_glean_aggs)."""
    with engine(workers) as opened, progress() as bars:
        report = glam_api.import_aggregates(
            opened, product, channel, bucket, progress=bars, serving=serving.value
        )
    show_run(report, as_json)


@glam.command("generate")
def glam_generate(
    product: Annotated[Product, typer.Option(help="desktop, fenix or fog.")],
    channel: Annotated[str, typer.Option(help="nightly, beta, release ...")],
    out_url: Annotated[
        str, typer.Option("--out", metavar="URL", help="Folder or bucket URL to write.")
    ],
    rows: Annotated[int, typer.Option(min=1, metavar="N", help="Rows in all shards.")] = 10_000,
    shards: Annotated[int, typer.Option(min=1, metavar="N", help="Number of shard files.")] = 4,
    base: Annotated[
        str | None, typer.Option(metavar="URL", help="Write the next generation of this bucket.")
    ] = None,
    change: Annotated[
        float,
        typer.Option(min=0, max=1, help="With --base: fraction of rows given new values."),
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Random seed of a first generation.")] = 1,
    gzip: Annotated[bool, typer.Option("--gzip", help="Write .csv.gz shards.")] = False,
) -> None:
    """Write realistic GLAM shards (or the next day's generation of a bucket)."""
    report = glam_api.generate(
        product,
        channel,
        rows=rows,
        shards=shards,
        out=out_url,
        base=base,
        change=change,
        seed=seed,
        gzip_files=gzip,
        s3=settings().s3,
    )
    say(
        f"generation {report.generation}: {report.rows:,} rows in {len(report.files)} shards, "
        f"{report.bytes / 1e6:.1f} MB, {report.changed_rows:,} rows with new values → {out_url}"
    )


# -- CryoET ---------------------------------------------------------------------------------------


def _flag(name: str) -> Any:
    return typer.Option(
        f"--import-{name.replace('_', '-')}", help=f"Import {name.replace('_', ' ')}."
    )


@cryoet.command("load")
def cryoet_load(
    s3_bucket: Annotated[
        str, typer.Argument(help="Bucket name, s3:// URL or local folder.", metavar="BUCKET")
    ],
    https_prefix: Annotated[
        str, typer.Argument(help="Base of the https URLs of files.", metavar="HTTPS_PREFIX")
    ] = "",
    endpoint_url: Annotated[
        str | None,
        typer.Option(metavar="URL", help="S3-compatible endpoint (env SLUICE_S3_ENDPOINT_URL)."),
    ] = None,
    s3_prefix: Annotated[
        str,
        typer.Option(
            metavar="PREFIX",
            help="Dataset folder (whole path segments) or parent folder ending /.",
        ),
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
    full: Annotated[
        bool, typer.Option(help="Read every document again, not only those that changed.")
    ] = False,
    concurrency: Annotated[
        int, typer.Option(min=1, metavar="N", help="Documents fetched at once.")
    ] = DEFAULT_CONCURRENCY,
    as_json: JsonOpt = False,
) -> None:
    """Sync CryoET portal metadata (like db_import.importer load): create, update in place,
    delete stale rows within their parent. A re-run reads only what changed since the last
    sync (--full: everything)."""
    chosen = {name for name, value in locals().items() if name.startswith("import_") and value}
    flags = [name.removeprefix("import_") for name in chosen if name != "import_everything"]
    with engine() as opened:
        report = cryoet_api.load(
            opened,
            s3_bucket,
            https_prefix,
            endpoint_url=endpoint_url,
            s3_prefix=s3_prefix,
            deposition_ids=deposition_id or (),
            flags=flags,
            everything=import_everything,
            filter_datasets=filter_dataset or (),
            dry_run=dry_run,
            full=full,
            concurrency=concurrency,
        )
    if as_json:
        print_json(report.as_dict())
    else:
        render.sync_report(out, report)
    if not report.ok:
        raise typer.Exit(1)
