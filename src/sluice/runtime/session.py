"""A ledger session: one run of one command, and the connection it holds while it runs.

Every command records itself the same way — an import, a sync, a long-running service, a
Celery worker process — as one row of ``sluice.runs`` with counts that fit its kind of work.
The session's connection is held open for the whole run: claims and heartbeats go through it,
so its backend pid tells whether the run (and every lease it holds) is still alive. A process
that dies leaves a pid that no longer exists, and the next run start marks its run
``abandoned``; its units return to the queue at the next claim.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from types import TracebackType

from sluice.db import Connection, Database
from sluice.errors import SluiceError
from sluice.ledger.queue import WorkQueue
from sluice.ledger.records import RunCounts
from sluice.ledger.repository import Ledger
from sluice.text import redact_secrets

log = logging.getLogger(__name__)


def make_owner() -> str:
    """A worker identity that says where it runs: host, process id and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LedgerSession:
    """A run row and the held ledger connection of one command."""

    def __init__(
        self,
        db: Database,
        command: str,
        *,
        kind: str = "import",
        units: str = "loads",
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.command = command
        self.kind = kind
        self.units = units
        self.owner = owner or make_owner()
        self.counts: Callable[[], RunCounts] = RunCounts
        self._lock = threading.Lock()
        #: Held by every statement on the shared connection (see `Repository`).
        self.guard = threading.RLock()
        self._conn: Connection | None = None
        self.run_id: int | None = None
        #: Why the run must end as failed, set by whoever found out (a lost database).
        self.failure: str | None = None

    def start(self) -> LedgerSession:
        self._conn = self._connect()
        self.run_id = Ledger(self._conn).start_run(
            self.command, self.owner, kind=self.kind, units=self.units
        )
        return self

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("the ledger session is not started")
        return self._conn

    def ledger(self) -> Ledger:
        return Ledger(self.conn, self.guard)

    def queue(self) -> WorkQueue:
        return WorkQueue(self.conn, self.guard)

    def reconnect(self) -> None:
        """Replace a broken connection; the run is this connection's from now on."""
        with self._lock, self.guard:
            old, self._conn = self._conn, self._connect()
        if old is not None:
            try:
                old.close()
            except Exception as exc:  # it is broken; closing it is a courtesy
                log.debug("closing the broken ledger connection: %s", exc)
        if self.run_id is not None:
            self.ledger().adopt_run(self.run_id)
        log.info("reconnected to the ledger")

    def _connect(self) -> Connection:
        conn = self.db.connect(autocommit=True)
        # A session stalled while holding a feed row (a stopped process) must not stop every
        # other worker's claims for good: their waits time out and are retried.
        conn.execute("SET lock_timeout = '30s'")
        return conn

    @property
    def broken(self) -> bool:
        """Whether the connection is lost (the server restarted, the backend was killed)."""
        return self._conn is None or self._conn.closed or self._conn.broken

    def fail(self, reason: str) -> None:
        self.failure = self.failure or reason

    def beat(self) -> None:
        """Write the counts so far (a service's run row shows its progress while it runs)."""
        if self.run_id is not None:
            self.ledger().update_run(self.run_id, self.counts())

    def finish(self, status: str, error: str | None = None) -> None:
        if self.run_id is None or self._conn is None:
            return
        if self.failure is not None:
            status, error = "failed", "; ".join(e for e in (self.failure, error) if e)
        error = None if error is None else redact_secrets(error)
        try:
            self.ledger().finish_run(self.run_id, status=status, counts=self.counts(), error=error)
        except SluiceError:
            self.reconnect()  # one more try, on a new connection
            self.ledger().finish_run(self.run_id, status=status, counts=self.counts(), error=error)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> LedgerSession:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
