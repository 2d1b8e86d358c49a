"""SQL composed from an export declaration: the per-table SELECT that the Arrow fetch reads,
and the statements of a generated source. Names are composed with `psycopg.sql`, never pasted.
"""

from __future__ import annotations

from psycopg import sql

from sluice.export.spec import ExportSpec


def export_select(spec: ExportSpec, schema: str, table: str, as_string: bool) -> str:
    """The ``SELECT`` of one table for the Arrow fetch, flattened where the server does it
    cheaply: the JSON's type when it is not an object, its text when the row is rejected, the JSON
    keys as text (``->>``), the whole array in its binary form (split into buckets and tail
    by the client),
    optionally the array as the seed's bracketed string."""
    doc = sql.Identifier(spec.json_column)
    arr = sql.Identifier(spec.array_column)
    odd = sql.SQL("jsonb_typeof({doc}) <> 'object'").format(doc=doc)
    # the same test as the client's, for the JSON text of a rejected row (cheap next to
    # sending the row: measured within noise of the plain COPY)
    rejected = sql.SQL(
        "{odd} OR {arr} IS NULL OR cardinality({arr}) < {tail}"
        " OR array_position({arr}, NULL) IS NOT NULL"
    ).format(odd=odd, arr=arr, tail=sql.Literal(len(spec.tail)))
    fields: list[sql.Composable] = [
        sql.SQL("CASE WHEN {} THEN jsonb_typeof({}) END").format(odd, doc),
        sql.SQL("CASE WHEN {} THEN {}::text END").format(rejected, doc),
    ]
    fields += [sql.SQL("{} ->> {}").format(doc, sql.Literal(key)) for key in spec.json_keys]
    # the binary form, decoded vectorised by the client (ADBC's own decoding of a bigint[]
    # costs about 36 ns an element, most of the client's time)
    fields.append(sql.SQL("array_send({}::bigint[])").format(arr))
    if as_string:
        fields.append(sql.SQL("translate({}::text, '{{}}', '[]')").format(arr))
    statement = sql.SQL("SELECT {fields} FROM {table}").format(
        fields=sql.SQL(", ").join(fields), table=sql.Identifier(schema, table)
    )
    return statement.as_string()


def snapshot_isolation() -> str:
    return "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


def import_snapshot(snapshot: str) -> str:
    """Read in the snapshot another connection exported (``SET`` takes no parameters: the
    id is quoted as a literal)."""
    return sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)).as_string()


def create_schema(schema: str) -> sql.Composed:
    return sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))


def create_source_table(spec: ExportSpec, schema: str, table: str) -> sql.Composed:
    """A source table as mozaggregator makes them: the JSON column and the bigint array."""
    return sql.SQL(
        "DROP TABLE IF EXISTS {t}; CREATE TABLE {t} ({doc} jsonb, {arr} bigint[])"
    ).format(
        t=sql.Identifier(schema, table),
        doc=sql.Identifier(spec.json_column),
        arr=sql.Identifier(spec.array_column),
    )


def copy_into(spec: ExportSpec, schema: str, table: str) -> sql.Composed:
    return sql.SQL("COPY {} ({}, {}) FROM STDIN").format(
        sql.Identifier(schema, table),
        sql.Identifier(spec.json_column),
        sql.Identifier(spec.array_column),
    )


def create_gin_index(spec: ExportSpec, schema: str, table: str) -> sql.Composed:
    """The index mozaggregator puts on every table (its dimension lookups)."""
    return sql.SQL("CREATE INDEX {} ON {} USING GIN ({} jsonb_path_ops)").format(
        sql.Identifier(f"{table}_dims"),
        sql.Identifier(schema, table),
        sql.Identifier(spec.json_column),
    )
