"""Declarations of mozaggregator's day tables (reference notes, part 2).

Tables are named ``{submission_date|build_id}_{channel}_{version}_{YYYYMMDD}``; rows are
``dimensions jsonb`` (seven keys) and ``histogram bigint[]`` (buckets, then sum, then count).
Channel and version come from the name, checked by anchored patterns (never by splitting on
``_``); the date is the day asked for.
"""

from __future__ import annotations

from typing import Literal, get_args

from sluice.errors import ConfigError
from sluice.export.spec import ExportSpec, NamePart

AggregateType = Literal["submission_date", "build_id"]
TYPES: tuple[AggregateType, ...] = get_args(AggregateType)
#: The source schema a generated source is written to, and read from by default.
DEFAULT_SCHEMA = "mozaggregator"

#: Channels mozaggregator aggregated; versions are major versions (odd ones like 0 and 1 exist).
CHANNELS = ("nightly", "aurora", "beta", "release")
CHANNEL = NamePart("channel", "nightly|aurora|beta|release")
VERSION = NamePart("version", "[0-9]{1,4}")
#: The keys of ``dimensions``, in the output order of the seed.
DIMENSIONS = ("os", "child", "label", "metric", "osVersion", "application", "architecture")

#: The seed's clustering fields of each BigQuery table.
CLUSTERING: dict[AggregateType, tuple[str, ...]] = {
    "build_id": ("metric", "channel", "os", "version"),
    "submission_date": ("ds_nodash", "version", "metric", "channel"),
}


def spec(kind: str) -> ExportSpec:
    """The export declaration of one aggregate type."""
    if kind not in TYPES:
        raise ConfigError(f"unknown aggregate type {kind!r} (known: {', '.join(TYPES)})")
    chosen: AggregateType = "build_id" if kind == "build_id" else "submission_date"
    return ExportSpec(
        prefix=chosen,
        parts=(CHANNEL, VERSION),
        json_column="dimensions",
        json_keys=DIMENSIONS,
        array_column="histogram",
        tail=("sum", "count"),
        clustering=CLUSTERING[chosen],
        lake_table=f"{chosen}_aggregates",
    )


def feed_name(kind: str) -> str:
    """The export feed of an aggregate type on the ledger."""
    return f"mozagg.{kind}"


def table_name(kind: str, channel: str, version: str, day: str) -> str:
    return f"{kind}_{channel}_{version}_{day}"


#: The recipe's name in export declarations (``recipe = "mozagg"``).
RECIPE = "mozagg"
#: The export recipes this package gives the runtime: recipe name → its declarations.
RECIPES = {RECIPE: spec}
