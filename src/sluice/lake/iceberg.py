"""Iceberg tables through pyiceberg's SQL catalog on a local (or object-store) warehouse."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any, BinaryIO, cast

import pyarrow as pa

from sluice.errors import ConfigError, SchemaError, StoreUnavailable

#: The namespace of sluice's tables in the catalog.
NAMESPACE = "sluice"
#: The PostgreSQL schema that holds the catalog's own tables (migration 0008).
CATALOG_SCHEMA = "sluice_lake"


@dataclass(frozen=True)
class LakeOptions:
    """Where the lake is: a warehouse (a folder, or an ``s3://`` URL), and a catalog database
    (default: a SQLite file in a local warehouse folder). `properties` are pyiceberg's FileIO
    settings (``s3.endpoint``, say)."""

    warehouse: Path | str
    catalog_uri: str | None = None
    namespace: str = NAMESPACE
    properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def local(self) -> Path | None:
        if isinstance(self.warehouse, Path):
            return self.warehouse
        if "://" not in self.warehouse or self.warehouse.startswith("file://"):
            return Path(self.warehouse.removeprefix("file://"))
        return None

    @property
    def uri(self) -> str:
        if self.catalog_uri:
            return self.catalog_uri
        if self.local is None:
            raise ConfigError(f"a lake on {self.warehouse} needs a catalog database")
        return f"sqlite:///{self.local / 'catalog.db'}"

    @property
    def warehouse_uri(self) -> str:
        local = self.local
        return local.resolve().as_uri() if local is not None else str(self.warehouse)


def postgres_catalog(database_url: str, schema: str = CATALOG_SCHEMA) -> str:
    """The SQLAlchemy URL of a catalog kept in `schema` of the PostgreSQL at `database_url`
    (a URL or a key=value connection string), through psycopg 3, the driver sluice has."""
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy.engine import URL

    try:
        params = {k: str(v) for k, v in conninfo_to_dict(database_url).items() if v is not None}
    except Exception as exc:
        raise ConfigError(f"the lake catalog needs a PostgreSQL connection: {exc}") from None
    user = params.pop("user", None)
    password = params.pop("password", None)
    dbname = params.pop("dbname", None)
    options = params.pop("options", "")
    params["options"] = f"{options} -csearch_path={schema}".strip()
    url = URL.create(
        "postgresql+psycopg", username=user, password=password, database=dbname, query=params
    )
    return url.render_as_string(hide_password=False)


@dataclass(frozen=True)
class TableInfo:
    """What ``sluice lake tables`` shows of one table."""

    name: str
    rows: int
    partitions: int
    snapshots: int
    files: int
    snapshot_id: int | None


class Lake:
    """The tables of one catalog. Commits of one process are serialised; commits of several
    processes are arbitrated by the catalog, and a lost race is a transient error the work
    queue retries."""

    def __init__(self, options: LakeOptions) -> None:
        from pyiceberg.catalog.sql import SqlCatalog

        self.options = options
        if options.local is not None:
            options.local.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self.catalog = SqlCatalog(
                "sluice",
                uri=options.uri,
                warehouse=options.warehouse_uri,
                **dict(options.properties),
            )
            self.catalog.create_namespace_if_not_exists(options.namespace)
        except Exception as exc:
            raise StoreUnavailable(f"opening the lake catalog: {exc}") from exc

    def _identifier(self, table: str) -> tuple[str, str]:
        return (self.options.namespace, table)

    def table(self, name: str, schema: pa.Schema, partition: str | Sequence[str]) -> Any:
        """The table `name`, created with `schema` and partitioned by the identity of the
        `partition` columns if it does not exist yet."""
        from pyiceberg.exceptions import NoSuchTableError

        ident = self._identifier(name)
        try:
            return self.catalog.load_table(ident)
        except NoSuchTableError:
            pass
        from pyiceberg.exceptions import CommitFailedException, TableAlreadyExistsError

        columns = [partition] if isinstance(partition, str) else list(partition)
        try:
            created = self.catalog.create_table_if_not_exists(ident, schema=schema)
            if not created.spec().fields:
                with created.update_spec() as update:
                    for column in columns:
                        update.add_identity(column)
        except (CommitFailedException, TableAlreadyExistsError) as exc:
            # another process created it (or its partitioning) at the same moment
            raise StoreUnavailable(f"lake table {name}: created concurrently; retrying") from exc
        return self.catalog.load_table(ident)

    def has(self, name: str) -> bool:
        return bool(self.catalog.table_exists(self._identifier(name)))

    @contextmanager
    def output(
        self, name: str, schema: pa.Schema, partition: Sequence[str], path: str
    ) -> Iterator[tuple[str, BinaryIO]]:
        """A new data file `path` (relative to the table's data folder) to write Parquet to,
        through the table's own file IO (local or object store); yields its location."""
        with self._lock:
            table = self.table(name, schema, partition)
        location = f"{table.location().rstrip('/')}/data/{path}"
        try:
            stream = table.io.new_output(location).create(overwrite=True)
        except OSError as exc:
            raise StoreUnavailable(f"lake table {name}: cannot write {location}: {exc}") from exc
        with stream:
            yield location, cast(BinaryIO, stream)

    def overwrite(
        self,
        name: str,
        schema: pa.Schema,
        match: Mapping[str, str],
        files: Sequence[str],
    ) -> int | None:
        """Replace the rows whose partition columns equal `match` by those of `files`
        (Parquet of `schema`), in one commit; return the table's snapshot id after it."""
        from pyiceberg.exceptions import (
            CommitFailedException,
            CommitStateUnknownException,
            ValidationException,
        )
        from pyiceberg.expressions import And, EqualTo

        where = ", ".join(f"{k}={v}" for k, v in match.items())
        with self._lock:
            table = self.table(name, schema, list(match))
            self._check(name, table, schema)
            # pyiceberg's expressions are pydantic models typed by keyword
            terms = [cast(Any, EqualTo)(k, v) for k, v in match.items()]
            condition = reduce(lambda a, b: cast(Any, And)(a, b), terms)
            try:
                with warnings.catch_warnings():
                    # a delete of whole partitions needs no rewrite; pyiceberg warns anyway
                    # when it plans one, which is not an error of ours
                    warnings.simplefilter("ignore")
                    with table.transaction() as tx:
                        tx.delete(condition)
                        if files:
                            tx.add_files(list(files))
            except (CommitFailedException, CommitStateUnknownException, ValidationException) as exc:
                # another process committed to the table first (pyiceberg's own retries can
                # end in a validation error over the same race): the work queue retries
                raise StoreUnavailable(
                    f"lake table {name}: another commit won the race for {where}; retrying ({exc})"
                ) from exc
            except OSError as exc:
                raise StoreUnavailable(f"lake table {name}: {exc}") from exc
            snapshot = self.catalog.load_table(self._identifier(name)).current_snapshot()
            return None if snapshot is None else int(snapshot.snapshot_id)

    def overwrite_partition(
        self,
        name: str,
        schema: pa.Schema,
        column: str,
        value: str,
        files: Sequence[str],
    ) -> int | None:
        """Replace the rows whose `column` is `value` by those of `files`, in one commit."""
        return self.overwrite(name, schema, {column: value}, files)

    def _check(self, name: str, table: Any, schema: pa.Schema) -> None:
        have = [f.name for f in table.schema().fields]
        if have != schema.names:
            raise SchemaError(
                f"lake table {name} has the columns {have}, the export writes {schema.names}"
            )

    def read(self, name: str) -> pa.Table:
        """The whole table (for checks and small tables: it is read into memory)."""
        return self.catalog.load_table(self._identifier(name)).scan().to_arrow()

    def tables(self) -> list[TableInfo]:
        """Every table of the namespace with its rows, partitions, snapshots and files."""
        found = []
        for ident in sorted(self.catalog.list_tables(self.options.namespace)):
            table = self.catalog.load_table(ident)
            files = table.inspect.files() if table.current_snapshot() else None
            rows = int(pa.compute.sum(files["record_count"]).as_py() or 0) if files else 0
            partitions = len(table.inspect.partitions()) if table.current_snapshot() else 0
            current = table.current_snapshot()
            found.append(
                TableInfo(
                    name=str(ident[-1]),
                    rows=rows,
                    partitions=partitions,
                    snapshots=len(table.snapshots()),
                    files=0 if files is None else len(files),
                    snapshot_id=None if current is None else int(current.snapshot_id),
                )
            )
        return found

    def scan(
        self, name: str, *, where: str | None = None, limit: int | None = None
    ) -> pa.RecordBatchReader:
        """The rows of `name` (matching the pyiceberg filter `where`, at most `limit`), as a
        stream of batches."""
        from pyiceberg.exceptions import NoSuchTableError

        try:
            table = self.catalog.load_table(self._identifier(name))
        except NoSuchTableError:
            known = ", ".join(t.name for t in self.tables()) or "none"
            raise ConfigError(f"there is no lake table {name!r} (tables: {known})") from None
        try:
            scan = table.scan(row_filter=where or "True", limit=limit)
            return scan.to_arrow_batch_reader()
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"lake scan of {name}: bad filter {where!r}: {exc}") from exc

    def live_files(self, name: str) -> list[str]:
        """The data files of the table's current snapshot (what a scan reads)."""
        table = self.catalog.load_table(self._identifier(name))
        if table.current_snapshot() is None:
            return []
        return [str(p) for p in table.inspect.files()["file_path"].to_pylist()]

    def close(self) -> None:
        engine = getattr(self.catalog, "engine", None)
        if engine is not None:
            engine.dispose()
