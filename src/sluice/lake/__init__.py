"""The shared lake: Iceberg tables (pyiceberg) partitioned by a day column, each day written by
replacing exactly its partition.

A `Lake` is a SQL catalog (by default SQLite, in the lake's folder) and a warehouse folder.
`overwrite_partition` deletes the partition's rows and adds the day's Parquet files in one
Iceberg transaction (one commit), so a re-export never duplicates rows and a failed commit
leaves the table as it was; it returns the snapshot id, which the caller records.
"""

from sluice.lake.iceberg import Lake, LakeOptions

__all__ = ["Lake", "LakeOptions"]
