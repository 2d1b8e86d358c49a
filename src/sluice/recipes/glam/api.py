"""GLAM verbs: import a product/channel's aggregate shards, generate sample buckets.

``import_aggregates`` is the equivalent of GLAM's ``manage.py import_glean_aggs <channel>`` /
``import_desktop_aggs <channel>``: every matching shard is loaded exactly once per object version
(upsert on the dimensions, unchanged rows untouched), then, if anything changed, the serving
copy is brought up to date: the keys the loads changed applied in one transaction (or, with
``serving="matview"``, the materialized view refreshed concurrently).
"""

from __future__ import annotations

from sluice.api import Engine
from sluice.load.spec import ServingKind
from sluice.recipes.glam.generate import GenerateReport, generate
from sluice.recipes.glam.tables import Product, feed
from sluice.runtime.progress import Progress
from sluice.runtime.report import RunReport

__all__ = ["GenerateReport", "generate", "import_aggregates"]


def import_aggregates(
    engine: Engine,
    product: Product,
    channel: str,
    bucket: str,
    *,
    progress: Progress | None = None,
    serving: ServingKind = "incremental",
    refresh: bool = True,
) -> RunReport:
    """Load the aggregate shards of `product`/`channel` found in `bucket`, then bring the
    table's serving copy up to date (unless `refresh` is False)."""
    return engine.run_feeds(
        [feed(product, channel, bucket, serving=serving)],
        command=f"glam import --product {product} --channel {channel}",
        progress=progress,
        refresh=refresh,
    )
