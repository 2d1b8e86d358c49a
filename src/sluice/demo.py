"""The quick-start job: a sample GLAM bucket imported twice into the configured database, and a
generated CryoET portal tree synced into it.

Day one loads every shard; day two re-exports the bucket with 10 % of the rows changed, and the
second import updates exactly those rows, leaves the others untouched and refreshes the serving
views concurrently.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from sluice import render
from sluice.api import Engine
from sluice.recipes.cryoet.api import load as cryoet_load
from sluice.recipes.cryoet.generate import generate_tree
from sluice.recipes.glam.generate import generate
from sluice.recipes.glam.tables import feed
from sluice.runtime.progress import Progress

CHANGE = 0.1
CRYOET_RUNS = 5
CRYOET_QUERY = (
    "SELECT r.name, t.voxel_spacing, t.size_x FROM cryoet.tomogram t "
    "JOIN cryoet.run r ON r.id = t.run_id ORDER BY 1, 2"
)
EXAMPLE_QUERY = (
    "SELECT metric, os, build_id, total_users FROM view_glam_desktop_nightly_aggregation "
    "ORDER BY total_users DESC LIMIT 5"
)


def run_demo(engine: Engine, bucket: Path, rows: int, console: Console, progress: Progress) -> None:
    url = str(bucket)
    console.print(f"[bold]1.[/] writing a sample GLAM bucket to {url}")
    desktop = generate("desktop", "nightly", rows=rows, shards=4, out=url)
    fenix = generate("fenix", "nightly", rows=max(rows // 2, 1), shards=2, out=url)
    console.print(
        f"   {desktop.rows:,} desktop rows and {fenix.rows:,} fenix rows "
        f"({(desktop.bytes + fenix.bytes) / 1e6:.1f} MB)"
    )
    feeds = [feed("desktop", "nightly", url), feed("fenix", "nightly", url)]

    console.print("[bold]2.[/] importing day one")
    render.run_report(console, engine.run_feeds(feeds, command="demo day 1", progress=progress))

    console.print(f"[bold]3.[/] re-exporting the bucket with {CHANGE:.0%} of the rows changed")
    generate("desktop", "nightly", rows=0, shards=0, out=url, base=url, change=CHANGE)
    generate("fenix", "nightly", rows=0, shards=0, out=url, base=url, change=CHANGE)

    console.print("[bold]4.[/] importing day two: only changed rows are written")
    render.run_report(console, engine.run_feeds(feeds, command="demo day 2", progress=progress))

    cryoet = bucket / "cryoet"
    console.print(
        f"[bold]5.[/] syncing a generated CryoET portal tree ({CRYOET_RUNS} runs) from {cryoet}"
    )
    tree = generate_tree(str(cryoet), runs=CRYOET_RUNS)
    report = cryoet_load(
        engine,
        str(cryoet),
        "https://files.example",
        s3_prefix=str(tree.dataset),
        everything=True,
        command="demo cryoet",
    )
    render.sync_report(console, report)

    where = "the embedded PostgreSQL" if engine.db.embedded else engine.db.display_url
    console.print(f"\nDone: the data is in {where}. Look at it with:")
    console.print(
        "  sluice status\n"
        f'  sluice sql "{EXAMPLE_QUERY}"\n'
        f'  sluice sql "{CRYOET_QUERY}"\n'
        "  sluice db shell\n"
        "(run them through .venv/bin/sluice, or activate the virtual environment first)"
    )
