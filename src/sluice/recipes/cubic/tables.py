"""Cubic's names and key layouts (../shared/reference/notes/seeds-cubic.md §8, §10, §17).

* Lake tables: the registered name (``cubic_ods_qlik__edw_sample``), ``__ct`` appended for
  the change-tracking files of an ODS table, ``raw_`` in front for raw (all-string) tables.
* Archive: ODS files go under ``<dir>/snapshot=<YYYYMMDDTHHMMSSZ>/<file>`` (their snapshot),
  DMAP and stream files keep their key.
* Error: ``<dir>/timestamp=<YYYYMMDDTHHMMSSZ>/<file>`` (the object's modified time), for every
  kind: a re-published file that fails twice keeps both copies.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sluice.recipes.cubic.options import TableDeclaration

#: The suffix of an ODS table's change-tracking sibling folder.
CHANGE_SUFFIX = "__ct"


def stamp(moment: datetime) -> str:
    """``YYYYMMDDTHHMMSSZ`` in UTC, as the seed's keys spell snapshots and timestamps."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def change_prefix(prefix: str) -> str:
    """``cubic/ods_qlik/EDW.X/`` → ``cubic/ods_qlik/EDW.X__ct/``."""
    return f"{prefix.rstrip('/')}{CHANGE_SUFFIX}/"


def is_change_key(key: str) -> bool:
    """Whether `key` is a change-tracking file (its folder ends in ``__ct``)."""
    return posixpath.dirname(key).endswith(CHANGE_SUFFIX)


def default_name(prefix: str) -> str:
    """The seed's table name for a prefix: ``cubic/ods_qlik/EDW.SAMPLE/`` →
    ``cubic_ods_qlik__edw_sample``, ``cubic/dmap/agg_sample/`` → ``cubic_dmap__agg_sample``."""
    parts = [p for p in prefix.strip("/").split("/") if p]
    if len(parts) < 2:
        return re.sub(r"[^a-z0-9]+", "_", prefix.lower()).strip("_")
    head = re.sub(r"[^a-z0-9_]+", "_", "_".join(parts[:-1]).lower())
    tail = re.sub(r"[^a-z0-9]+", "_", parts[-1].lower()).strip("_")
    return f"{head}__{tail}"


def lake_table(table: TableDeclaration, key: str) -> str:
    """The lake table of a file of `table`."""
    name = table.name + (CHANGE_SUFFIX if is_change_key(key) else "")
    return f"raw_{name}" if table.raw else name


def archive_key(table: TableDeclaration, key: str, snapshot: datetime | None) -> str:
    if table.kind != "ods" or snapshot is None:
        return key
    folder, name = posixpath.split(key)
    return f"{folder}/snapshot={stamp(snapshot)}/{name}"


def error_key(table: TableDeclaration, key: str, modified: datetime | None) -> str:
    folder, name = posixpath.split(key)
    moment = modified or datetime.now(UTC)
    return f"{folder}/timestamp={stamp(moment)}/{name}" if folder else name


@dataclass(frozen=True)
class CubicLayout:
    """The recipe's names and keys, as the routing stage asks for them."""

    def lake_table(self, table: TableDeclaration, key: str) -> str:
        return lake_table(table, key)

    def archive_key(self, table: TableDeclaration, key: str, snapshot: datetime | None) -> str:
        return archive_key(table, key, snapshot)

    def error_key(self, table: TableDeclaration, key: str, modified: datetime | None) -> str:
        return error_key(table, key, modified)

    def prefixes(self, table: TableDeclaration) -> list[str]:
        """The Incoming prefixes of `table`, in key order (its own, then ``__ct``)."""
        if table.kind == "ods":
            return [table.prefix, change_prefix(table.prefix)]
        return [table.prefix]

    def is_change(self, key: str) -> bool:
        return is_change_key(key)


CUBIC_LAYOUT = CubicLayout()
