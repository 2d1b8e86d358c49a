"""SQL of incremental serving copies, composed with `psycopg.sql` from a table's declaration.

The serving copy is a view with the target's surrogate key and declared columns, in that
order, over two tables: the target itself, and the copy's *held* table (``<view>_held``). A
load that changes a row of the target first holds the row as it was (its pre-image, or a mark
that the key was absent), in the same transaction; the view shows the target's rows less the
held keys, plus the held pre-images. So readers see the state of the last apply whatever the
loads have committed since, and the apply is the deletion of the held rows.

The held table has a column ``sluice_present`` first, then the serving columns with the
target's types and collations (it is created from the target); every statement names them.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from psycopg import sql

from sluice.load import statements as st
from sluice.load.spec import Index, TableSpec

#: The held table's first column: false for a key the target did not have at the last apply.
PRESENT = sql.Identifier("sluice_present")


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


def held_name(view: str) -> str:
    """The held table of the serving view named `view` (in the view's schema)."""
    return _short(view, "held")


def held_relation(schema: str, view: str) -> str:
    """The held table's name as ``to_regclass`` reads it (``schema.name``)."""
    return f"{schema}.{held_name(view)}"


def held(spec: TableSpec) -> sql.Identifier:
    assert spec.serving is not None
    return sql.Identifier(spec.schema, held_name(spec.serving.name))


def columns(spec: TableSpec) -> tuple[str, ...]:
    """The serving copy's columns: the surrogate key, then the declared columns."""
    return st.row_columns(spec)


def hold(spec: TableSpec, alias: str) -> sql.Composed:
    """The start of a statement that holds the rows `alias` names as they are: ``INSERT INTO
    held (sluice_present, columns) SELECT true, alias.columns``."""
    cols = columns(spec)
    return sql.SQL("INSERT INTO {held} ({present}, {cols}) SELECT true, {image}").format(
        held=held(spec), present=PRESENT, cols=_names(cols), image=_names(cols, alias)
    )


def hold_absent(spec: TableSpec, key: sql.Composable) -> sql.Composed:
    """The start of a statement that holds as absent the keys `key` gives: ``INSERT INTO held
    (sluice_present, id) SELECT false, key``."""
    assert spec.surrogate is not None
    return sql.SQL("INSERT INTO {held} ({present}, {sur}) SELECT false, {key}").format(
        held=held(spec), present=PRESENT, sur=sql.Identifier(spec.surrogate), key=key
    )


def indexes(spec: TableSpec) -> tuple[Index, ...]:
    """The declared indexes the target carries for the view's readers: all but a unique one on
    the surrogate key alone, which the target's primary key already is."""
    assert spec.serving is not None and spec.surrogate is not None
    return tuple(
        ix
        for ix in spec.serving.indexes
        if not (ix.unique and ix.method == "btree" and ix.columns == (spec.surrogate,))
    )


def index_name(spec: TableSpec, index: Index) -> str:
    """A reader index's name on the target (named after the target, not the view)."""
    return st.index_name(spec.name, index)


def _names(cols: tuple[str, ...], prefix: str | None = None) -> sql.Composed:
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    return sql.SQL(", ").join(sql.Identifier(prefix, c) for c in cols)


def relkind() -> sql.SQL:
    """What a name is now: ``v`` a view, ``m`` a materialized view, ``r`` a table (a serving
    table of an earlier version), NULL nothing."""
    return sql.SQL("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(%s)")


# -- schema ------------------------------------------------------------------------------------


def create_held(spec: TableSpec) -> sql.Composed:
    """The empty held table: ``sluice_present``, then the target's columns, types and
    collations (no constraints: an absent key's row holds only its key)."""
    return sql.SQL(
        "CREATE TABLE {held} AS SELECT true AS {present}, {cols} FROM {table} WITH NO DATA"
    ).format(held=held(spec), present=PRESENT, cols=_names(columns(spec)), table=st.table(spec))


def held_key(spec: TableSpec) -> sql.Composed:
    assert spec.surrogate is not None
    return sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
        held(spec), sql.Identifier(spec.surrogate)
    )


