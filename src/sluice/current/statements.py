"""The statements of an apply, composed with `psycopg.sql` from the named templates of
``queries.sql``: names of tables and columns as identifiers (they come from a ``.dfm``), types
as the fixed keywords of `postgres_type`, values as parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import LiteralString

from psycopg import sql

from sluice.current.model import ViewTarget
from sluice.db.queries import load as load_queries
from sluice.formats.dfm import Column, postgres_type

Q = load_queries("sluice.current", "queries.sql")

#: The change columns every view carries, after the `.dfm` columns, as Qlik declares them.
HEADER = (
    Column("header__change_seq", "STRING", 35),
    Column("header__change_oper", "STRING", 1),
    Column("header__timestamp", "DATETIME"),
)
HEADER_NAMES = tuple(c.name for c in HEADER)
STAGE = "sluice_current_stage"
FINAL = "sluice_current_final"


def template(name: str, **parts: sql.Composable) -> sql.Composed:
    """The named template `name` with its placeholders filled."""
    query: LiteralString = Q[name]
    return sql.SQL(query).format(**parts)


def ids(names: Sequence[str], prefix: str | None = None) -> sql.Composed:
    if prefix is None:
        return sql.SQL(", ").join(sql.Identifier(n) for n in names)
    return sql.SQL(", ").join(sql.Identifier(prefix, n) for n in names)


def column_type(column: Column) -> sql.SQL:
    """The column's PostgreSQL type: one of `postgres_type`'s fixed keywords."""
    return sql.SQL(postgres_type(column))


def definitions(columns: Sequence[Column]) -> sql.Composed:
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.lower), column_type(c)) for c in columns
    )


def _all(parts: Sequence[sql.Composable], joiner: str) -> sql.Composed:
    return sql.SQL(joiner).join(parts)


@dataclass(frozen=True)
class Shape:
    """What one apply works on: the view, the file's columns (typed as the view's) and the key."""

    target: ViewTarget
    #: The staging table's columns: the file's, in its order, lower-case, typed as the view's.
    file_columns: tuple[Column, ...]
    #: The columns the file sets in the view, header columns last.
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    #: Every column of the view, in its order (the header columns last).
    view_columns: tuple[Column, ...] = ()

    @property
    def view(self) -> sql.Identifier:
        return sql.Identifier(self.target.schema, self.target.table)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.lower for c in self.columns)

    def _base(self) -> dict[str, sql.Composable]:
        return {
            "view": self.view,
            "stage": sql.Identifier(STAGE),
            "final": sql.Identifier(FINAL),
            "names": ids(self.names),
            "keys": ids(self.key),
        }

    def named(self, name: str) -> sql.Composed:
        return template(name, **self._base())

    def create_stage(self) -> sql.Composed:
        return template(
            "create_stage", stage=sql.Identifier(STAGE), columns=definitions(self.file_columns)
        )

    def copy_stage(self, delimiter: str, null: str) -> sql.Composed:
        typed = [c.lower for c in self.file_columns if postgres_type(c) != "text"]
        force = sql.SQL(", FORCE_NULL ({})").format(ids(typed)) if typed else sql.SQL("")
        return template(
            "copy_stage",
            stage=sql.Identifier(STAGE),
            columns=ids([c.lower for c in self.file_columns]),
            delimiter=sql.Literal(delimiter),
            null=sql.Literal(null),
            force_null=force,
        )

    def create_final(self) -> sql.Composed:
        return template(
            "create_final", final=sql.Identifier(FINAL), columns=definitions(self.columns)
        )

    def fill_final(self, *, change: bool) -> sql.Composed:
        if change:
            return self.named("fill_final_changes")
        values = ids([n for n in self.names if n not in HEADER_NAMES])
        name = "fill_final_load" if self.key else "fill_final_load_keyless"
        return template(name, **self._base(), values=values)

    def fill_view(self) -> sql.Composed:
        """A LOAD file's rows straight into the view it empties for a new snapshot."""
        values = ids([n for n in self.names if n not in HEADER_NAMES])
        name = "fill_view_load" if self.key else "fill_view_load_keyless"
        return template(name, **self._base(), values=values)

    def _null_key(self, prefix: str | None) -> sql.Composed:
        parts = [
            sql.SQL("{} IS NULL").format(sql.Identifier(prefix, k) if prefix else sql.Identifier(k))
            for k in self.key
        ]
        return _all(parts, " OR ")

    def _matching(self) -> dict[str, sql.Composable]:
        equal = _all(
            [
                sql.SQL("{} = {}").format(sql.Identifier("v", k), sql.Identifier("f", k))
                for k in self.key
            ],
            " AND ",
        )
        same = sql.SQL("ROW({})::record = ROW({})::record").format(
            ids(self.key, "v"), ids(self.key, "f")
        )
        values = [n for n in self.names if n not in self.key]
        return {
            **self._base(),
            "equal": equal,
            "same": same,
            "null_key_f": self._null_key("f"),
            "assign": ids(values),
            "assigned": ids(values, "f"),
        }

    def summary(self) -> sql.Composed:
        return template("final_summary", final=sql.Identifier(FINAL), null_key=self._null_key(None))

    @property
    def rewrite_name(self) -> str:
        return f"{self.target.table[:50]}__rewrite"

    def rewrite(self) -> list[sql.Composed]:
        """Build the view's new rows in a new table, then put it in the view's place."""
        parts = self._matching()
        new = sql.Identifier(self.target.schema, self.rewrite_name)
        everything = [c.lower for c in self.view_columns]
        carried = set(self.names)
        merged = [sql.Identifier("f" if n in carried else "v", n) for n in everything]
        join = (
            sql.SQL("LEFT JOIN {} v ON {}").format(self.view, parts["equal"])
            if any(n not in carried for n in everything)
            else sql.SQL("")
        )
        return [
            template("create_rewrite", new=new, view=self.view),
            template(
                "fill_rewrite",
                **parts,
                new=new,
                all=ids(everything),
                all_v=ids(everything, "v"),
                merged=sql.SQL(", ").join(merged),
                join=join,
            ),
            template("drop_table", view=self.view),
            template("rename_table", new=new, table=sql.Identifier(self.target.table)),
        ]

    def rewrite_deleted(self) -> sql.Composed:
        return template("rewrite_deleted", **self._matching())

    def delete_keys(self, *, nulls: bool) -> sql.Composed:
        return template("delete_null_keys" if nulls else "delete_keys", **self._matching())

    def upsert(self, *, nulls: bool) -> sql.Composed:
        return template("upsert_null_keys" if nulls else "upsert", **self._matching())


def view_ddl(target: ViewTarget, columns: Sequence[Column]) -> list[sql.Composed]:
    """Create the view's schema and table (dropping the table of an older snapshot)."""
    view = sql.Identifier(target.schema, target.table)
    return [
        template("create_schema", schema=sql.Identifier(target.schema)),
        template("drop_view", view=view),
        template("create_view", view=view, columns=definitions(columns)),
    ]


def key_index(target: ViewTarget, key: Sequence[str]) -> sql.Composed:
    """The view's unique key index, NULL key parts equal."""
    name = f"{target.table}_key" if len(target.table) <= 59 else f"{target.table[:55]}_key"
    view = sql.Identifier(target.schema, target.table)
    return template("create_key_index", index=sql.Identifier(name), view=view, keys=ids(key))
