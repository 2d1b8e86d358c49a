"""The Cubic recipe: declarations only. Which Incoming prefixes are tables, how their lake
tables are named and where Archive and Error keep their files; the routing itself is the
general stage `sluice.route`."""

from sluice.recipes.cubic.options import CubicOptions, TableDeclaration
from sluice.recipes.cubic.tables import (
    CUBIC_LAYOUT,
    archive_key,
    default_name,
    error_key,
    is_change_key,
    lake_table,
    stamp,
)

__all__ = [
    "CUBIC_LAYOUT",
    "CubicOptions",
    "TableDeclaration",
    "archive_key",
    "default_name",
    "error_key",
    "is_change_key",
    "lake_table",
    "stamp",
]
