"""The shared lake: Iceberg tables (pyiceberg) partitioned by identity columns (a day; a snapshot
and a file name), each partition written by replacing exactly it.

A `Lake` is a SQL catalog (by default SQLite, in the lake's folder; or a schema of the ledger's
PostgreSQL, `postgres_catalog`) and a warehouse (a folder, or an object-store URL).
`overwrite_partition` deletes the partition's rows and adds the day's Parquet files in one
Iceberg transaction (one commit), so a re-export never duplicates rows and a failed commit
leaves the table as it was; it returns the snapshot id, which the caller records.
"""

from sluice.lake.iceberg import Lake, LakeOptions, TableInfo, postgres_catalog

__all__ = ["Lake", "LakeOptions", "TableInfo", "postgres_catalog"]
