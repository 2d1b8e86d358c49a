"""The Ichnaea recipe's Python API: the submit routes to mount on the service, their OpenAPI
paths, the API keys, and the intake's status. The CLI (``sluice ichnaea``) is a shell over it.

    >>> from sluice.recipes.ichnaea import api
    >>> app = create_app(engine, extra_routes=api.routes(engine.db, api.IchnaeaOptions()))
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.routing import Route

from sluice.db import Database
from sluice.fanout.configs import ExportConfig
from sluice.fanout.status import metrics_text
from sluice.intake import http, openapi
from sluice.intake.body import BodyLimits
from sluice.intake.keys import ApiKey, KeyCache, KeyStore
from sluice.intake.limits import DailyLimits
from sluice.intake.queue import IntakeQueue, QueueOptions, QueueStatus, connect
from sluice.recipes.ichnaea.endpoints import ENDPOINTS
from sluice.recipes.ichnaea.fanout import (
    add_export,
    delivery_status,
    list_dead_letters,
    list_exports,
    redrive,
    remove_export,
    run_fanout,
    update_export,
)
from sluice.recipes.ichnaea.options import SCHEMA, IchnaeaOptions
from sluice.service.app import Extension

__all__ = [
    "ExportConfig",
    "IchnaeaOptions",
    "add_export",
    "add_key",
    "delivery_status",
    "full_status",
    "keys",
    "list_dead_letters",
    "list_exports",
    "list_keys",
    "open_intake",
    "openapi_paths",
    "redrive",
    "remove_export",
    "remove_key",
    "routes",
    "run_fanout",
    "status",
    "update_export",
    "update_key",
]


def queue_options_of(options: IchnaeaOptions) -> QueueOptions:
    return QueueOptions(
        redis_url=options.redis_url,
        prefix=options.redis_prefix,
        max_backlog=options.max_backlog,
        retry_after=options.retry_after,
    )


def open_intake(db: Database, options: IchnaeaOptions) -> http.Intake:
    queue_options = queue_options_of(options)
    client = connect(queue_options)
    store = KeyStore(db, SCHEMA)
    return http.Intake(
        IntakeQueue(client, queue_options),
        DailyLimits(client, options.redis_prefix),
        store.get,
        cache=KeyCache(ttl=options.key_cache_seconds, jitter=options.key_cache_seconds / 10),
        body=BodyLimits(options.max_body_bytes, options.max_inflated_bytes),
    )


def routes(db: Database, options: IchnaeaOptions | None = None) -> list[Route]:
    """``/v1/submit``, ``/v1/geosubmit`` and ``/v2/geosubmit``, for
    ``create_app(engine, extra_routes=...)``."""
    return http.routes(ENDPOINTS, open_intake(db, options or IchnaeaOptions()))


def extension(options: IchnaeaOptions) -> Callable[[Database], Extension]:
    """The submit routes as the service mounts them: public (submitters never hold the
    service's token), described in its OpenAPI document."""

    def mount(db: Database) -> Extension:
        return Extension(
            public_routes=routes(db, options),
            paths=openapi_paths(),
            metrics=lambda: metrics(db, options),
        )

    return mount


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI ``paths`` of the submit routes, to merge into the service's document."""
    return openapi.paths(ENDPOINTS)


# -- API keys -------------------------------------------------------------------------------------


def keys(db: Database) -> KeyStore:
    return KeyStore(db, SCHEMA)


def add_key(
    db: Database, valid_key: str, *, sample_submit: int | None = 100, maxreq: int | None = None
) -> ApiKey:
    key = ApiKey(valid_key, maxreq=maxreq, store_sample_submit=sample_submit)
    keys(db).add(key)
    return key


def list_keys(db: Database) -> list[ApiKey]:
    return keys(db).list()


def update_key(db: Database, valid_key: str, **changes: int | None) -> None:
    keys(db).update(valid_key, **changes)


def remove_key(db: Database, valid_key: str) -> None:
    keys(db).remove(valid_key)


# -- status ---------------------------------------------------------------------------------------


def status(options: IchnaeaOptions) -> QueueStatus:
    """The intake's counters, depth and the age of its oldest report."""

    async def read() -> QueueStatus:
        queue_options = queue_options_of(options)
        client = connect(queue_options)
        try:
            return await IntakeQueue(client, queue_options).status()
        finally:
            await client.aclose()

    return asyncio.run(read())


def full_status(db: Database, options: IchnaeaOptions) -> dict[str, Any]:
    """The intake's figures (`QueueStatus.as_dict`) with ``exports`` (each export's queue and
    delivery counts) and ``warning`` (with no export config the intake keeps its reports, and
    this says so; else None): what ``sluice ichnaea status`` shows."""
    intake = status(options).as_dict()
    exports = [one.as_dict() for one in delivery_status(db, options)]
    warning = None
    if not exports:
        warning = (
            f"no export config: the intake keeps its {intake['depth']} reports until one is "
            "added (sluice ichnaea exports add)"
        )
    return {**intake, "exports": exports, "warning": warning}


def metrics(db: Database, options: IchnaeaOptions) -> bytes:
    """The intake's and the exports' figures, in Prometheus's text format."""
    return metrics_text(status(options).as_dict(), delivery_status(db, options))
