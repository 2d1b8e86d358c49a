"""Serving the application with uvicorn (``sluice serve``)."""

from __future__ import annotations

import logging
from dataclasses import replace

import uvicorn

from sluice.api import Engine
from sluice.config import Settings
from sluice.db import Database
from sluice.service.app import ServiceSettings, create_app
from sluice.service.auth import check_binding

log = logging.getLogger(__name__)

#: A page waits at most this long for a database connection, then says the database is away.
POOL_TIMEOUT = 3.0


def serve(settings: Settings, *, host: str, port: int, token: str | None) -> None:
    """Serve until stopped (SIGTERM or SIGINT: uvicorn finishes the requests in hand)."""
    check_binding(host, token)
    db = Database.open(replace(settings.database, pool_timeout=POOL_TIMEOUT))
    engine = Engine(settings, db)
    try:
        app = create_app(engine, ServiceSettings(token=token))
        log.info("serving the ledger on http://%s:%d", host, port)
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        engine.close()