def drop_held(spec: TableSpec) -> sql.Composed:
    return sql.SQL("DROP TABLE IF EXISTS {}").format(held(spec))


def placeholder(spec: TableSpec) -> sql.Composed:
    """The view before its first build: the serving columns and no rows. Loads hold nothing
    until the build, so the view must not show the target yet."""
    return sql.SQL("CREATE VIEW {} AS SELECT {} FROM {} WHERE false").format(
        serving(spec), _names(columns(spec)), st.table(spec)
    )


def view(spec: TableSpec, *, replace: bool) -> sql.Composed:
    """The serving view: the target's rows whose keys are not held, and the held pre-images.
    A reader's condition on an indexed column reaches the target's index through the first
    branch; the held table is small (the keys changed since the last apply)."""
    assert spec.surrogate is not None
    cols = columns(spec)
    return sql.SQL(
        "CREATE {replace}VIEW {view} AS "
        "SELECT {tcols} FROM {table} t "
        "WHERE NOT EXISTS (SELECT FROM {held} h WHERE h.{sur} = t.{sur}) "
        "UNION ALL SELECT {hcols} FROM {held} h WHERE h.{present}"
    ).format(
        replace=sql.SQL("OR REPLACE " if replace else ""),
        view=serving(spec),
        tcols=_names(cols, "t"),
        table=st.table(spec),
        held=held(spec),
        sur=sql.Identifier(spec.surrogate),
        hcols=_names(cols, "h"),
        present=PRESENT,
    )


def drop_relation(spec: TableSpec, relkind: str) -> sql.Composed:
    what = {"m": "MATERIALIZED VIEW", "v": "VIEW"}.get(relkind, "TABLE")
    return sql.SQL("DROP {} {}").format(sql.SQL(what), serving(spec))


def create_index(spec: TableSpec, index: Index) -> sql.Composed:
    return sql.SQL("CREATE {}INDEX IF NOT EXISTS {} ON {} USING {} ({})").format(
        sql.SQL("UNIQUE " if index.unique else ""),
        sql.Identifier(index_name(spec, index)),
        st.table(spec),
        sql.SQL(index.method),
        _names(index.columns),
    )


def drop_index(spec: TableSpec, index: Index) -> sql.Composed:
    return sql.SQL("DROP INDEX IF EXISTS {}").format(
        sql.Identifier(spec.schema, index_name(spec, index))
    )


def analyze(spec: TableSpec) -> sql.Composed:
    return sql.SQL("ANALYZE {}").format(st.table(spec))


# -- holding what a load changes -----------------------------------------------------------


def identity_sequence() -> sql.SQL:
    """The sequence behind a table's identity column (relation name, column)."""
    return sql.SQL("SELECT pg_get_serial_sequence(%s, %s)")


def next_key() -> sql.SQL:
    """A fresh value of the identity sequence: the keys this session inserts next are above."""
    return sql.SQL("SELECT nextval(%s::regclass)")


def hold_inserted_since(spec: TableSpec) -> sql.Composed:
    """Hold as absent the keys this session's inserts just took from the identity sequence:
    those above the value drawn before (`since`) up to the sequence's current value in this
    session, written by the same (sub)transaction as the row of that last value. Each
    session's ids rise, but blocks cached by other sessions may fall inside the range: their
    rows, committed and perhaps applied already, are not this load's to hold."""
    assert spec.surrogate is not None
    sur = sql.Identifier(spec.surrogate)
    return sql.SQL(
        "{hold} FROM {table} "
        "WHERE {sur} > %(since)s AND {sur} <= currval(%(sequence)s::regclass) "
        "AND xmin = (SELECT xmin FROM {table} WHERE {sur} = currval(%(sequence)s::regclass)) "
        "ON CONFLICT DO NOTHING"
    ).format(hold=hold_absent(spec, sur), sur=sur, table=st.table(spec))


