"""A scratch database for one benchmark run, on the server named by SLUICE_DATABASE_URL.

The harness creates it, marks it with a comment, and drops it at the end. It only ever drops a
database that carries its mark, so a name typed by mistake cannot destroy someone's data.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sluice.db import redact

Connection = psycopg.Connection[tuple[Any, ...]]
MARK = "sluice bench scratch database (dropped and recreated by python -m bench)"


class BenchError(Exception):
    """A condition that stops the benchmark with a one-line message."""


def server_url(example: str) -> str | None:
    """The server of SLUICE_DATABASE_URL, or None after saying how to set it (`example`: the
    benchmark's command)."""
    url = os.environ.get("SLUICE_DATABASE_URL", "").strip()
    if not url:
        print(
            "bench: SLUICE_DATABASE_URL is not set. Point it at a PostgreSQL (15 or later) "
            "server on which the role may create databases, e.g.\n"
            "  SLUICE_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres "
            f"python3 tasks.py bench {example}",
            file=sys.stderr,
        )
    return url or None


def with_dbname(url: str, dbname: str) -> str:
    """`url` (a URL or a conninfo string) pointing at database `dbname`."""
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


@dataclass
class ScratchDatabase:
    """Create (or recreate) database `name` next to the one `server_url` names."""

    server_url: str
    name: str
    conn: Connection | None = field(default=None, init=False)
    server_version: str = field(default="", init=False)
    _checkpoint_ok: bool = field(default=True, init=False)

    @property
    def url(self) -> str:
        return with_dbname(self.server_url, self.name)

    @property
    def display(self) -> str:
        params = conninfo_to_dict(self.url)
        where = " ".join(f"{k}={params[k]}" for k in ("host", "port", "user") if k in params)
        return f"{self.name} ({where})" if where else self.name

    @property
    def checkpoints(self) -> bool:
        """Whether CHECKPOINT is allowed (superuser or pg_checkpoint)."""
        return self._checkpoint_ok

    def create(self) -> None:
        try:
            admin = psycopg.connect(self.server_url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise BenchError(
                f"cannot connect to {redact(self.server_url)}: {str(exc).strip()}"
            ) from None
        with admin:
            if admin.info.dbname == self.name:
                raise BenchError(
                    f"the scratch database must not be the one SLUICE_DATABASE_URL names "
                    f"({self.name}); choose another with --database"
                )
            self._drop(admin)
            try:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
            except psycopg.errors.InsufficientPrivilege:
                raise BenchError(
                    f"the role of SLUICE_DATABASE_URL may not create databases; the benchmark "
                    f"needs its own scratch database ({self.name}): grant CREATEDB or use "
                    "another role"
                ) from None
            admin.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(self.name), sql.Literal(MARK)
                )
            )
        self.conn = psycopg.connect(self.url, autocommit=True)
        version = self.conn.execute("SHOW server_version").fetchone()
        self.server_version = str(version[0]) if version else "?"

    def drop(self) -> None:
        self.close()
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            self._drop(admin)

    def finish(self, keep: bool) -> None:
        """The end of a run: the database dropped, or with `keep` (a bench's ``--keep``) only
        closed, to be looked at."""
        if keep:
            self.close()
        else:
            self.drop()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _drop(self, admin: Connection) -> None:
        row = admin.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [self.name],
        ).fetchone()
        if row is None:
            return
        if row[0] != MARK:
            raise BenchError(
                f"database {self.name} exists and was not created by the benchmark; "
                "choose another name with --database"
            )
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
        )

    @property
    def connection(self) -> Connection:
        if self.conn is None:
            raise RuntimeError("the scratch database is not open")
        return self.conn

    def checkpoint(self) -> None:
        """Flush dirty buffers so the next measured step starts from the same state."""
        if not self._checkpoint_ok:
            return
        try:
            self.connection.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            self._checkpoint_ok = False
            print(
                "bench: CHECKPOINT is not allowed for this role (needs superuser or "
                "pg_checkpoint); steps will not start from a flushed state",
                file=sys.stderr,
            )

    def __enter__(self) -> ScratchDatabase:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
