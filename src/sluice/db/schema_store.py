"""Named queries over the tables of one schema that the user names (``[ichnaea] schema``),
each run on a connection of the pool: the base of the small stores of a recipe's tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from sluice.db import Database
from sluice.db.errors import classify


class SchemaStore:
    """A store whose queries name their schema as ``{schema}`` (an identifier, composed)."""

    #: The store's named queries (`sluice.db.queries.load`).
    queries: ClassVar[Mapping[str, LiteralString]]
    #: What its queries are about, for error messages ("api key", "export config").
    what: ClassVar[str]

    def __init__(self, db: Database, schema: str) -> None:
        self.db = db
        self.schema = schema

    def _run(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        query = sql.SQL(self.queries[name]).format(schema=sql.Identifier(self.schema))
        try:
            with self.db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise classify(exc, f"{self.what} query {name}") from exc
