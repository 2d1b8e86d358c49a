"""GLAM's aggregation tables, serving copies and file patterns (declarations only).

From reference/notes/seeds-glam-mozagg.md §1.2–1.4 (shared design folder): a desktop table
per channel (14 CSV columns, unique on 7 dimensions without metric_type) and one table per Glean
product (the same 14 CSV columns in Glean order, plus ``app_id`` injected from the command's
channel; unique on 10 columns). Upserts overwrite only the measured values; dimension columns,
``metric_type`` (desktop) and ``build_date`` (Glean) keep their first-seen value.

The unique constraints list their columns most selective first: uniqueness does not depend on
the order, and index maintenance is cheaper when comparisons stop early.
"""

from __future__ import annotations

import re
from typing import Literal

from sluice.errors import ConfigError
from sluice.load.spec import Column, Feed, Index, ServingKind, ServingView, TableSpec

Product = Literal["desktop", "fenix", "fog"]
PRODUCTS: tuple[Product, ...] = ("desktop", "fenix", "fog")
#: The product token in Glean export file names.
GLEAN_APPS = {"fenix": "org_mozilla_fenix", "fog": "firefox_desktop"}
# Short enough for every derived name (view, constraint) to stay within 63 characters.
_CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,29}$")


def _col(name: str, kind: str, nullable: bool = True) -> Column:
    return Column(name=name, type=kind, nullable=nullable)


DESKTOP_COLUMNS = (
    _col("version", "bigint"),
    _col("os", "varchar(100)"),
    _col("build_id", "varchar(100)"),
    _col("process", "varchar(50)"),
    _col("metric", "varchar(200)"),
    _col("metric_key", "varchar(200)", nullable=False),
    _col("client_agg_type", "varchar(100)", nullable=False),
    _col("metric_type", "varchar(100)"),
    _col("total_users", "integer"),
    _col("histogram", "text"),
    _col("percentiles", "text"),
    _col("total_sample", "bigint"),
    _col("non_norm_histogram", "text"),
    _col("non_norm_percentiles", "text"),
)
DESKTOP_KEY = ("metric", "build_id", "metric_key", "os", "process", "version", "client_agg_type")
DESKTOP_VALUES = (
    "total_users",
    "histogram",
    "percentiles",
    "total_sample",
    "non_norm_histogram",
    "non_norm_percentiles",
)

GLEAN_COLUMNS = (
    _col("channel", "varchar(100)"),
    _col("version", "bigint"),
    _col("ping_type", "varchar(100)"),
    _col("os", "varchar(100)"),
    _col("build_id", "varchar(100)"),
    _col("build_date", "timestamptz"),
    _col("metric", "varchar(200)"),
    _col("metric_type", "varchar(100)"),
    _col("metric_key", "varchar(200)", nullable=False),
    _col("client_agg_type", "varchar(100)", nullable=False),
    _col("total_users", "integer"),
    _col("histogram", "text"),
    _col("percentiles", "text"),
    _col("total_sample", "bigint"),
)
GLEAN_KEY = (
    "metric",
    "build_id",
    "metric_key",
    "os",
    "ping_type",
    "version",
    "app_id",
    "channel",
    "metric_type",
    "client_agg_type",
)
GLEAN_VALUES = ("total_users", "histogram", "percentiles", "total_sample")


def check_channel(channel: str) -> str:
    if not _CHANNEL.match(channel):
        raise ConfigError(
            f"channel {channel!r} is not valid: use at most 30 lower-case letters, digits and _ "
            "(e.g. nightly, beta, release)"
        )
    return channel


def table_name(product: Product, channel: str) -> str:
    if product == "desktop":
        return f"glam_desktop_{check_channel(channel)}_aggregation"
    return f"glam_{product}_aggregation"


def table_spec(product: Product, channel: str, serving: ServingKind = "incremental") -> TableSpec:
    """The aggregation table a product/channel import writes to. Its serving copy is a table
    kept from each run's changes (``incremental``) or a materialized view (``matview``)."""
    name = table_name(product, channel)
    view = f"view_{name}"
    if product == "desktop":
        return TableSpec(
            name=name,
            columns=DESKTOP_COLUMNS,
            key=DESKTOP_KEY,
            values=DESKTOP_VALUES,
            key_name=f"desktop_{channel}_unique_dimensions",
            serving=ServingView(
                name=view,
                indexes=(
                    Index(("id",), unique=True),
                    Index(("version",)),
                    Index(("metric",), method="hash"),
                    Index(("os",)),
                ),
                kind=serving,
            ),
        )
    if product not in GLEAN_APPS:
        raise ConfigError(f"unknown GLAM product {product!r}; use one of {', '.join(PRODUCTS)}")
    return TableSpec(
        name=name,
        columns=GLEAN_COLUMNS,
        constants=(_col("app_id", "varchar(100)", nullable=False),),
        key=GLEAN_KEY,
        values=GLEAN_VALUES,
        key_name=f"{product}_unique_dimensions",
        serving=ServingView(
            name=view,
            indexes=(
                Index(("id",), unique=True),
                Index(("version",)),
                Index(("app_id",)),
                Index(("metric",), method="hash"),
            ),
            kind=serving,
        ),
    )


def shard_pattern(product: Product, channel: str) -> str:
    """Anchored pattern of a product/channel's aggregate shards; ``-counts.csv`` never matches."""
    check_channel(channel)
    if product == "desktop":
        stem = f"aggs-desktop-{channel}"
    else:
        stem = f"glam-extract-{GLEAN_APPS[product]}_glam_{channel}"
    return re.escape(stem) + r"-\d+\.csv(\.gz)?"


def shard_name(product: Product, channel: str, shard: int, *, gzip: bool = False) -> str:
    stem = (
        f"aggs-desktop-{channel}"
        if product == "desktop"
        else f"glam-extract-{GLEAN_APPS[product]}_glam_{channel}"
    )
    return f"{stem}-{shard:012d}.csv" + (".gz" if gzip else "")


def feed(
    product: Product, channel: str, bucket: str, *, serving: ServingKind = "incremental"
) -> Feed:
    """The feed of one product/channel import from `bucket` (a folder or a bucket URL)."""
    if product not in PRODUCTS:
        raise ConfigError(f"unknown GLAM product {product!r}; use one of {', '.join(PRODUCTS)}")
    spec = table_spec(product, channel, serving)
    constants = {} if product == "desktop" else {"app_id": channel}
    return Feed(
        name=f"glam_{product}_{channel}",
        table=spec,
        source=bucket,
        pattern=shard_pattern(product, channel),
        constants=constants,
    )
