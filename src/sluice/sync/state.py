"""What a sync read, per scope, on the ledger (``sluice.sync_scopes``, ``sync_partitions``,
``sync_documents``): the digest of the scope, the digest and row of each partition, the version
of each document. The next sync of the scope compares them with the listing and reads only what
changed. Every write happens on the scope's own connection, inside its transaction, so the
recorded state is never ahead of (or behind) the rows.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from sluice.db import Connection
from sluice.db.errors import classify
from sluice.db.queries import load as load_queries

Q = load_queries("sluice.sync", "queries.sql")


@dataclass(frozen=True)
class Partition:
    """A partition as the last sync left it: the digest of what was below it, and its row."""

    digest: str
    row_id: int


class SyncState:
    """The recorded state of one scope of one tree read from one store."""

    def __init__(self, conn: Connection, store: str, tree: str, scope: str) -> None:
        self.conn = conn
        self.key = {"store": store, "tree": tree, "scope": scope}
        self.statements = 0

    def _run(self, name: str, **params: Any) -> Any:
        self.statements += 1
        try:
            return self.conn.execute(Q[name], {**self.key, **params})
        except psycopg.Error as exc:
            raise classify(exc, "recording what a sync read") from exc

    def digest(self) -> str | None:
        row = self._run("scope_digest").fetchone()
        return None if row is None else str(row[0])

    def partitions(self) -> dict[str, Partition]:
        rows = self._run("partitions").fetchall()
        return {str(path): Partition(str(digest), int(row_id)) for path, digest, row_id in rows}

    def documents(self) -> dict[str, str]:
        return {str(key): str(version) for key, version in self._run("documents").fetchall()}

    def save(
        self,
        digest: str | None,
        partitions: Mapping[str, Partition],
        documents: Mapping[str, str],
        gone: Collection[str],
    ) -> None:
        """Record the scope as synced now: its digest, its partitions (any other is dropped),
        the documents read (with their versions) and forget the documents in `gone`. Without
        a digest, the scope's is forgotten: the next sync cannot skip it."""
        if digest is None:
            self._run("forget_scope")
        else:
            self._run("save_scope", digest=digest)
        paths = sorted(partitions)
        if paths:
            self._run(
                "save_partitions",
                paths=paths,
                digests=[partitions[p].digest for p in paths],
                row_ids=[partitions[p].row_id for p in paths],
            )
        self._run("drop_partitions", paths=paths)
        if documents:
            keys = sorted(documents)
            self._run("save_documents", keys=keys, versions=[documents[k] for k in keys])
        if gone:
            self._run("drop_documents", keys=sorted(gone))
