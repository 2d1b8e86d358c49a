"""Iceberg tables through pyiceberg's SQL catalog on a local (or object-store) warehouse."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pyarrow as pa

from sluice.errors import SchemaError, StoreUnavailable

#: The namespace of sluice's tables in the catalog.
NAMESPACE = "sluice"


@dataclass(frozen=True)
class LakeOptions:
    """Where the lake is: a warehouse folder, and a catalog database (default: a SQLite file
    in that folder)."""

    warehouse: Path
    catalog_uri: str | None = None
    namespace: str = NAMESPACE

    @property
    def uri(self) -> str:
        return self.catalog_uri or f"sqlite:///{self.warehouse / 'catalog.db'}"


class Lake:
    """The tables of one catalog. Commits of one process are serialised (SQLite writes one
    at a time anyway); commits of several processes are arbitrated by the catalog, and a
    lost race is a transient error the work queue retries."""

    def __init__(self, options: LakeOptions) -> None:
        from pyiceberg.catalog.sql import SqlCatalog

        self.options = options
        options.warehouse.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self.catalog = SqlCatalog(
                "sluice", uri=options.uri, warehouse=options.warehouse.resolve().as_uri()
            )
            self.catalog.create_namespace_if_not_exists(options.namespace)
        except Exception as exc:
            raise StoreUnavailable(f"opening the lake catalog {options.uri}: {exc}") from exc

    def _identifier(self, table: str) -> tuple[str, str]:
        return (self.options.namespace, table)

    def table(self, name: str, schema: pa.Schema, partition: str) -> Any:
        """The table `name`, created with `schema` and partitioned by `partition` (identity)
        if it does not exist yet."""
        from pyiceberg.exceptions import NoSuchTableError

        ident = self._identifier(name)
        try:
            return self.catalog.load_table(ident)
        except NoSuchTableError:
            pass
        created = self.catalog.create_table_if_not_exists(ident, schema=schema)
        if not created.spec().fields:
            with created.update_spec() as update:
                update.add_identity(partition)
        return self.catalog.load_table(ident)

    def overwrite_partition(
        self,
        name: str,
        schema: pa.Schema,
        column: str,
        value: str,
        files: Sequence[str],
    ) -> int | None:
        """Replace the rows whose `column` is `value` by those of `files` (Parquet of
        `schema`), in one commit; return the table's snapshot id after it."""
        from pyiceberg.exceptions import CommitFailedException
        from pyiceberg.expressions import EqualTo

        with self._lock:
            table = self.table(name, schema, column)
            self._check(name, table, schema)
            try:
                with warnings.catch_warnings():
                    # a delete of whole partitions needs no rewrite; pyiceberg warns anyway
                    # when it plans one, which is not an error of ours
                    warnings.simplefilter("ignore")
                    with table.transaction() as tx:
                        # pyiceberg's expressions are pydantic models typed by keyword
                        tx.delete(cast(Any, EqualTo)(column, value))
                        if files:
                            tx.add_files(list(files))
            except CommitFailedException as exc:
                raise StoreUnavailable(
                    f"lake table {name}: another commit won the race for {column}={value}; "
                    f"retrying ({exc})"
                ) from exc
            except OSError as exc:
                raise StoreUnavailable(f"lake table {name}: {exc}") from exc
            snapshot = self.catalog.load_table(self._identifier(name)).current_snapshot()
            return None if snapshot is None else int(snapshot.snapshot_id)

    def _check(self, name: str, table: Any, schema: pa.Schema) -> None:
        have = [f.name for f in table.schema().fields]
        if have != schema.names:
            raise SchemaError(
                f"lake table {name} has the columns {have}, the export writes {schema.names}"
            )

    def read(self, name: str) -> pa.Table:
        """The whole table (for checks and small tables: it is read into memory)."""
        return self.catalog.load_table(self._identifier(name)).scan().to_arrow()

    def close(self) -> None:
        engine = getattr(self.catalog, "engine", None)
        if engine is not None:
            engine.dispose()
