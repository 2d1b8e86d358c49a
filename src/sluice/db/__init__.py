"""The database: pooled connections to the configured PostgreSQL, or to the embedded server.

Only the repository classes (`sluice.ledger`, `sluice.load.repository`, `sluice.sync`) use the
connections this module hands out; nothing above them imports the driver.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from sluice.db.embedded import EmbeddedServer
from sluice.db.migrate import migrate
from sluice.errors import ConfigError, DatabaseUnavailable
from sluice.text import redact_secrets

log = logging.getLogger(__name__)

Connection = psycopg.Connection[tuple[Any, ...]]
MIN_SERVER_VERSION = 150000  # NULLS NOT DISTINCT unique constraints


@dataclass(frozen=True)
class DatabaseOptions:
    """Which database, and how many connections to keep."""

    #: PostgreSQL URL; empty means "start the embedded server in `state_dir`".
    url: str = ""
    state_dir: Path = field(default_factory=lambda: Path(".sluice").resolve())
    #: Connections the pool may open at once (workers, staging connections, the ledger).
    pool_size: int = 12
    #: Seconds to wait for a free pooled connection before failing as transient.
    pool_timeout: float = 60.0


def redact(url: str) -> str:
    """`url` without its password, for messages and logs."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return redact_secrets(url)
    if "password" in params:
        params["password"] = "***"
    return make_conninfo("", **params)


_SCHEMES = ("postgresql://", "postgres://")


def check_url(url: str) -> None:
    """Refuse a database URL that cannot be used, with one line that never shows its
    password: another scheme than PostgreSQL's, a syntax error, an unknown parameter."""
    shown = redact_secrets(url)
    scheme = url.split("://", 1)[0] + "://" if "://" in url else ""
    if scheme and scheme.lower() not in _SCHEMES:
        raise ConfigError(
            f"the database URL {shown} is not a PostgreSQL URL (it starts with {scheme}; "
            "use postgresql://user@host:port/database)"
        )
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        # libpq quotes the faulty part, which may be the password itself: never repeat it.
        reason = re.sub(r'"[^"]*"', '"…"', str(exc).strip())
        raise ConfigError(f"the database URL {shown} is not valid: {reason}") from exc


