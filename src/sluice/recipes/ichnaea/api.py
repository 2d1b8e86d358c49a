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
from sluice.intake import http, openapi
from sluice.intake.body import BodyLimits
from sluice.intake.keys import ApiKey, KeyCache, KeyStore
from sluice.intake.limits import DailyLimits
from sluice.intake.queue import IntakeQueue, QueueOptions, QueueStatus, connect
from sluice.recipes.ichnaea.endpoints import ENDPOINTS
from sluice.recipes.ichnaea.options import SCHEMA, IchnaeaOptions
from sluice.service.app import Extension

__all__ = [
    "IchnaeaOptions",
    "add_key",
    "keys",
    "list_keys",
    "open_intake",
    "openapi_paths",
    "remove_key",
    "routes",
    "status",
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
        return Extension(public_routes=routes(db, options), paths=openapi_paths())

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
