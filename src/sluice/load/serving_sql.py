"""SQL of incremental serving copies, composed with `psycopg.sql` from a table's declaration.

The serving copy is a table with the target's surrogate key and declared columns, in that order.
Keys changed by loads are recorded in ``sluice.serving_pending`` (target id, surrogate key); the
apply moves them into a temporary table and brings exactly those rows of the serving table to
the target's current rows, in one ``MERGE``.
"""

from __future__ import annotations

import hashlib

from psycopg import sql

from sluice.load import statements as st
from sluice.load.spec import Index, TableSpec

PENDING = st.PENDING


def serving(spec: TableSpec) -> sql.Identifier:
    assert spec.serving is not None
    return sql.Identifier(spec.schema, spec.serving.name)


def _short(name: str, suffix: str) -> str:
    """`name` + `suffix` within 63 characters: a long name keeps its head and a hash."""
    full = f"{name}_{suffix}"
    if len(full) <= 63:
        return full
    digest = hashlib.sha1(full.encode()).hexdigest()[:8]
    return f"{full[: 63 - len(suffix) - 10]}_{digest}_{suffix}"


def build_name(spec: TableSpec) -> str:
    """The table a bulk build fills before it takes the serving copy's place."""
    assert spec.serving is not None
    return _short(spec.serving.name, "build")


def columns(spec: TableSpec) -> tuple[str, ...]:
    """The serving copy's columns: the surrogate key, then the declared columns."""
    assert spec.surrogate is not None
    return (spec.surrogate, *(c.name for c in spec.all_columns))


def indexes(spec: TableSpec) -> tuple[Index, ...]:
    """The declared indexes, and a unique one on the surrogate key if none is declared: the
    apply finds rows by that key."""
    assert spec.serving is not None and spec.surrogate is not None
    declared = spec.serving.indexes
    if any(ix.unique and ix.columns == (spec.surrogate,) for ix in declared):
        return declared
    return (Index((spec.surrogate,), unique=True), *declared)


def _names(cols: tuple[str, ...], prefix: str | None = None) -> sql.Composed:
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    return sql.SQL(", ").join(sql.Identifier(prefix, c) for c in cols)


def relkind() -> sql.SQL:
    """What the serving name is now: ``r`` a table, ``m`` a materialized view, NULL nothing."""
    return sql.SQL("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(%s)")


def create_empty(spec: TableSpec, name: str) -> sql.Composed:
    """An empty serving table (the target's column types and collations, no defaults)."""
    assert spec.serving is not None
    return sql.SQL(
        "CREATE TABLE {} WITH (fillfactor = {}) AS SELECT {} FROM {} WITH NO DATA"
    ).format(
        sql.Identifier(spec.schema, name),
        sql.Literal(spec.serving.fillfactor),
        _names(columns(spec)),
        st.table(spec),
    )


def create_filled(spec: TableSpec, name: str) -> sql.Composed:
    """The bulk build's create-and-fill: one statement, no index yet."""
    assert spec.serving is not None
    return sql.SQL("CREATE TABLE {} WITH (fillfactor = {}) AS SELECT {} FROM {}").format(
        sql.Identifier(spec.schema, name),
        sql.Literal(spec.serving.fillfactor),
        _names(columns(spec)),
        st.table(spec),
    )


def create_index(spec: TableSpec, table: str, index: Index, name: str) -> sql.Composed:
    return sql.SQL("CREATE {}INDEX {} ON {} USING {} ({})").format(
        sql.SQL("UNIQUE " if index.unique else ""),
        sql.Identifier(name),
        sql.Identifier(spec.schema, table),
        sql.SQL(index.method),
        _names(index.columns),
    )


def drop_serving(spec: TableSpec, relkind: str) -> sql.Composed:
    what = "MATERIALIZED VIEW" if relkind == "m" else "TABLE"
    return sql.SQL("DROP {} {}").format(sql.SQL(what), serving(spec))


def rename_table(spec: TableSpec, old: str, new: str) -> sql.Composed:
    return sql.SQL("ALTER TABLE {} RENAME TO {}").format(
        sql.Identifier(spec.schema, old), sql.Identifier(new)
    )


def rename_index(spec: TableSpec, old: str, new: str) -> sql.Composed:
    return sql.SQL("ALTER INDEX {} RENAME TO {}").format(
        sql.Identifier(spec.schema, old), sql.Identifier(new)
    )


def drop_if_exists(spec: TableSpec, name: str) -> sql.Composed:
    return sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(spec.schema, name))


def delete_all(spec: TableSpec) -> sql.Composed:
    return sql.SQL("DELETE FROM {}").format(serving(spec))


def fill_in_place(spec: TableSpec) -> sql.Composed:
    return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        serving(spec), _names(columns(spec)), _names(columns(spec)), st.table(spec)
    )


