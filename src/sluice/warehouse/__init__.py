"""The embedded warehouse: a DuckDB file with the exported tables, refreshed a day at a time."""

from sluice.warehouse.duck import Warehouse, WarehouseOptions

__all__ = ["Warehouse", "WarehouseOptions"]
