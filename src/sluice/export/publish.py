"""Where an exported day goes next: the lake (an Iceberg table per declaration) and the
warehouse (a DuckDB table per declaration), each replacing exactly that day."""

from __future__ import annotations

import pyarrow.parquet as pq

from sluice.export.day import DayExport
from sluice.export.spec import ExportSpec, ds_nodash
from sluice.lake import Lake
from sluice.warehouse import Warehouse


class LakeSink:
    """Adds the day's Parquet file to its Iceberg table, replacing the day's partition."""

    name = "lake"

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def publish(self, spec: ExportSpec, result: DayExport) -> int | None:
        if result.location is None:
            return None
        return self.lake.overwrite_partition(
            spec.lake_table,
            pq.read_schema(result.location),
            spec.day_column,
            ds_nodash(result.day),
            [result.location],
        )


class WarehouseSink:
    """Deletes the day from its DuckDB table and inserts it sorted by the clustering fields."""

    name = "warehouse"

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def publish(self, spec: ExportSpec, result: DayExport) -> int | None:
        self.warehouse.refresh_day(
            spec.lake_table,
            spec.day_column,
            ds_nodash(result.day),
            result.location,
            spec.clustering,
        )
        return None
