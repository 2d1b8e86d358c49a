"""SQL composed from an export declaration: the per-table COPY that flattens rows on the server,
and the statements of a generated source. Names are composed with `psycopg.sql`, never pasted.
"""

from __future__ import annotations

from psycopg import sql

from sluice.export.spec import ExportSpec


def reason(spec: ExportSpec) -> sql.Composable:
    """Why a row cannot be exported (NULL when it can): its JSON is not an object, its array
    is missing, too short for its tail, or has a NULL element."""
    doc = sql.Identifier(spec.json_column)
    arr = sql.Identifier(spec.array_column)
    tail = sql.Literal(len(spec.tail))
    return sql.SQL(
        "CASE WHEN {doc} IS NOT NULL AND jsonb_typeof({doc}) <> 'object'"
        " THEN {doc_name} || ' is a JSON ' || jsonb_typeof({doc}) || ', not an object'"
        " WHEN {arr} IS NULL THEN {arr_name} || ' is NULL'"
        " WHEN cardinality({arr}) < {tail}"
        " THEN {arr_name} || ' has ' || cardinality({arr}) || ' elements, fewer than ' || {tail}"
        " WHEN array_position({arr}, NULL) IS NOT NULL THEN {arr_name} || ' has a NULL element'"
        " END"
    ).format(
        doc=doc,
        arr=arr,
        tail=tail,
        doc_name=sql.Literal(spec.json_column),
        arr_name=sql.Literal(spec.array_column),
    )


def export_copy(spec: ExportSpec, schema: str, table: str, *, as_string: bool) -> sql.Composed:
    """``COPY (SELECT ...) TO STDOUT`` of one table, flattened: the reason a row is rejected
    (NULL for good rows), the JSON keys as text, the buckets as an array literal, the tail
    elements, optionally the whole array as the seed's bracketed string, and the raw values
    of rejected rows. Tab-separated CSV (NULL unquoted empty, empty strings quoted)."""
    doc = sql.Identifier(spec.json_column)
    arr = sql.Identifier(spec.array_column)
    n = sql.SQL("cardinality({})").format(arr)
    fields: list[sql.Composable] = [sql.Identifier("reason")]
    fields += [sql.SQL("{} ->> {}").format(doc, sql.Literal(key)) for key in spec.json_keys]
    good = sql.SQL("reason IS NULL")
    fields.append(
        sql.SQL("CASE WHEN {} THEN {}[1:{} - {}] END").format(
            good, arr, n, sql.Literal(len(spec.tail))
        )
    )
    for i in range(len(spec.tail)):
        back = len(spec.tail) - 1 - i
        fields.append(
            sql.SQL("CASE WHEN {} THEN {}[{} - {}] END").format(good, arr, n, sql.Literal(back))
        )
    if as_string:
        fields.append(
            sql.SQL("CASE WHEN {} THEN translate({}::text, '{{}}', '[]') END").format(good, arr)
        )
    fields.append(sql.SQL("CASE WHEN reason IS NOT NULL THEN {}::text END").format(doc))
    fields.append(sql.SQL("CASE WHEN reason IS NOT NULL THEN {}::text END").format(arr))
    return sql.SQL(
        "COPY (SELECT {fields} FROM (SELECT {doc}, {arr}, {reason} AS reason FROM {table}) t)"
        " TO STDOUT (FORMAT csv, DELIMITER E'\\t')"
    ).format(
        fields=sql.SQL(", ").join(fields),
        doc=doc,
        arr=arr,
        reason=reason(spec),
        table=sql.Identifier(schema, table),
    )


def plain_copy(schema: str, table: str) -> sql.Composed:
    """The table as it is, in COPY text format: what pg_dump writes (the floor of a read)."""
    return sql.SQL("COPY {} TO STDOUT").format(sql.Identifier(schema, table))


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