# -- recording the keys a load changed -------------------------------------------------------


def identity_sequence() -> sql.SQL:
    """The sequence behind a table's identity column (relation name, column)."""
    return sql.SQL("SELECT pg_get_serial_sequence(%s, %s)")


def next_key() -> sql.SQL:
    """A fresh value of the identity sequence: the keys this session inserts next are above."""
    return sql.SQL("SELECT nextval(%s::regclass)")


def record_since(spec: TableSpec) -> sql.Composed:
    """Record the keys this session's inserts just took from the identity sequence: those
    above the value drawn before (`since`) up to the sequence's current value in this session.
    Keys of other sessions in that range are recorded too, which costs nothing but a redundant
    apply of an unchanged row: each session's ids rise, and ranges cached by other sessions
    either end below `since` or fall inside this one."""
    assert spec.surrogate is not None
    sur = sql.Identifier(spec.surrogate)
    return sql.SQL(
        "INSERT INTO {pending} (target_id, key_id) SELECT %(target_id)s, {sur} FROM {table} "
        "WHERE {sur} > %(since)s AND {sur} <= currval(%(sequence)s::regclass) "
        "ON CONFLICT DO NOTHING"
    ).format(pending=PENDING, sur=sur, table=st.table(spec))


def record_updated(staging_name: str) -> sql.Composed:
    """Record the keys of the rows a staged merge updated (the delta's matched rows)."""
    return sql.SQL(
        "INSERT INTO {pending} (target_id, key_id) SELECT %(target_id)s, {tid} FROM {delta} "
        "WHERE {tid} IS NOT NULL ON CONFLICT DO NOTHING"
    ).format(pending=PENDING, tid=st.TID, delta=st.delta(staging_name))


# -- the apply --------------------------------------------------------------------------------

#: The temporary table an apply moves the target's pending keys into (dropped at its commit).
KEYS = sql.Identifier("sluice_serving_keys")


def take_keys() -> sql.Composed:
    """Move the target's pending keys (parameter ``target_id``) into a temporary table, in key
    order; the statement's row count is the number of keys. The keys leave the ledger at the
    apply's commit and stay if it rolls back.

    Key order is the serving table's physical order (it is built from the table, which is
    filled in key order), so the apply's lookups and writes walk both tables from front to
    back: each page is read once and written while it is still in the buffer cache."""
    return sql.SQL(
        "CREATE TEMPORARY TABLE {keys} ON COMMIT DROP AS "
        "WITH k AS (DELETE FROM {pending} WHERE target_id = %(target_id)s RETURNING key_id) "
        "SELECT key_id FROM k ORDER BY key_id"
    ).format(keys=KEYS, pending=PENDING)


def apply(spec: TableSpec) -> sql.Composed:
    """One set-wise ``MERGE`` over the keys taken: the serving rows of those keys whose values
    differ are updated, the rows the copy lacks inserted and (for a table whose loads delete)
    the rows of keys the table no longer has deleted. Its row count is the rows written.

    Each key is looked up once in the table and once in the serving copy, in key order (the
    caller turns hash joins off: a hash join would read the whole serving table to find a tenth
    of it, and write its rows in random order). An updated row is rewritten in place: only
    value columns ever change in a target (keys are never updated), so the indexed columns stay
    put and the update is a HOT one where the page has room (no index is touched). A row whose
    values are already current is left alone."""
    assert spec.surrogate is not None
    cols = tuple(c.name for c in spec.all_columns)
    sur = sql.Identifier(spec.surrogate)
    deleted = sql.SQL("WHEN MATCHED AND b.{present} IS NULL THEN DELETE ").format(
        present=sql.Identifier("sluice_present")
    )
    return sql.SQL(
        "MERGE INTO {serving} s USING (SELECT k.key_id AS sluice_key, b.{sur} AS sluice_present, "
        "{bcols} FROM {keys} k LEFT JOIN {table} b ON b.{sur} = k.key_id) b "
        "ON s.{sur} = b.sluice_key "
        "{deleted}"
        "WHEN MATCHED AND b.sluice_present IS NOT NULL AND ({old}) IS DISTINCT FROM ({new}) "
        "THEN UPDATE SET ({cols}) = ROW({new}) "
        "WHEN NOT MATCHED AND b.sluice_present IS NOT NULL THEN "
        "INSERT ({all}) VALUES (b.sluice_key, {new})"
    ).format(
        serving=serving(spec),
        sur=sur,
        bcols=_names(cols, "b"),
        keys=KEYS,
        table=st.table(spec),
        deleted=deleted if spec.mode == "replace" else sql.SQL(""),
        old=_names(cols, "s"),
        new=_names(cols, "b"),
        cols=_names(cols),
        all=_names(columns(spec)),
    )
