"""What a source of day-partitioned tables declares, for the export machinery to do the rest.

A source keeps one table per (prefix, some name parts, day), such as mozaggregator's
``submission_date_nightly_43_20191201``: the table name carries values that are not in the
rows (channel, version, day), the rows carry a JSON object of dimensions and an integer array
whose last elements are totals (sum, count). A recipe declares the prefixes, the name parts
with their anchored patterns, the JSON keys, the array's tail and the output order; nothing
here knows mozaggregator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sluice.errors import ConfigError

#: How the day is written in table names and in the ``ds_nodash`` column.
DAY_FORMAT = "%Y%m%d"


@dataclass(frozen=True)
class NamePart:
    """A value carried by a table's name: its output column and its anchored pattern."""

    column: str
    pattern: str


@dataclass(frozen=True)
class ExportSpec:
    """One kind of day-partitioned table (one aggregate type), as a recipe declares it."""

    #: The table-name prefix, also the value of the `type_column` (``submission_date``).
    prefix: str
    #: Name parts between the prefix and the day, in order (channel, version).
    parts: tuple[NamePart, ...]
    #: The rows' JSON object column and the keys flattened out of it, in output order.
    json_column: str
    json_keys: tuple[str, ...]
    #: The rows' integer array column; its last elements are `tail` (sum, count), the rest
    #: are buckets.
    array_column: str
    tail: tuple[str, ...]
    #: Output column names: the buckets list, the export date, the prefix, the day.
    buckets_column: str = "aggregate"
    ingest_column: str = "ingest_date"
    type_column: str = "aggregate_type"
    day_column: str = "ds_nodash"
    #: Fields the warehouse table is sorted by.
    clustering: tuple[str, ...] = ()
    #: The table of the lake and of the warehouse that receives these days.
    lake_table: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.prefix):
            raise ConfigError(f"export prefix {self.prefix!r} is not a plain table-name prefix")
        for part in self.parts:
            re.compile(part.pattern)
            if "(" in part.pattern:
                raise ConfigError(f"name part {part.column}: its pattern may not have groups")

    def name_regex(self, day: date) -> str:
        """An anchored pattern matching exactly the table names of `day` (PostgreSQL and
        Python regular expressions alike): the prefix, each part's pattern in a group, the
        day."""
        groups = "".join(f"_({part.pattern})" for part in self.parts)
        return f"^{re.escape(self.prefix)}{groups}_{day.strftime(DAY_FORMAT)}$"

    def name_values(self, table: str, day: date) -> dict[str, str]:
        """The values of the name parts of `table`, checked against the day's pattern."""
        found = re.fullmatch(self.name_regex(day), table)
        if found is None:
            raise ConfigError(
                f"table {table!r} does not match {self.name_regex(day)!r} (its day's names)"
            )
        return {part.column: found.group(i + 1) for i, part in enumerate(self.parts)}

    @property
    def string_columns(self) -> tuple[str, ...]:
        """The text columns of the output, in order."""
        named = tuple(part.column for part in self.parts)
        return (self.type_column, self.day_column, *named, *self.json_keys)


def ds_nodash(day: date) -> str:
    return day.strftime(DAY_FORMAT)