def hold_matched(spec: TableSpec, staging_name: str) -> sql.Composed:
    """Before a staged merge updates the rows its delta matched: hold them as they are. A key
    held already (changed by an earlier load since the last apply) keeps its older image.
    Walks the delta in key order (the caller turns hash joins off), as the update does."""
    assert spec.surrogate is not None
    return sql.SQL(
        "{hold} FROM (SELECT {tid} FROM {delta} WHERE {tid} IS NOT NULL ORDER BY {tid}) d "
        "JOIN {table} t ON t.{sur} = d.{tid} ON CONFLICT DO NOTHING"
    ).format(
        hold=hold(spec, "t"),
        tid=st.TID,
        delta=st.delta(staging_name),
        table=st.table(spec),
        sur=sql.Identifier(spec.surrogate),
    )


def _hold_unmatched(
    spec: TableSpec,
    staging_name: str,
    same: Literal["=", "IS NOT DISTINCT FROM"],
    among: sql.Composable,
) -> sql.Composed:
    """Hold the target rows that have the key of a delta row that matched nothing (of those
    `among` selects), key parts compared with `same`."""
    compared = [
        sql.SQL("t.{c} {same} d.{c}").format(c=sql.Identifier(k), same=sql.SQL(same))
        for k in st.file_keys(spec)
    ] + st.constants_match(spec, "t")
    return sql.SQL(
        "{hold} FROM {table} t WHERE EXISTS ("
        "SELECT FROM {delta} d WHERE d.{tid} IS NULL{among} AND {compared}) "
        "ON CONFLICT DO NOTHING"
    ).format(
        hold=hold(spec, "t"),
        table=st.table(spec),
        delta=st.delta(staging_name),
        tid=st.TID,
        among=among,
        compared=sql.SQL(" AND ").join(compared),
    )


def hold_new_keys(spec: TableSpec, staging_name: str) -> sql.Composed:
    """Before a staged merge inserts the delta's rows that matched nothing: hold the target
    rows that have their keys after all, which a load that committed since this one's match
    inserted. The insert's conflict will update them; a held row of theirs (the key absent)
    keeps its place, and one an apply released meanwhile is held again here as it is now.
    NULL key parts never meet ``=``: `hold_null_keys` holds those rows."""
    return _hold_unmatched(spec, staging_name, "=", sql.SQL(""))


def _key_part_null(spec: TableSpec, alias: str) -> sql.Composed:
    nullable = [c.name for c in spec.all_columns if c.name in spec.key and c.nullable]
    return sql.SQL(" OR ").join(
        sql.SQL("{} IS NULL").format(sql.Identifier(alias, c)) for c in nullable
    )


def has_nullable_key(spec: TableSpec) -> bool:
    return any(c.name in spec.key and c.nullable for c in spec.all_columns)


def hold_null_keys(spec: TableSpec, staging_name: str) -> sql.Composed:
    """Before a staged merge inserts its new rows: hold the target rows that new rows with a
    NULL in their key will update (the delta's match uses ``=``, which a NULL never meets; the
    insert's conflict on the NULLS NOT DISTINCT key finds them). Only for keys with a nullable
    column, and the caller runs it only when the delta has such a row."""
    among = sql.SQL(" AND ({})").format(_key_part_null(spec, "d"))
    return _hold_unmatched(spec, staging_name, "IS NOT DISTINCT FROM", among)


def delta_has_null_key(spec: TableSpec, staging_name: str) -> sql.Composed:
    return sql.SQL(
        "SELECT EXISTS (SELECT FROM {delta} d WHERE d.{tid} IS NULL AND ({null}))"
    ).format(delta=st.delta(staging_name), tid=st.TID, null=_key_part_null(spec, "d"))


# -- the apply --------------------------------------------------------------------------------


def release(spec: TableSpec) -> sql.Composed:
    """The apply: every held row its snapshot sees leaves the held table, and the view shows
    the target's rows of those keys. Rows held by loads that commit later stay held."""
    return sql.SQL("DELETE FROM {}").format(held(spec))


def held_count(schema: str, view: str) -> sql.Composed:
    return sql.SQL("SELECT count(*)::bigint FROM {}").format(
        sql.Identifier(schema, held_name(view))
    )
