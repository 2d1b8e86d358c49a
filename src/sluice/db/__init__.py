"""The database: connections to the configured PostgreSQL, or to the embedded server.

Only the repository classes (`sluice.ledger.repository`, `sluice.load.repository`) use the
connections this module hands out; nothing above them imports the driver.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sluice.config import Settings
from sluice.db.embedded import EmbeddedServer
from sluice.db.migrate import migrate
from sluice.errors import ConfigError, DatabaseUnavailable

log = logging.getLogger(__name__)

Connection = psycopg.Connection[tuple[Any, ...]]
MIN_SERVER_VERSION = 150000  # NULLS NOT DISTINCT unique constraints


def redact(url: str) -> str:
    """`url` without its password, for messages and logs."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparsable database URL>"
    if "password" in params:
        params["password"] = "***"
    return make_conninfo("", **params)


class Database:
    """Hands out connections to one PostgreSQL database."""

    def __init__(self, url: str, *, embedded: EmbeddedServer | None = None) -> None:
        self.url = url
        self._embedded = embedded

    @classmethod
    def open(cls, settings: Settings, *, upgrade: bool = True) -> Database:
        """Connect to the configured database (starting the embedded server if there is no
        URL), check it is usable and bring the ``sluice`` schema up to date."""
        embedded = None
        url = settings.database_url
        if not url:
            embedded = EmbeddedServer(settings.state_dir)
            url = embedded.start()
        db = cls(url, embedded=embedded)
        try:
            with db.connection(autocommit=True) as conn:
                version = conn.info.server_version
                if version < MIN_SERVER_VERSION:
                    raise ConfigError(
                        f"PostgreSQL {version // 10000} at {db.display_url} is too old; "
                        "sluice needs 15 or later"
                    )
                if upgrade:
                    applied = migrate(conn)
                    for migration in applied:
                        log.info("applied migration %04d_%s", migration.version, migration.name)
        except BaseException:
            db.close()
            raise
        return db

    @property
    def display_url(self) -> str:
        return redact(self.url)

    @property
    def embedded(self) -> bool:
        return self._embedded is not None

    def connect(self, *, autocommit: bool = False) -> Connection:
        """A new connection; the caller closes it."""
        try:
            return psycopg.connect(self.url, autocommit=autocommit, application_name="sluice")
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(
                f"cannot connect to {self.display_url}: {str(exc).strip()}"
            ) from None

    @contextmanager
    def connection(self, *, autocommit: bool = False) -> Iterator[Connection]:
        conn = self.connect(autocommit=autocommit)
        try:
            yield conn
        finally:
            conn.close()

    def read_only_query(self, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a user's query in a read-only transaction; return column names and rows."""
        try:
            with self.connection() as conn, conn.transaction():
                conn.execute("SET TRANSACTION READ ONLY")
                cur = conn.execute(query)  # the user's own read-only query
                columns = [c.name for c in cur.description or ()]
                return columns, cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise ConfigError(f"query failed: {str(exc).strip()}") from None

    def close(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
