"""GLAM verbs: import a product/channel's aggregate shards, generate sample buckets.

``import_aggregates`` is the equivalent of GLAM's ``manage.py import_glean_aggs <channel>`` /
``import_desktop_aggs <channel>``: every matching shard is loaded exactly once per object version
(upsert on the dimensions, unchanged rows untouched), then the serving view is refreshed
concurrently if anything changed.
"""

from __future__ import annotations

from sluice.api import Engine
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
) -> RunReport:
    """Load the aggregate shards of `product`/`channel` found in `bucket`."""
    return engine.run_feeds(
        [feed(product, channel, bucket)],
        command=f"glam import --product {product} --channel {channel}",
        progress=progress,
    )