class Database:
    """Hands out pooled connections to one PostgreSQL database."""

    def __init__(
        self,
        url: str,
        *,
        embedded: EmbeddedServer | None = None,
        options: DatabaseOptions | None = None,
    ) -> None:
        self.url = url
        self.options = options or DatabaseOptions(url=url)
        self._embedded = embedded
        self._pool: ConnectionPool[Connection] | None = None
        self._pool_pid = 0
        self._lock = threading.Lock()

    @classmethod
    def open(cls, options: DatabaseOptions, *, upgrade: bool = True) -> Database:
        """Connect to the configured database (starting the embedded server if there is no
        URL), check it is usable and bring the ``sluice`` schema up to date."""
        embedded = None
        url = options.url
        if not url:
            embedded = EmbeddedServer(options.state_dir)
            url = embedded.start()
        db = cls(url, embedded=embedded, options=options)
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

    def client_connection(self) -> tuple[str, dict[str, str]]:
        """How a client program (psql) connects: a connection string without the password,
        for its command line (which anyone may read with ``ps``), and the environment that
        carries the password (``PGPASSWORD``), if there is one."""
        params = conninfo_to_dict(self.url)
        password = params.pop("password", None)
        env = {"PGPASSWORD": str(password)} if password else {}
        return make_conninfo("", **params), env

    @property
    def embedded(self) -> bool:
        return self._embedded is not None

    def connect(self, *, autocommit: bool = False) -> Connection:
        """A new connection outside the pool; the caller closes it."""
        try:
            return psycopg.connect(self.url, autocommit=autocommit, application_name="sluice")
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(
                f"cannot connect to {self.display_url}: {redact_secrets(str(exc).strip())}"
            ) from exc

    @contextmanager
    def connection(self, *, autocommit: bool = False) -> Iterator[Connection]:
        """A pooled connection for the block; on leaving it, an open transaction is committed
        (rolled back on an exception) and the connection goes back to the pool."""
        pool = self._current_pool()
        try:
            ctx = pool.connection(timeout=self.options.pool_timeout)
            conn = ctx.__enter__()
        except PoolTimeout as exc:
            self._renew_if_dead(pool)
            raise DatabaseUnavailable(
                f"no free connection to {self.display_url} within "
                f"{self.options.pool_timeout:.0f} s ({self.options.pool_size} in use)"
            ) from exc
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(
                f"cannot connect to {self.display_url}: {redact_secrets(str(exc).strip())}"
            ) from exc
        try:
            conn.autocommit = autocommit
            yield conn
        except BaseException as exc:
            ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            ctx.__exit__(None, None, None)

    def _renew_if_dead(self, pool: ConnectionPool[Connection]) -> None:
        """Replace a pool that timed out without being busy: it is waiting out its
        reconnection backoff, which psycopg_pool lets grow without bound (1, 2, 4, … s), so
        after an outage of a minute it would wait as long again once the server is back. A new
        pool tries at once."""
        stats = pool.get_stats()
        if stats.get("pool_size", 0) - stats.get("pool_available", 0) >= stats.get("pool_max", 1):
            return  # every connection is in use: busy, not broken
        with self._lock:
            if self._pool is not pool:
                return  # another thread replaced it already
            self._pool = None
        # Closing waits for the pool's threads: not on the caller's time.
        threading.Thread(target=pool.close, kwargs={"timeout": 5.0}, daemon=True).start()

    def _current_pool(self) -> ConnectionPool[Connection]:
        """This process's pool: a forked child (a worker process) opens its own."""
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=max(self.options.pool_size, 2),
                    kwargs={"application_name": "sluice"},
                    reset=_reset,
                    check=ConnectionPool.check_connection,
                    name="sluice",
                    open=False,
                )
                self._pool.open(wait=False)
                self._pool_pid = os.getpid()
            return self._pool

    def read_only_query(self, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a user's query read-only (see `stream_query`); return column names and rows."""
        with self.stream_query(query) as (columns, batches):
            return columns, [row for batch in batches for row in batch]

    def write_query(self, query: str) -> list[str]:
        """Run a user's statements with the right to write (``sluice sql --write``): one
        transaction, committed if every statement succeeds; return each statement's status."""
        try:
            with self.connection() as conn, conn.transaction(), conn.cursor() as cur:
                cur.execute(query)  # the user's own statements, on purpose
                statuses = []
                while True:
                    statuses.append(cur.statusmessage or "")
                    if not cur.nextset():
                        return statuses
        except psycopg.Error as exc:
            raise ConfigError(f"query failed: {str(exc).strip()}") from exc

    @contextmanager
    def stream_query(
        self, query: str, *, batch: int = 2000
    ) -> Iterator[tuple[list[str], Iterator[list[tuple[Any, ...]]]]]:
        """Run a user's query in a read-only transaction and stream its rows in batches
        (a server-side cursor: memory stays bounded whatever the result's size); yields the
        column names and an iterator of row batches.

        Writing is impossible this way, whatever the text: the query becomes the body of one
        ``DECLARE ... CURSOR FOR``, which takes a single SELECT (or VALUES) — no second
        statement, no COMMIT, no SET TRANSACTION — inside a transaction that is read-only
        from its start, so that even a function that writes is refused."""
        try:
            with self.connection() as conn, conn.transaction():
                conn.execute("SET TRANSACTION READ ONLY")
                with conn.cursor(name="sluice_sql") as cur:
                    cur.itersize = batch
                    cur.execute(query)  # the user's own read-only query
                    columns = [c.name for c in cur.description or ()]
                    yield columns, _batches(cur, batch)
        except psycopg.Error as exc:
            raise _read_only_refusal(query, exc) from exc

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            pool.close()
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_READING = ("select", "values", "with", "table", "(")


def _read_only_refusal(query: str, exc: psycopg.Error) -> ConfigError:
    """What to tell the user of a query `stream_query` could not run, in their terms."""
    words = query.strip().split(None, 1)
    first = words[0].lower() if words else ""
    hint = "use --write to run statements that change data"
    if isinstance(exc, psycopg.errors.SyntaxError) and not first.startswith(_READING):
        return ConfigError(
            f"sluice sql runs one read-only query (SELECT, VALUES, WITH ... SELECT, TABLE); "
            f"{words[0] if words else 'an empty query'!r} is not one: {hint}"
        )
    text = (exc.diag.message_primary or str(exc)).strip()
    if "multiple commands" in text:
        return ConfigError(f"sluice sql runs one query at a time (found several); {hint}")
    if exc.sqlstate in {"25006", "0A000"}:  # read-only transaction, data-modifying WITH
        return ConfigError(f"query refused: {text}; {hint}")
    return ConfigError(f"query failed: {text}")


def _batches(
    cur: psycopg.ServerCursor[tuple[Any, ...]], size: int
) -> Iterator[list[tuple[Any, ...]]]:
    try:
        while rows := cur.fetchmany(size):
            yield rows
    except psycopg.Error as exc:
        raise ConfigError(f"query failed: {str(exc).strip()}") from exc


def _reset(conn: Connection) -> None:
    """A connection back in the pool forgets what its last user set for the session."""
    conn.autocommit = True
    conn.execute("RESET ALL")
    conn.autocommit = False
