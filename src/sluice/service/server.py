"""Serving the application with uvicorn (``sluice serve``).

Stopping: the first SIGTERM or SIGINT lets uvicorn finish the requests in hand, then the engine
is closed (an embedded server is released) and the command exits 0; a second signal exits at
once with code 130, as ``sluice run`` does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from types import FrameType

import uvicorn

from sluice.api import Engine
from sluice.config import Settings
from sluice.db import Database
from sluice.service.app import Extension, ServiceSettings, create_app
from sluice.service.auth import check_binding

log = logging.getLogger(__name__)

#: A page waits at most this long for a database connection, then says the database is away.
POOL_TIMEOUT = 3.0
#: Exit code of a service stopped at once by a second signal.
STOPPED_AT_ONCE = 130
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


#: What a flow mounts on the service, made from the service's database.
Extend = Callable[[Database], Extension]


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    token: str | None,
    extensions: Sequence[Extend] = (),
    what: str = "the ledger",
) -> None:
    """Serve until stopped (SIGTERM or SIGINT: uvicorn finishes the requests in hand)."""
    check_binding(host, token)
    db = Database.open(replace(settings.database, pool_timeout=POOL_TIMEOUT))
    engine = Engine(settings, db)
    try:
        added = [extend(db) for extend in extensions]
        app = create_app(engine, ServiceSettings(token=token), extensions=added)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        log.info("serving %s on http://%s:%d", what, host, port)
        _Server(config).run()
    finally:
        engine.close()


class _Server(uvicorn.Server):
    """uvicorn's server with sluice's stop signals. (uvicorn itself raises the signal again
    once it has shut down, which would end the process before the engine is closed.)"""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only (a service run by a test, say)
            return
        previous = {signum: signal.signal(signum, self._stop) for signum in _SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if self.should_exit:
            os.write(2, b"sluice: stopped at once\n")
            os._exit(STOPPED_AT_ONCE)
        self.should_exit = True
